"""``nasbench lut show|diff|validate|calibrate``: read, compare and check LUT files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from nasbench.cli.app import (
    BenchmarkDir,
    JsonOut,
    Quiet,
    _parse_ratio,
    err,
    lut_app,
    out,
)
from nasbench.errors import UserError
from nasbench.progress import progress_bar
from profilers.lut import LUT, METRICS, LUTError, diff_luts

# --------------------------------------------------------------------------------------
# lut show / diff
# --------------------------------------------------------------------------------------


def _load_lut(path: Path):
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
    json_out: JsonOut = False,
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
    json_out: JsonOut = False,
    quiet: Quiet = False,
    allow_different: bool = typer.Option(False, help="Diff LUTs of different spaces, "
                                         "deploy networks or devices anyway."),
):
    """Compare two LUTs entry by entry; the worst regressions first. CI: --fail (exit 1
    on a regressed or a removed entry)."""
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


def _validate_tabular(lut_file: Path, device: str, space: str, benchmark_dir: Path | None,
                      dataset: str, out_file: Path | None, quiet: bool,
                      json_out: bool) -> None:
    """``lut validate --device hw-nas-bench:DEV``: the LUT's predictors (plain sum, the
    linear calibration and the learned model where fitted) against the table, on every
    measured connected cell no predictor was fitted on."""
    from nasbench.benchmarks import NB201Bench
    from nasbench.benchmarks.hwnas import parse_tabular_device, score_predictors
    from nasbench.validate import write_json
    dev = parse_tabular_device(device)
    if space != "nb201":
        raise UserError(f"{device} holds NAS-Bench-201 cells: use --space nb201")
    try:
        lut = LUT.load(lut_file)
    except LUTError as e:
        raise UserError(str(e)) from None
    bench = NB201Bench(benchmark_dir)
    res = {m: score_predictors(lut, bench, dev, dataset, m)
           for m in ("latency", "energy") if f"{dev}_{m}" in bench.hardware(dataset)
           and (m == "latency" or any(e.get("energy_j") is not None
                                      for e in lut.entries.values()))}
    path = out_file or lut_file.with_name(lut_file.stem + f".validate-{dev}.json")
    write_json(path, res)
    if json_out:
        print(json.dumps(res, indent=1, default=float))
        return
    for m, r in res.items():
        figs = "; ".join(f"{k} {v['within_10']:.0%} within 10 %, MAPE {v['mape']:.1f} %, "
                         f"Spearman {v['spearman']:.3f}" for k, v in r["predictors"].items())
        out.print(f"{m} on {dev} ({dataset}), {r['cells']} connected cells"
                  f"{' not fitted on' if r.get('fitted_on') else ''}: {figs} "
                  f"({r['disconnected']} disconnected cells left out); wrote {path}",
                  highlight=False)


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
    benchmark_dir: BenchmarkDir = None,
    dataset: str = typer.Option("cifar10", help="With --device hw-nas-bench:DEV: the "
                                "tables' data set."),
    quiet: Quiet = False,
    json_out: JsonOut = False,
):
    """Measure sampled architectures end to end and compare with the LUT's prediction
    (with --device hw-nas-bench:DEV: compare with HW-NAS-Bench's table, every cell)."""
    from nasbench.validate import run_validation, write_json
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


def _check_rounds(rounds: int, min_repeats: int | None) -> None:
    if rounds < 1:
        raise UserError("--rounds must be at least 1")
    if min_repeats is not None and min_repeats < 3:
        raise UserError("--min-repeats must be at least 3")


def _validation_inputs(lut_file: Path, device: str | None, space: str, samples: int):
    """Returns the LUT after checking the arguments, and that it describes ``device``
    (not checked when None: nothing will be measured)."""
    from nasbench.luts import get_device
    from nasbench.spaces import space_names
    if space not in space_names():
        raise UserError(f"unknown space {space!r} (available: {', '.join(space_names())})")
    if samples < 0:
        raise UserError("--samples must not be negative")
    lut = _load_lut(lut_file)
    check_lut_space(lut, space)
    if device is None:
        return lut
    dev = get_device(device)
    try:
        lut.check_matches(device={"id": dev.id})
    except LUTError as e:
        raise UserError(str(e)) from None
    return lut


def check_lut_space(lut, space: str) -> None:
    """Raises UserError when ``lut`` describes another space's deploy network."""
    from nasbench.spaces import lut_space
    recorded = lut_space(lut)
    if recorded != space:
        raise UserError(f"LUT {lut.path} describes a {recorded} deploy network, not "
                        f"{space}: pass --space {recorded}")


def _run_genotype(run: Path, space: str = "darts"):
    """Returns the architecture of a run's genotype.json, of search space ``space``."""
    from nasbench.spaces import get_space
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
    if "learned" in res:
        rows.append(("learned", res["learned"]))
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
