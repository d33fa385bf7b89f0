"""``nasbench lut calibrate|study``: fit a LUT's predictors (the linear calibration, the
learned model) from measured networks or a HW-NAS-Bench table, and study them."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from nasbench.cli.app import BenchmarkDir, JsonOut, Quiet, lut_app, out
from nasbench.cli.lut import (
    _check_rounds,
    _load_lut,
    _progress,
    _validation_inputs,
    check_lut_space,
)
from nasbench.errors import UserError


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
    model: str = typer.Option("linear", help="linear (a scale per op + overhead) or "
                              "learned (the LUT sum + a ridge model of its residual over "
                              "the network's structure; needs ~50-100 networks)."),
    prior: list[str] | None = typer.Option(
        None, "--prior", help="Learned model: a known device's cost as an input "
        "(few-shot transfer): hw-nas-bench:DEV, or another LUT's learned model file; "
        "repeatable."),
    metric: str = typer.Option("latency", help="With --device hw-nas-bench:DEV and "
                               "--model learned: latency or energy."),
    benchmark_dir: BenchmarkDir = None,
    dataset: str = typer.Option("cifar10", help="With --device hw-nas-bench:DEV: the "
                                "tables' data set."),
    quiet: Quiet = False,
    json_out: JsonOut = False,
):
    """Fit a predictor of the LUT from end-to-end measurements (or those of a
    validation, or a HW-NAS-Bench device's table): the linear calibration (per-op
    scale + per-network overhead, <lut>.calib-b<batch>.json) or the learned model
    (<lut>.learned-b<batch>.json); stored beside the LUT."""
    import random
    if model not in ("linear", "learned"):
        raise UserError(f"--model must be linear or learned, got {model!r}")
    if prior and model != "learned":
        raise UserError("--prior needs --model learned")
    if metric not in ("latency", "energy"):
        raise UserError(f"--metric must be latency or energy, got {metric!r}")
    if device is not None and device.startswith("hw-nas-bench"):
        return _calibrate_tabular(lut_file, device, space, samples, seed, model, features,
                                  prior or [], metric, benchmark_dir, dataset, quiet,
                                  json_out)
    if metric != "latency":
        raise UserError("--metric energy needs --device hw-nas-bench:DEV (measured "
                        "networks give latency)")

    from nasbench.validate import (
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
    least = 5 if model == "learned" else 4         # (checked before anything is measured)
    if samples < least and from_validation is None:
        raise UserError(f"--samples must be at least {least}")
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
    if model == "learned":
        return _fit_learned_and_save(
            lut, lut_file, bound, [bound.arch_from_dict(p["genotype"]) for p in pts],
            [p["measured_ms"] for p in pts], "latency", prior or [], None, None,
            {"device": device or lut.provenance.get("device", {}).get("id"),
             "seed": seed, "source": str(from_validation) if from_validation else
             "measured end to end (lut calibrate)"}, quiet, json_out)
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


def _parse_priors(specs: list[str], benchmark_dir, dataset: str) -> list:
    """Returns the priors of ``--prior`` values (hw-nas-bench:DEV or a model file)."""
    from nasbench.benchmarks.hwnas import TablePrior, parse_tabular_device
    from nasbench.benchmarks.nb201 import resolve_benchmark_dir
    from nasbench.predict.learned import ModelPrior
    out = []
    for s in specs:
        if s.startswith("hw-nas-bench"):
            out.append(TablePrior(parse_tabular_device(s),
                                  resolve_benchmark_dir(benchmark_dir), dataset))
        elif Path(s).is_file():
            out.append(ModelPrior(Path(s)))
        else:
            raise UserError(f"--prior {s!r} is neither hw-nas-bench:DEV nor a learned "
                            f"model file")
    return out


def _fit_learned_and_save(lut, lut_file: Path, space, archs: list, measured: list,
                          metric: str, prior: list[str], benchmark_dir, dataset,
                          info: dict, quiet: bool, json_out: bool) -> None:
    """Fits the learned model on (architectures, measured cost), stores it beside the
    LUT and reports its leave-one-out figures."""
    from nasbench.predict.learned import Terms, fit_learned, learned_path
    from nasbench.validate import write_json
    priors = _parse_priors(prior, benchmark_dir, dataset or "cifar10")
    rows = Terms(space, archs).rows(lut, metric, priors)
    batch = space.deploy.batches[0]
    model = fit_learned(rows, measured, space=space.name, metric=metric, batch=batch,
                        lut_sha256=lut.sha256(), priors=priors,
                        info={**info, "lut_path": str(Path(lut_file).resolve())})
    path = write_json(learned_path(lut_file, batch, metric), model.to_dict())
    if json_out:
        print(json.dumps({k: v for k, v in model.to_dict().items() if k != "inv"},
                         indent=1, default=float))
    elif quiet:
        print(path)
    else:
        f = model.fit["leave_one_out"]
        n = len(model.names)
        terms = ("the plain sum alone (the structure adds nothing leave-one-out sees)"
                 if model.names == ["lut:plain"] else f"{n} terms")
        out.print(f"wrote {path}: {metric} = LUT sum + a ridge model of {terms}, fitted "
                  f"on {len(measured)} networks; leave-one-out: "
                  f"{f['within_10pct']:.0%} within 10%, MAPE {f['mape_pct']:.1f}%, "
                  f"Spearman {f['spearman']:.3f}", highlight=False)


def _calibrate_tabular(lut_file: Path, device: str, space: str, samples: int, seed: int,
                       model: str, features: str, prior: list[str], metric: str,
                       benchmark_dir, dataset: str, quiet: bool, json_out: bool) -> None:
    """``lut calibrate --device hw-nas-bench:DEV``: fit on ``samples`` random measured
    connected cells of the table (the others are left for ``lut validate``)."""
    import random

    from nasbench.benchmarks import NB201Bench
    from nasbench.benchmarks.hwnas import parse_tabular_device, table_targets
    from nasbench.spaces.nb201 import NB201Space
    from nasbench.validate import calibration_path, fit_calibration, group_sums, write_json
    dev = parse_tabular_device(device)
    if space != "nb201":
        raise UserError(f"{device} holds NAS-Bench-201 cells: use --space nb201")
    lut = _load_lut(lut_file)
    check_lut_space(lut, space)
    bench = NB201Bench(benchmark_dir)
    cells, y = table_targets(bench, dev, dataset, metric)
    if not 5 <= samples <= len(cells):
        raise UserError(f"--samples must be between 5 and the {len(cells)} connected "
                        f"cells {dev} measured")
    pick = sorted(random.Random(seed).sample(range(len(cells)), samples))
    idx = [cells[i] for i in pick]
    archs = [bench.arch(i) for i in idx]
    bound = NB201Space(NB201Space.deploy_from_lut(lut))
    info = {"device": device, "dataset": dataset, "seed": seed, "cells": idx,
            "source": f"HW-NAS-Bench table ({dataset}), {samples} random connected cells"}
    meas = [float(y[i]) for i in pick]
    if model == "learned":
        return _fit_learned_and_save(lut, lut_file, bound, archs, meas, metric, prior,
                                     benchmark_dir, dataset, info, quiet, json_out)
    if metric != "latency":
        raise UserError("the linear calibration is of latency: use --model learned for "
                        "energy")
    calib = fit_calibration([group_sums(lut, bound, a, features) for a in archs], meas,
                            lut.sha256(), bound.deploy.batches[0], features, "nb201")
    calib.fit |= info
    path = write_json(calibration_path(lut_file, bound.deploy.batches[0]), calib.to_dict())
    f = calib.fit["leave_one_out"]
    if json_out:
        print(json.dumps(calib.to_dict(), indent=1))
    else:
        out.print(f"wrote {path}: linear calibration on {samples} cells of {dev}; "
                  f"leave-one-out: {f['within_10pct']:.0%} within 10%, MAPE "
                  f"{f['mape_pct']:.1f}%", highlight=False)


def _validation_points(path: Path, lut, features: str) -> list[dict]:
    """Returns the (batch, measured ms, feature sums) of the networks a validation of
    ``lut`` stored, their architectures read by the LUT's space."""
    from nasbench.validate import group_sums, space_from_lut
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
                    "genotype": space.arch_to_dict(arch),
                    "group_sums_ms": group_sums(lut, space, arch, features)})
    return out


@lut_app.command("study")
def lut_study(
    benchmark_dir: BenchmarkDir = None,
    device: list[str] | None = typer.Option(None, "--device", "-d", help="HW-NAS-Bench "
                                               "devices (hw-nas-bench:DEV; default all)."),
    metric: str = typer.Option("latency", help="latency or energy."),
    samples: int = typer.Option(100, help="Cells the predictors are fitted on."),
    few_shot: int = typer.Option(20, help="Cells of the few-shot transfer (0: skip)."),
    seeds: int = typer.Option(5, help="Random draws of the fitted cells."),
    dataset: str = typer.Option("cifar10", help="The tables' data set."),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="JSON output file."),
    quiet: Quiet = False,
    json_out: JsonOut = False,
):
    """How well the plain LUT sum, the linear calibration and the learned model predict
    HW-NAS-Bench's devices from N measured cells (each scored on all the other cells),
    the few-shot transfer with the other devices as priors, and the table's own noise
    floor."""
    from nasbench.benchmarks import NB201Bench
    from nasbench.benchmarks.hwnas import parse_tabular_device
    from nasbench.benchmarks.nb201 import DEVICE_METRICS, DEVICES
    from nasbench.diagnostics.cost_study import study
    from nasbench.validate import write_json
    if metric not in ("latency", "energy"):
        raise UserError(f"--metric must be latency or energy, got {metric!r}")
    if seeds < 1 or samples < 5 or (few_shot and not 5 <= few_shot <= samples):
        raise UserError("--seeds must be >= 1, --samples >= 5 and --few-shot 0 or "
                        "between 5 and --samples")
    devs = [parse_tabular_device(d) for d in device] if device else \
        [d for d in DEVICES if metric in DEVICE_METRICS[d]]
    for d in devs:
        if metric not in DEVICE_METRICS[d]:
            raise UserError(f"HW-NAS-Bench has no {metric} for {d}")
    bench = NB201Bench(benchmark_dir)
    res = []
    with _progress("study", quiet or json_out) as cb:
        for k, d in enumerate(devs):
            res.append(study(bench, d, metric, samples, seeds, dataset, few_shot or None,
                             progress=lambda i, n, k=k: cb(k * n + i, len(devs) * n)))
    if out_file:
        write_json(out_file, {"studies": res})
    if json_out:
        print(json.dumps(res, indent=1, default=float))
        return
    t = Table(title=f"{metric}, {dataset}: fitted on {samples} cells, scored on the rest "
                    f"(mean of {seeds} draws; within 10 % / Spearman)")
    cols = ["device", "floor", "plain", "linear", "learned"]
    if few_shot:
        cols += [f"{few_shot} cells", f"{few_shot} + priors"]
    for c in cols:
        t.add_column(c, justify="left" if c == "device" else "right")
    for r in res:
        def f(k, r=r):
            return f"{r[k]['within_10pct']['mean']:.0%} / {r[k]['spearman']['mean']:.3f}"
        row = [r["device"], f"{r['floor']['within_10pct']:.0%}", f("plain"), f("linear"),
               f("learned")]
        if few_shot:
            row += [f("few_shot"), f("few_shot_prior")]
        t.add_row(*row)
    out.print(t)
    out.print("[dim]floor: the share a perfect predictor would reach, from cells that "
              "build the same network (measured twice)[/]")
