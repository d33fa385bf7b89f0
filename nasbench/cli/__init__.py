"""The ``nasbench`` command line (typer + rich): every command lives in this package
(``search`` and ``report`` in modules of their own).

Every command has ``--help``; data commands have ``--json``; bad input prints one line
on stderr and exits with status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from profilers.latency import DEFAULT_ROUNDS

from ..errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Hardware-aware benchmarking and profiling for Neural Architecture "
                       "Search: profile a device into a LUT, search with cost-aware "
                       "objectives, report Pareto fronts.")
lut_app = typer.Typer(no_args_is_help=True, help="Inspect and compare LUT files.")
app.add_typer(lut_app, name="lut")

out = Console()
err = Console(stderr=True)


def _parse_batches(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--batch must be comma-separated integers, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise UserError(f"--batch needs positive integers, got {text!r}")
    return vals


def _parse_ratio(text: str) -> float:
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise UserError(f"threshold must look like 10% or 0.1, got {text!r}") from None


# --------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------


@app.command()
def devices(json_out: bool = typer.Option(False, "--json", help="Print JSON."),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="Only device specs.")):
    """List every device found and which meters (latency, memory, energy) work there."""
    from ..device_report import device_rows
    rows = device_rows()
    if json_out:
        print(json.dumps(rows, indent=1, default=str))
        return
    if quiet:
        for r in rows:
            print(r["spec"])
        return
    t = Table(title="Devices", show_lines=True)
    t.add_column("device", no_wrap=True)
    t.add_column("hardware", ratio=1)
    t.add_column("meters", ratio=1)
    for r in rows:
        m = r["meters"]
        meters = "\n".join(f"{k:<7} " + ("[green]yes[/] " if m[k]["ok"] else "[red]no[/]  ")
                           + m[k]["how"] for k in ("latency", "memory", "energy"))
        t.add_row(r["spec"] + (f"\n[cyan]preset {r['preset']}[/]" if r.get("preset") else ""),
                  f"[bold]{r['name']}[/]\n{r['backend']}; {r['summary']}", meters)
    out.print(t)
    from profilers.presets import PRESETS
    out.print("[dim]presets: " + ", ".join(PRESETS) + " (use --device NAME)[/]")


# --------------------------------------------------------------------------------------
# profile
# --------------------------------------------------------------------------------------


@app.command()
def profile(
    device: str = typer.Option("cpu", "--device", "-d",
                               help="cpu, cuda[:N], rocm[:N], opencl[:P[:D]] or a preset."),
    space: str = typer.Option("darts", help="Search space whose ops are enumerated: "
                              "darts, proxyless or nb201 (NAS-Bench-201)."),
    channels: int | None = typer.Option(None, help="DARTS deploy network: initial "
                                           "channels C (default 36)."),
    layers: int | None = typer.Option(None, help="DARTS deploy network: number of cells "
                                         "(default 20)."),
    config: str = typer.Option("cifar", "--config", help="Proxyless space layout: cifar "
                               "(32x32, default) or imagenet (the paper's, 224x224)."),
    width_mult: float = typer.Option(1.0, help="Proxyless space: width multiplier."),
    input_size: int | None = typer.Option(None, "--input", help="Deploy network: input "
                                             "H = W (default 32; proxyless: the layout's)."),
    classes: int | None = typer.Option(None, help="Deploy network: number of classes "
                                          "(default 10; proxyless: the layout's)."),
    batch: str = typer.Option("1", help="Batch sizes, comma-separated (e.g. 1,32)."),
    dtype: str = typer.Option("float32", help="float32 (float16 where supported)."),
    out_file: Path | None = typer.Option(None, "--out", "-o",
                                            help="LUT file (default: the per-user cache)."),
    resume: bool = typer.Option(False, help="Keep entries already in --out; measure the rest."),
    threads: int | None = typer.Option(None, help="torch threads (default: torch's)."),
    time_cap: float = typer.Option(1.0, help="Seconds of timing per entry at most."),
    min_repeats: int = typer.Option(10, help="Timed repeats per entry at least."),
    max_repeats: int = typer.Option(300, help="Timed repeats per entry at most."),
    ci_target: float = typer.Option(0.02, help="Stop when the median's 95% CI is within "
                                               "this fraction."),
    cv_threshold: float = typer.Option(0.10, help="Re-measure, then flag, entries with a "
                                                  "larger CV."),
    rounds: int = typer.Option(DEFAULT_ROUNDS, help="Rounds per entry, spread round-robin over the "
                               "profile (the median round is kept; --time-cap is split)."),
    anchor: bool = typer.Option(True, "--anchor/--no-anchor",
                                help="Time a fixed anchor op before every call and store "
                                     "drift-corrected latencies (raw ones beside them)."),
    benchmark_dir: Path | None = typer.Option(None, help="With --device "
                                                 "hw-nas-bench:DEV: the folder of the "
                                                 "HW-NAS-Bench / NAS-Bench-201 CSV files."),
    dataset: str = typer.Option("cifar10", help="With --device hw-nas-bench:DEV: cifar10, "
                                "cifar100 or ImageNet16-120."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress, no table."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
):
    """Measure every op instance the space places in the deploy network into a LUT
    (with --device hw-nas-bench:DEV: fit one to that device's table)."""
    from profilers.latency import LatencySettings
    if device.startswith("hw-nas-bench"):
        return _profile_tabular(device, space, benchmark_dir, dataset, out_file, quiet,
                                json_out)

    from ..profiling import cached_lut_path, get_device, run_profile
    from ..progress import progress_bar
    from ..spaces.darts import DeployConfig
    if space not in ("darts", "proxyless", "nb201"):
        raise UserError(f"unknown space {space!r} (available: darts, proxyless, nb201)")
    if dtype not in ("float32", "float16"):
        raise UserError(f"--dtype must be float32 or float16, got {dtype!r}")
    for name, v in (("--channels", channels), ("--layers", layers), ("--input", input_size),
                    ("--classes", classes)):
        if v is not None and v < 1:
            raise UserError(f"{name} must be positive, got {v}")
    if space == "darts" and layers is not None and layers < 3:
        raise UserError("--layers must be at least 3 (two reduction cells)")
    if space == "proxyless" and (channels is not None or layers is not None):
        raise UserError("--channels/--layers describe the DARTS network; the proxyless "
                        "space takes --config and --width-mult")
    if space == "nb201" and layers is not None:
        raise UserError("--layers describes the DARTS network; NAS-Bench-201 has 3 "
                        "stages of 5 cells")
    if threads is not None and threads < 1:
        raise UserError("--threads must be positive")
    import math
    for name, v in (("--time-cap", time_cap), ("--ci-target", ci_target),
                    ("--cv-threshold", cv_threshold)):
        if not math.isfinite(v):         # NaN would reach the LUT (and JSON has no NaN)
            raise UserError(f"{name} must be a finite number, got {v}")
    try:
        settings = LatencySettings(min_repeats=min_repeats, max_repeats=max_repeats,
                                   time_cap_s=time_cap, ci_target=ci_target,
                                   cv_threshold=cv_threshold, rounds=rounds,
                                   anchor=anchor)
    except ValueError as e:
        raise UserError(str(e)) from None
    if space == "proxyless":
        from ..spaces.proxyless import ProxylessDeployConfig
        deploy = ProxylessDeployConfig.from_layout(
            config, input_size=input_size, num_classes=classes, width_mult=width_mult,
            batches=_parse_batches(batch), dtype=dtype)
    elif space == "nb201":
        from ..spaces.nb201 import NB201DeployConfig
        # --input 16 with --classes 120: the ImageNet16-120 network
        deploy = NB201DeployConfig(channels=channels or 16, input_size=input_size or 32,
                                   num_classes=classes or 10,
                                   batches=_parse_batches(batch), dtype=dtype)
        deploy.validate()
    else:
        deploy = DeployConfig(channels=channels or 36, layers=layers or 20,
                              input_size=input_size or 32, num_classes=classes or 10,
                              batches=_parse_batches(batch), dtype=dtype)
    dev = get_device(device)
    path = out_file or cached_lut_path(dev, deploy)
    if resume and not path.exists():
        raise UserError(f"--resume: {path} does not exist")
    from ..errors import ensure_writable
    ensure_writable(path, "--out")                 # before the first measurement
    import time
    t0 = time.perf_counter()
    with progress_bar(f"profiling {dev.spec}", quiet=quiet or json_out) as cb:
        lut = run_profile(dev, deploy, path, settings=settings, resume=resume,
                          threads=threads, progress=cb)
    elapsed = time.perf_counter() - t0
    summary = _lut_summary(lut)
    summary.update({"path": str(path), "seconds": round(elapsed, 1)})
    if json_out:
        print(json.dumps(summary, indent=1))
    elif not quiet:
        out.print(f"[bold green]wrote[/] {path}: {summary['entries']} entries on "
                  f"{dev.name} ({lut.provenance['backend']}, {lut.provenance['threads']} "
                  f"threads) in {elapsed:.1f} s; median CV {summary['median_cv']:.3f}, "
                  f"{summary['noisy']} noisy; energy: {summary['energy']}")
        if summary.get("anchor"):
            a = summary["anchor"]
            out.print(f"drift anchor {a['key']}: {a['ref_ms']:.3g} ms typical, its "
                      f"medians spread {a['spread']:.0%} over the profile (latencies are "
                      f"corrected for it; raw_latency_ms keeps the measured ones)",
                      highlight=False)


def _validate_tabular(lut_file: Path, device: str, space: str, benchmark_dir: Path | None,
                      dataset: str, out_file: Path | None, quiet: bool,
                      json_out: bool) -> None:
    """``lut validate --device hw-nas-bench:DEV``: the LUT's sums against the table."""
    from profilers.lut import LUT, LUTError

    from ..benchmarks import NB201Bench
    from ..benchmarks.hwnas import parse_tabular_device, validate_against_table
    from ..validate import write_json
    dev = parse_tabular_device(device)
    if space != "nb201":
        raise UserError(f"{device} holds NAS-Bench-201 cells: use --space nb201")
    if benchmark_dir is None:
        raise UserError(f"{device} needs --benchmark-dir (the HW-NAS-Bench tables)")
    try:
        lut = LUT.load(lut_file)
    except LUTError as e:
        raise UserError(str(e)) from None
    bench = NB201Bench(benchmark_dir)
    res = {m: validate_against_table(lut, bench, dev, dataset, m)
           for m in ("latency", "energy") if f"{dev}_{m}" in bench.hardware(dataset)
           and (m == "latency" or any(e.get("energy_j") is not None
                                      for e in lut.entries.values()))}
    path = out_file or lut_file.with_name(lut_file.stem + f".validate-{dev}.json")
    write_json(path, res)
    if json_out:
        print(json.dumps(res, indent=1, default=float))
        return
    for m, r in res.items():
        out.print(f"{m} on {dev} ({dataset}): the LUT's sum is within 10 % of the table for "
                  f"{r['within_10pct']:.0%} of {r['cells']} connected cells, MAPE "
                  f"{r['mape_pct']:.1f} %, Spearman {r['spearman']:.3f} "
                  f"({r['disconnected']} disconnected cells left out); wrote {path}",
                  highlight=False)


def _profile_tabular(device: str, space: str, benchmark_dir: Path | None, dataset: str,
                     out_file: Path | None, quiet: bool, json_out: bool) -> None:
    """``profile --device hw-nas-bench:DEV``: a LUT fitted to HW-NAS-Bench's whole-network
    costs (not measured), and the device's additivity on held-apart cells."""
    from ..benchmarks import NB201Bench
    from ..benchmarks.hwnas import additivity, fitted_lut, parse_tabular_device
    dev = parse_tabular_device(device)
    if space != "nb201":
        raise UserError(f"{device} holds NAS-Bench-201 cells: use --space nb201")
    if benchmark_dir is None or out_file is None:
        raise UserError(f"{device} needs --benchmark-dir (the HW-NAS-Bench CSV files) and "
                        f"--out FILE")
    bench = NB201Bench(benchmark_dir)
    lut = fitted_lut(bench, dev, dataset)
    lut.save(out_file)
    report = {m: additivity(bench, dev, dataset, m)
              for m in ("latency", "energy") if f"{dev}_{m}" in bench.hardware(dataset)}
    summary = {"path": str(out_file), "entries": len(lut.entries), "device": device,
               "dataset": dataset, "fitted": lut.provenance["fitted"],
               "additivity": report}
    if json_out:
        print(json.dumps(summary, indent=1, default=str))
        return
    if not quiet:
        out.print(f"[bold green]wrote[/] {out_file}: {len(lut.entries)} entries fitted to "
                  f"HW-NAS-Bench {dev} ({dataset}; fitted, not measured)", highlight=False)
        for m, r in report.items():
            out.print(f"{m}: on {r['test_cells']} held-apart cells the sum of fitted op "
                      f"costs is within 10 % for {r['within_10pct']:.0%}, MAPE "
                      f"{r['mape_pct']:.1f} %, Spearman {r['spearman']:.3f}",
                      highlight=False)


def _lut_summary(lut) -> dict:
    import statistics
    cvs = [e["latency_ms"]["cv"] for e in lut.entries.values()]
    reasons = {e.get("energy_reason") for e in lut.entries.values() if e.get("energy_j") is None}
    return {"entries": len(lut.entries), "device": lut.device_name,
            "median_cv": statistics.median(cvs) if cvs else None,
            "noisy": sum(bool(e.get("noisy")) for e in lut.entries.values()),
            "anchor": {k: lut.provenance["anchor"].get(k) for k in ("key", "ref_ms", "spread")}
            if lut.provenance.get("anchor", {}).get("ref_ms") else None,
            "energy": ("measured" if not reasons else "not measured: " +
                       "; ".join(sorted(str(r) for r in reasons)))}


# --------------------------------------------------------------------------------------
# lut show / diff
# --------------------------------------------------------------------------------------


def _load_lut(path: Path):
    from profilers.lut import LUT, LUTError
    try:
        lut = LUT.load(path)
    except LUTError as e:
        raise UserError(str(e)) from None
    if lut.incomplete():                 # shown and compared, but never silently
        err.print(f"[yellow]warning: {path} is incomplete: {lut.incomplete()} entries have "
                  f"profiling rounds pending (an interrupted profile); finish it with "
                  f"`nasbench profile ... --out {path} --resume`[/]", highlight=False,
                  soft_wrap=True)
    return lut


@lut_app.command("show")
def lut_show(
    file: Path = typer.Argument(..., help="LUT file."),
    op: str | None = typer.Option(None, help="Only ops whose name contains this."),
    batch: int | None = typer.Option(None, help="Only this batch size."),
    sort: str = typer.Option("key", help="Sort by key, latency, cv or memory."),
    noisy: bool = typer.Option(False, "--noisy", help="Only entries flagged noisy."),
    csv: bool = typer.Option(False, "--csv", help="Print CSV (pandas)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON rows."),
):
    """Show a LUT as a table (filters, sorting, CSV or JSON)."""
    from profilers.query import lut_frame
    lut = _load_lut(file)
    df = lut_frame(lut)
    if op:
        df = df[df["op"].str.contains(op, regex=False)]
    if batch is not None:
        df = df[df["batch"] == batch]
    if noisy:
        df = df[df["noisy"]]
    sort_cols = {"key": "key", "latency": "latency_ms", "cv": "cv", "memory": "memory_bytes"}
    if sort not in sort_cols:
        raise UserError(f"--sort must be one of {', '.join(sort_cols)}")
    df = df.sort_values(sort_cols[sort], ascending=sort == "key", kind="stable")
    if csv:
        sys.stdout.write(df.to_csv(index=False))
        return
    if json_out:
        print(df.to_json(orient="records", indent=1))
        return
    p = lut.provenance
    t = Table(title=f"{file.name}: {lut.device_name} ({p.get('backend')}, "
                    f"{p.get('threads')} threads, {p.get('created')})")
    t.add_column("op", no_wrap=True)
    t.add_column("C x H x W -> C'", no_wrap=True)
    t.add_column("s", justify="right")
    t.add_column("b", justify="right")
    t.add_column("median ms", justify="right")
    t.add_column("p95 ms", justify="right")
    t.add_column("CV", justify="right")
    t.add_column("n", justify="right")
    t.add_column("memory", justify="right")
    t.add_column("energy J", justify="right")
    for r in df.itertuples():
        mem = "-" if r.memory_bytes != r.memory_bytes or r.memory_bytes is None else \
            _human_bytes(r.memory_bytes)
        en = "n/a" if r.energy_j != r.energy_j or r.energy_j is None else f"{r.energy_j:.3g}"
        cv = f"[yellow]{r.cv:.2f}![/]" if r.noisy else f"{r.cv:.2f}"
        t.add_row(r.op, f"{r.c_in}x{r.h}x{r.w}->{r.c_out}", str(r.stride), str(r.batch),
                  f"{r.latency_ms:.4f}", f"{r.p95_ms:.4f}", cv, str(r.repeats), mem, en)
    out.print(t)
    out.print(f"[dim]{len(df)} of {len(lut.entries)} entries; ! = noisy (CV above the "
              f"threshold after one re-measurement); energy n/a: "
              f"{_first_reason(lut)}[/]")


def _first_reason(lut) -> str:
    for e in lut.entries.values():
        if e.get("energy_j") is None:
            return str(e.get("energy_reason"))
    return "-"


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@lut_app.command("diff")
def lut_diff(
    old: Path = typer.Argument(..., help="Baseline LUT."),
    new: Path = typer.Argument(..., help="New LUT."),
    threshold: str = typer.Option("10%", help="Regression threshold (10% or 0.1)."),
    fail: bool = typer.Option(False, "--fail", help="Exit 1 when any entry regressed."),
    metric: str = typer.Option("latency", help="latency, memory or energy."),
    top: int = typer.Option(20, help="Rows to print (worst first)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON rows."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the verdict line."),
    allow_different: bool = typer.Option(False, help="Diff LUTs of different spaces, "
                                         "deploy networks or devices anyway."),
):
    """Compare two LUTs entry by entry; the worst regressions first. CI: --fail (exit 1
    on a regressed or a removed entry)."""
    from profilers.lut import METRICS, diff_luts
    if metric not in METRICS:
        raise UserError(f"--metric must be one of {', '.join(METRICS)}")
    thr = _parse_ratio(threshold)
    if thr < 0:
        raise UserError("--threshold must not be negative")
    a, b = _load_lut(old), _load_lut(new)
    ia, ib = _lut_identity(a), _lut_identity(b)
    differ = [k for k in ia if ia[k] != ib[k]]
    if differ and not allow_different:
        what = "; ".join(f"{k} {ia[k]} vs {ib[k]}" for k in differ)
        raise UserError(f"{old} and {new} describe different {', '.join(differ)} ({what}): "
                        f"their entries do not compare; --allow-different to diff anyway")
    rows = diff_luts(a, b, thr, metric)
    # a CI gate: an entry that vanished is a failure too
    regressed = [r for r in rows if r.status in ("regressed", "removed")]
    if json_out:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
    elif not quiet:
        if a.device_name != b.device_name:
            err.print(f"[yellow]note: comparing {a.device_name!r} with {b.device_name!r}[/]")
        t = Table(title=f"{metric}: {old} -> {new} (threshold {thr:.0%})")
        for c in ("entry", "old", "new", "ratio", "status"):
            t.add_column(c, justify="left" if c in ("entry", "status") else "right")
        colours = {"regressed": "red", "improved": "green"}
        for r in rows[:top]:
            t.add_row(r.key, _fmt(r.old_ms), _fmt(r.new_ms),
                      "-" if r.ratio is None else f"{r.ratio:.3f}x",
                      f"[{colours.get(r.status, 'white')}]{r.status}[/]")
        out.print(t)
    counts = {s: sum(r.status == s for r in rows) for s in
              ("regressed", "improved", "same", "added", "removed")}
    if not json_out:
        verdict = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        out.print(("[bold red]FAIL[/] " if regressed and fail else "") + verdict)
    if fail and regressed:
        raise typer.Exit(1)


def _lut_identity(lut) -> dict:
    """Returns what a LUT describes: its space, deploy network and device."""
    prov = lut.provenance
    deploy = dict(prov.get("deploy") or {})
    return {"space": prov.get("space") or deploy.get("space") or "darts",
            "deploy network": json.dumps(deploy, sort_keys=True),
            "device": (prov.get("device") or {}).get("id")}


def _fmt(v):
    return "-" if v is None else f"{v:.4g}"


@lut_app.command("validate")
def lut_validate(
    lut_file: Path = typer.Option(..., "--lut", help="LUT file to validate."),
    device: str = typer.Option("cpu", "--device", "-d", help="Device the LUT describes."),
    space: str = typer.Option("darts", help="Search space of the LUT (darts, proxyless: "
                              "any registered space)."),
    samples: int = typer.Option(20, help="Architectures sampled uniformly from the space."),
    seed: int = typer.Option(0, help="Sampling seed."),
    batch: int | None = typer.Option(None, help="Batch size (default: the LUT's first)."),
    from_run: list[Path] | None = typer.Option(None, "--from-run",
                                                  help="Also the architectures of a run."),
    rounds: int = typer.Option(3, help="Rounds per network, spread over the run (the "
                               "median round is kept)."),
    min_repeats: int | None = typer.Option(None, help="Timed forwards per round at least "
                                           "(default: the LUT's; 3 suits slow networks)."),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="JSON output file."),
    benchmark_dir: Path | None = typer.Option(None, help="With --device hw-nas-bench:DEV: "
                                                 "the HW-NAS-Bench tables (every cell "
                                                 "compared, nothing measured)."),
    dataset: str = typer.Option("cifar10", help="With --device hw-nas-bench:DEV: the "
                                "tables' data set."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the verdict."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Measure sampled architectures end to end and compare with the LUT's prediction
    (with --device hw-nas-bench:DEV: compare with HW-NAS-Bench's table, every cell)."""
    from ..validate import run_validation, write_json
    if device.startswith("hw-nas-bench"):
        return _validate_tabular(lut_file, device, space, benchmark_dir, dataset, out_file,
                                 quiet, json_out)
    _check_rounds(rounds, min_repeats)
    vals = _validation_inputs(lut_file, device, space, samples)
    genotypes = [_run_genotype(r, space) for r in (from_run or [])]
    with _progress("validating", quiet or json_out) as cb:
        res = run_validation(vals, device, samples, seed, batch, genotypes, progress=cb,
                             rounds=rounds, min_repeats=min_repeats)
    path = out_file or lut_file.with_name(lut_file.stem + f".validate-b{res['batch']}.json")
    write_json(path, res)
    if json_out:
        print(json.dumps({k: v for k, v in res.items() if k != "points"}, indent=1,
                         default=float))
        return
    _print_validation(res, path, quiet)


@lut_app.command("calibrate")
def lut_calibrate(
    lut_file: Path = typer.Option(..., "--lut", help="LUT file to calibrate."),
    device: str | None = typer.Option(
        None, "--device", "-d", help="Device the LUT describes (default: cpu; with "
        "--from-validation nothing is measured and the LUT's device is not checked)."),
    space: str = typer.Option("darts", help="Search space of the LUT (darts, proxyless: "
                              "any registered space)."),
    samples: int = typer.Option(12, help="Networks measured to fit the predictor (>= 4)."),
    seed: int = typer.Option(1000, help="Sampling seed (keep it apart from validate's)."),
    batch: int | None = typer.Option(None, help="Batch size (default: the LUT's first)."),
    features: str = typer.Option("op", help="Predictor features: op (a scale per "
                                 "candidate op) or group (per op family)."),
    from_validation: Path | None = typer.Option(
        None, "--from-validation", help="Fit on the networks a `lut validate` of this LUT "
        "measured (its JSON) instead of measuring new ones; its leave-one-out figures are "
        "then out-of-sample figures on those networks."),
    rounds: int = typer.Option(3, help="Rounds per network, spread over the run (the "
                               "median round is kept)."),
    min_repeats: int | None = typer.Option(None, help="Timed forwards per round at least "
                                           "(default: the LUT's; 3 suits slow networks)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the file path."),
    json_out: bool = typer.Option(False, "--json", help="Print the calibration as JSON."),
):
    """Fit the calibrated predictor (per-op-group scale + per-network overhead) from a
    few end-to-end measurements (or those of a validation); stores it beside the LUT as
    <lut>.calib-b<batch>.json."""
    import random

    from ..validate import (
        calibration_path,
        fit_calibration,
        measure_samples,
        space_from_lut,
        write_json,
    )
    _check_rounds(rounds, min_repeats)
    if device is None and from_validation is None:
        device = "cpu"
    lut = _validation_inputs(lut_file, device, space, samples)
    if samples < 4:
        raise UserError("--samples must be at least 4")
    if features not in ("op", "group"):
        raise UserError(f"--features must be op or group, got {features!r}")
    bound = space_from_lut(lut, batch)
    rng = random.Random(seed)
    if from_validation is not None:
        pts = _validation_points(from_validation, lut, features)
        bound = space_from_lut(lut, pts[0]["batch"])
    else:
        archs = [bound.sample(rng) for _ in range(samples)]
        with _progress("calibrating", quiet or json_out) as cb:
            pts = measure_samples(lut, device, archs, bound, cb, features=features,
                                  rounds=rounds, min_repeats=min_repeats)
    calib = fit_calibration([p["group_sums_ms"] for p in pts],
                            [p["measured_ms"] for p in pts], lut.sha256(),
                            bound.deploy.batches[0], features, bound.name)
    path = write_json(calibration_path(lut_file, bound.deploy.batches[0]), calib.to_dict())
    if json_out:
        print(json.dumps(calib.to_dict(), indent=1))
    elif quiet:
        print(path)
    else:
        f = calib.fit["leave_one_out"]
        coef = ", ".join(f"{g} x{c:.2f}" for g, c in calib.coef.items())
        out.print(f"wrote {path}: latency = {calib.intercept:.2f} ms + {coef}; "
                  f"leave-one-out: {f['within_10pct']:.0%} within 10%, "
                  f"MAPE {f['mape_pct']:.1f}%")


def _validation_points(path: Path, lut, features: str) -> list[dict]:
    """Returns the (batch, measured ms, feature sums) of the networks a validation of
    ``lut`` stored, their architectures read by the LUT's space."""
    from ..validate import group_sums, space_from_lut
    try:
        res = json.loads(Path(path).read_text())
        points, batch, sha = res["points"], res["batch"], res["lut_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a `nasbench lut validate` JSON "
                        f"({e.__class__.__name__})") from None
    if sha != lut.sha256():
        raise UserError(f"{path} validated another LUT (or this one before it changed)")
    space = space_from_lut(lut, batch)
    out = []
    for i, p in enumerate(points):
        try:
            arch = space.arch_from_dict(p["genotype"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: network {i} is not a {space.name} architecture "
                            f"({e})") from None
        out.append({"batch": batch, "measured_ms": p["measured_ms"],
                    "group_sums_ms": group_sums(lut, space, arch, features)})
    return out


def _check_rounds(rounds: int, min_repeats: int | None) -> None:
    if rounds < 1:
        raise UserError("--rounds must be at least 1")
    if min_repeats is not None and min_repeats < 3:
        raise UserError("--min-repeats must be at least 3")


def _validation_inputs(lut_file: Path, device: str | None, space: str, samples: int):
    """Returns the LUT after checking the arguments, and that it describes ``device``
    (not checked when None: nothing will be measured)."""
    from ..profiling import get_device
    from ..spaces import space_names
    if space not in space_names():
        raise UserError(f"unknown space {space!r} (available: {', '.join(space_names())})")
    if samples < 0:
        raise UserError("--samples must not be negative")
    lut = _load_lut(lut_file)
    check_lut_space(lut, space)
    if device is None:
        return lut
    dev = get_device(device)
    from profilers.lut import LUTError
    try:
        lut.check_matches(device={"id": dev.id})
    except LUTError as e:
        raise UserError(str(e)) from None
    return lut


def check_lut_space(lut, space: str) -> None:
    """Raises UserError when ``lut`` describes another space's deploy network."""
    from ..spaces import lut_space
    recorded = lut_space(lut)
    if recorded != space:
        raise UserError(f"LUT {lut.path} describes a {recorded} deploy network, not "
                        f"{space}: pass --space {recorded}")


def _run_genotype(run: Path, space: str = "darts"):
    """Returns the architecture of a run's genotype.json, of search space ``space``."""
    from ..spaces import get_space
    p = run / "genotype.json"
    if not p.is_file():
        raise UserError(f"{run} has no genotype.json")
    try:
        d = json.loads(p.read_text())
        d = d.get("genotype", d) if isinstance(d, dict) else d
        recorded = d.get("space", "darts") if isinstance(d, dict) else "darts"
        if recorded != space:
            raise ValueError(f"a {recorded} architecture, not a {space} one")
        return get_space(space).arch_from_dict(d)
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{p}: {e}") from None


def _progress(label: str, quiet: bool):
    from ..progress import progress_bar
    return progress_bar(label, quiet=quiet)


def _round_levels(nf: dict) -> str:
    levels = nf.get("round_levels")
    if not levels:
        return ""
    return "; round levels (median round / kept) " + ", ".join(f"{v:.2f}" for v in levels)


def _print_validation(res: dict, path: Path, quiet: bool) -> None:
    rows = [("plain sum", res["plain"])]
    if "calibrated" in res:
        rows.append(("calibrated", res["calibrated"]))
    anchor = res.get("anchor")
    if not quiet:
        if anchor:
            out.print(f"drift anchor {anchor['key']}: {anchor['median_ms']:.3g} ms now vs "
                      f"{anchor['ref_ms']:.3g} ms in the profile ({anchor['drift']:+.1%}); "
                      f"measured latencies are drift-corrected (uncorrected: plain sum "
                      f"{res['plain_raw']['within_10pct']:.0%} within 10%, MAPE "
                      f"{res['plain_raw']['mape_pct']:.1f}%, Spearman "
                      f"{res['plain_raw']['spearman']:.3f})", highlight=False)
        t = Table(title=f"{res['samples']} networks, batch {res['batch']}, "
                        f"{res['device']} (end-to-end CV median {res['cv']['median']:.3f}, "
                        f"max {res['cv']['max']:.3f}; load {res['loadavg']['start'][0]:.1f})")
        for c in ("predictor", "within 5%", "within 10%", "MAPE", "RMSE ms", "bias",
                  "Spearman", "Kendall"):
            t.add_column(c, justify="left" if c == "predictor" else "right")
        for name, m in rows:
            t.add_row(name, f"{m['within_5pct']:.0%}", f"{m['within_10pct']:.0%}",
                      f"{m['mape_pct']:.1f}%", f"{m['rmse_ms']:.2f}", f"{m['bias_pct']:+.1f}%",
                      f"{m['spearman']:.3f}", f"{m['kendall']:.3f}")
        out.print(t)
        nf = res.get("noise_floor")
        if nf:
            out.print(f"noise floor: the other rounds of the same networks agree with the "
                      f"kept one {nf['within_10pct']:.0%} within 10% (mean deviation "
                      f"{nf['mad_pct']:.1f}%): no predictor can be checked closer than "
                      f"that here" + _round_levels(nf), highlight=False)
    # shown even with --quiet: a figure taken on a busy machine must say so
    for w in res.get("warnings", []):
        err.print(f"[yellow]warning: {w}[/]", highlight=False)
    best = rows[-1]
    out.print(f"{best[0]}: {best[1]['within_10pct']:.0%} within 10%, MAPE "
              f"{best[1]['mape_pct']:.1f}%, Spearman {best[1]['spearman']:.3f}; wrote {path}")


# --------------------------------------------------------------------------------------
# search / report (their own modules of this package)
# --------------------------------------------------------------------------------------

from .arch import arch as _arch  # noqa: E402
from .bench import bench as _bench  # noqa: E402
from .model import eval_cmd as _eval  # noqa: E402
from .model import export_cmd as _export  # noqa: E402
from .predictor import predictor_app as _predictor_app  # noqa: E402
from .report import report as _report  # noqa: E402
from .search import search as _search  # noqa: E402
from .worker import worker as _worker  # noqa: E402

app.command("search")(_search)
app.command("report")(_report)
app.command("arch")(_arch)
app.command("bench")(_bench)
app.command("eval")(_eval)
app.command("export")(_export)
app.command("worker")(_worker)
app.add_typer(_predictor_app, name="predictor")


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (2 and one line for bad input)."""
    import signal

    from profilers.devices import DeviceError
    from profilers.lut import LUTError

    def _terminate(signum, frame):
        # SIGTERM (kill, systemd, Slurm, Kubernetes) is handled as Ctrl-C: the runner
        # and the profiler checkpoint before they exit
        raise KeyboardInterrupt

    try:
        old_term = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:                              # not the main thread (tests)
        old_term = None
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="nasbench")
        return rc if isinstance(rc, int) else 0
    except (UserError, LUTError, DeviceError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    except NotImplementedError as e:
        # (by name: kernels.plan imports pyopencl, an optional extra)
        if type(e).__name__ != "UnsupportedLayerError":
            raise
        # a network our OpenCL executor cannot run: a device limit, not a crash
        err.print(f"[bold red]error:[/] the OpenCL executor cannot run this network: {e}",
                  highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as e:
        # typer (and the click it wraps or vendors) signal usage errors, --help and
        # exits with exceptions whose module moved between releases: match by name
        name = type(e).__name__
        if name == "NoArgsIsHelpError":
            return 0
        if name == "Exit":
            return int(getattr(e, "exit_code", 0))
        if name == "Abort":
            err.print("aborted")
            return 130
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            err.print(f"[bold red]error:[/] {e.format_message()}", highlight=False,
                      soft_wrap=True)
            return 2
        raise
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
