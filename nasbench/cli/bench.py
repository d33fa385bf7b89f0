"""``nasbench bench``: score searchers against NAS-Bench-201's ground truth (see
:mod:`nasbench.run.bench`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from nasbench.cli.app import BenchmarkDir, JsonOut, Quiet
from nasbench.errors import UserError, ensure_writable
from nasbench.options import setting
from nasbench.progress import console
from nasbench.registry import SEARCHERS, searcher_config


def bench(
    method: str = typer.Option("random", help="Searcher(s), comma-separated, of the "
                               "registered ones: " + ", ".join(SEARCHERS.names()) +
                               " (multi-trial methods query the table; one-shot ones "
                               "train their NAS-Bench-201 supernet on --data-dir)."),
    device: str = typer.Option("hw-nas-bench:edgegpu", "--device", "-d",
                               help="Cost source(s), comma-separated: hw-nas-bench:DEV "
                               "(edgegpu, raspi4, edgetpu, pixel3, eyeriss, fpga: "
                               "HW-NAS-Bench's table) or, with --lut, the LUT's device."),
    benchmark_dir: BenchmarkDir = None,
    space: str = typer.Option("nb201", help="The benchmark's space (nb201)."),
    objective: str = typer.Option("acc+latency", help="acc+latency or acc+energy."),
    latency_target: str | None = typer.Option(None, help="Cost target of the search "
                                                 "(latency: 5ms, 5 or 0.005s); regret is "
                                                 "against the best cell under it."),
    energy_target: float | None = typer.Option(None, help="With acc+energy: target in "
                                                  "the cost's unit (mJ for a table)."),
    queries: int = typer.Option(100, help="Multi-trial budget: distinct cells queried "
                                "per seed."),
    seeds: int = typer.Option(3, help="Seeds (0..N-1) per method and device."),
    dataset: str = typer.Option("cifar10", help="cifar10, cifar100 or ImageNet16-120 "
                                "(the tables' data set)."),
    fidelity: int = typer.Option(12, help="What multi-trial searches see: 12-epoch "
                                 "validation accuracy, or 200 (CIFAR-10)."),
    evaluate: str = typer.Option("table", help="What multi-trial searches see: table "
                                 "(NAS-Bench-201's validation accuracy) or zc (zero-cost "
                                 "proxies on the --data-dir images; --set proxy=NAME, "
                                 "zc-batch=N...)."),
    lut: str | None = typer.Option(None, help="Your nb201 LUT: costs of your device "
                                      "instead of HW-NAS-Bench's."),
    nats: str | None = typer.Option(None, help="A NATS-Bench topology archive "
                                       "(NATS-tss-v1_0-3ffb9-simple; needs nasbench[nats]): "
                                       "200-epoch accuracies (reported test, and "
                                       "--fidelity 200 on every data set)."),
    data_dir: str | None = typer.Option(None, help="one-shot (darts, pcdarts, enas) and "
                                           "--evaluate zc: CIFAR-10 images "
                                           "(cifar-10-batches-py folder)."),
    epochs: int | None = typer.Option(None, help="one-shot methods: search epochs."),
    steps_per_epoch: int | None = typer.Option(None, help="one-shot methods: cap on steps "
                                                  "per epoch (0: whole split)."),
    preset: str = typer.Option("quick", help="one-shot methods: quick or paper."),
    cost_weight: float | None = typer.Option(None, help="darts/pcdarts: weight of the "
                                                "cost term (0: accuracy alone, as in the "
                                                "NAS-Bench-201 paper)."),
    settings: list[str] = typer.Option([], "--set", help="A method's own option as "
                                       "FLAG=VALUE (repeatable), for every method given "
                                       "that declares it, e.g. --set target-form=absolute "
                                       "--set warmup-epochs=1 (see nasbench search "
                                       "--method M --help)."),
    storage: str | None = typer.Option(None, help="Multi-trial methods: keep each seed's "
                                          "study in this database (postgresql://..., "
                                          "sqlite:///PATH; default: in memory)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default "
                                       "bench/<time>); rerun with the same --out to "
                                       "reuse finished seeds."),
    quiet: Quiet = False,
    json_out: JsonOut = False,
):
    """Run searchers against NAS-Bench-201 ground truth over seeds and score them:
    regret, hypervolume gap, IGD, anytime curves, the signal's floor; JSON, CSV, HTML."""
    from nasbench.config import parse_latency, parse_objective
    from nasbench.run.bench import COST_WEIGHTED, BenchSpec, run_bench
    metrics = parse_objective(objective)
    target = None
    if metrics == ["latency"]:
        if energy_target is not None:
            raise UserError("--energy-target needs --objective acc+energy")
        target = parse_latency(latency_target)
    elif metrics == ["energy"]:
        if latency_target is not None:
            raise UserError("--latency-target needs --objective acc+latency")
        target = energy_target
    methods = [m.strip() for m in method.split(",") if m.strip()]
    devices = [d.strip() for d in device.split(",") if d.strip()]
    if not methods or not devices:
        raise UserError("--method and --device need at least one name each")
    if cost_weight is not None and not (cost_weight >= 0 and cost_weight < float("inf")):
        raise UserError(f"--cost-weight must be a finite number >= 0, got {cost_weight}")
    if lut is not None and not Path(lut).is_file():
        raise UserError(f"--lut {lut}: file not found")
    # every check before any output: a refused command leaves no folder behind
    if seeds < 1 or queries < 1:
        raise UserError("--seeds and --queries must be positive")
    if evaluate not in ("table", "zc"):
        raise UserError(f"--evaluate for bench: table or zc, got {evaluate!r}")
    if storage:
        from nasbench.searchers.storage import check_url
        check_url(storage)
    if evaluate == "zc" and not data_dir:
        raise UserError("--evaluate zc scores the cells on real images: give --data-dir "
                        "(CIFAR-10, e.g. ../shared/data/cifar10-mini)")
    from nasbench.benchmarks.nb201 import NB201Bench, resolve_benchmark_dir
    from nasbench.benchmarks.tabular import is_tabular
    from nasbench.searchers import get_searcher
    benchmark_dir = resolve_benchmark_dir(benchmark_dir)   # default: the fetched tables
    NB201Bench(benchmark_dir)                       # the folder exists (one line if not)
    own: dict[str, dict] = {m: {} for m in methods}
    for m in methods:
        get_searcher(m)
    for text in settings:                   # each applies to the methods declaring it
        hits = [(m, setting(searcher_config(m), text)) for m in methods]
        hits = [(m, kv) for m, kv in hits if kv is not None]
        if not hits:
            raise UserError(f"--set {text!r}: none of {', '.join(methods)} has that option")
        for m, (k, v) in hits:
            own[m][k] = v
    for d in devices:
        if is_tabular(d):
            from nasbench.benchmarks.hwnas import parse_tabular_device
            parse_tabular_device(d)
    out = out or Path("bench") / time.strftime("%Y%m%d-%H%M%S")
    ensure_writable(out, "--out", folder=True)

    def log(line: str) -> None:
        if not quiet and not json_out:
            console.print(line, highlight=False, markup=False)

    results = []
    for d in devices:
        for m in methods:
            spec = BenchSpec(method=m, device=d, benchmark_dir=str(benchmark_dir),
                             objective=objective, target=target, queries=queries,
                             seeds=seeds, dataset=dataset, fidelity=fidelity,
                             evaluate=evaluate, lut=lut, nats=nats,
                             space=space, data_dir=data_dir, epochs=epochs,
                             steps_per_epoch=steps_per_epoch, preset=preset,
                             extra={**own[m], **({} if cost_weight is None or
                                                  m not in COST_WEIGHTED else
                                                  {"cost_weight": cost_weight})})
            sub = out / f"{m}-{d.replace(':', '-')}"
            log(f"bench {m} on {d} ({seeds} seeds) -> {sub}")
            r = run_bench(spec, sub, quiet=quiet or json_out, log=log, storage=storage)
            results.append((sub, r))
            log(summary_line(r))
    # the report writes bench.csv beside it: one row per (method, device, seed)
    from reports import ReportError, build_bench_report
    try:
        report = build_bench_report([p for p, _ in results], out / "bench.html")
    except ReportError as e:
        raise UserError(str(e)) from None
    if json_out:
        sys.stdout.write(json.dumps([r for _, r in results], indent=1, default=str) + "\n")
    else:
        log(f"wrote {report} and {report.with_suffix('.csv')}")


def summary_line(r: dict) -> str:
    """Returns one line of a bench result's aggregate (mean +- std over seeds)."""
    a = r["aggregate"]

    def ms(k, fmt="{:.2f}"):
        s = a[k]
        if s["mean"] is None:
            return "n/a"
        return fmt.format(s["mean"]) + " +- " + fmt.format(s["std"])

    fl = r["floor"]
    flo = f"{fl['regret']:.2f} pp" if fl.get("regret") is not None else "n/a"
    v200 = (f" (200-epoch validation {ms('val_accuracy_200')} %)"
            if a.get("val_accuracy_200", {}).get("mean") is not None else "")
    return (f"{r['method']} on {r['device']}: test accuracy {ms('accuracy')} %{v200}, regret "
            f"{ms('regret')} pp, HV gap {ms('hv_gap', '{:.4f}')}, IGD "
            f"{ms('igd', '{:.4f}')}, target met {100 * (a['met_share'] or 0):.0f} %; "
            f"signal floor: regret {flo}, HV gap {fl.get('hv_gap', float('nan')):.4f}")
