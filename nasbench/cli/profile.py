"""``nasbench devices`` and ``nasbench profile``: what is here, and a device measured
into a LUT."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from nasbench.cli.app import (
    BenchmarkDir,
    JsonOut,
    Quiet,
    _parse_batches,
    app,
    out,
)
from nasbench.errors import UserError, ensure_writable
from nasbench.progress import progress_bar
from nasbench.registry import SPACES
from profilers.latency import DEFAULT_ROUNDS

# --------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------


@app.command()
def devices(json_out: JsonOut = False,
            quiet: Quiet = False):
    """List every device found and which meters (latency, memory, energy) work there."""
    from nasbench.device_report import device_rows
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
    config: str | None = typer.Option(None, "--config", help="Proxyless space layout: "
                                      "cifar (32x32, default) or imagenet (the paper's, "
                                      "224x224)."),
    width_mult: float | None = typer.Option(None, help="Proxyless space: width "
                                            "multiplier (default 1.0)."),
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
    benchmark_dir: BenchmarkDir = None,
    dataset: str = typer.Option("cifar10", help="With --device hw-nas-bench:DEV: cifar10, "
                                "cifar100 or ImageNet16-120."),
    quiet: Quiet = False,
    json_out: JsonOut = False,
):
    """Measure every op instance the space places in the deploy network into a LUT
    (with --device hw-nas-bench:DEV: fit one to that device's table)."""
    from profilers.latency import LatencySettings
    if device.startswith("hw-nas-bench"):
        return _profile_tabular(device, space, benchmark_dir, dataset, out_file, quiet,
                                json_out)

    from nasbench.luts import cached_lut_path, get_device, run_profile
    from nasbench.spaces import get_space
    if space not in SPACES:
        raise UserError(f"unknown space {space!r} (available: "
                        f"{', '.join(SPACES.names())})")
    if dtype not in ("float32", "float16"):
        raise UserError(f"--dtype must be float32 or float16, got {dtype!r}")
    for name, v in (("--channels", channels), ("--layers", layers), ("--input", input_size),
                    ("--classes", classes)):
        if v is not None and v < 1:
            raise UserError(f"{name} must be positive, got {v}")
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
    # the space owns its deploy network: which options size it, and their defaults
    deploy = get_space(space).deploy_from_options(
        channels=channels, layers=layers, input_size=input_size, num_classes=classes,
        layout=config, width_mult=width_mult, batches=_parse_batches(batch), dtype=dtype)
    dev = get_device(device)
    path = out_file or cached_lut_path(dev, deploy)
    if resume and not path.exists():
        raise UserError(f"--resume: {path} does not exist")
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


def _profile_tabular(device: str, space: str, benchmark_dir: Path | None, dataset: str,
                     out_file: Path | None, quiet: bool, json_out: bool) -> None:
    """``profile --device hw-nas-bench:DEV``: a LUT fitted to HW-NAS-Bench's whole-network
    costs (not measured), and the device's additivity on held-apart cells."""
    from nasbench.benchmarks import NB201Bench
    from nasbench.benchmarks.hwnas import additivity, fitted_lut, parse_tabular_device
    dev = parse_tabular_device(device)
    if space != "nb201":
        raise UserError(f"{device} holds NAS-Bench-201 cells: use --space nb201")
    bench = NB201Bench(benchmark_dir)      # default: the fetched tables (one line if none)
    if out_file is None:
        raise UserError(f"{device} needs --out FILE (the fitted LUT)")
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


