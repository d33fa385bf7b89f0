"""``nasbench surrogate``: fit, evaluate and study the accuracy predictor
(:mod:`nasbench.predict.surrogate`) on a run's evaluated architectures or on
NAS-Bench-201's table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from nasbench.cli.app import BenchmarkDir, JsonOut
from nasbench.errors import UserError, ensure_writable

surrogate_app = typer.Typer(no_args_is_help=True, help="Fit and measure the accuracy "
                            "predictor (an ensemble surrogate PNAS ranks with).")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--sizes must be comma-separated integers, got {text!r}") from None
    if not out or any(n < 2 for n in out):
        raise UserError(f"--sizes needs integers >= 2, got {text!r}")
    return out


def table_set(benchmark_dir: Path, dataset: str, fidelity: int):
    """Returns (space, cells, validation accuracies %) of every NAS-Bench-201 cell at
    ``fidelity`` epochs (NaN where the table lacks a cell)."""
    from nasbench.benchmarks.nb201 import NB201Bench
    from nasbench.spaces.nb201 import NB201Space
    if fidelity not in (12, 200):
        raise UserError(f"--fidelity must be 12 or 200 (epochs), got {fidelity}")
    bench = NB201Bench(benchmark_dir)
    values = bench.val_accuracy(dataset, fidelity)
    space = NB201Space(NB201Space.default_deploy())
    archs = space.all_archs()
    return space, archs, [float(values.at[bench.index(a)]) for a in archs]


def run_set(run_dir: Path):
    """Returns (space, architectures, accuracies %) a run evaluated: its result.json's
    visited records that carry an accuracy (multi-trial runs)."""
    from nasbench.spaces import get_space
    p = Path(run_dir) / "result.json"
    if not p.is_file():
        raise UserError(f"{run_dir}: not a run directory (no result.json)")
    try:
        r = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{p} is not readable JSON ({e})") from None
    cls = get_space(r.get("space") or "darts")
    space = cls(cls.default_deploy())
    archs, acc = [], []
    for v in r.get("visited") or []:
        if v.get("accuracy") is None:
            continue
        archs.append(cls.arch_from_dict(v["arch"]))
        acc.append(float(v["accuracy"]))
    if len(archs) < 2:
        raise UserError(f"{run_dir}: the run evaluated {len(archs)} architecture(s) with "
                        f"an accuracy; the predictor needs a multi-trial run's")
    return space, archs, acc


def _source(run: Path | None, benchmark_dir: Path | None, dataset: str, fidelity: int):
    if (run is None) == (benchmark_dir is None):
        raise UserError("give a run directory or --benchmark-dir (NAS-Bench-201's table), "
                        "one of the two")
    return run_set(run) if run is not None else table_set(benchmark_dir, dataset, fidelity)


def proxy_features(space, archs, acc, path: Path, columns: str | None):
    """Returns (architectures, accuracies, extra [cells x columns], column names) of
    the valid cells of a `nasbench proxy --out` CSV, its proxy columns as features (the
    logarithm of the log-scale proxies: counts and products of weights); raises
    UserError for a file that is not one."""
    import pandas as pd

    from nasbench.proxies import proxy_names
    from nasbench.proxies.scorer import Aggregate
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise UserError(f"--proxies {path}: not a readable CSV ({e})") from None
    if "arch" not in df.columns or "valid" not in df.columns:
        raise UserError(f"--proxies {path}: not a `nasbench proxy --out` file (no arch "
                        f"and valid columns)")
    known = [c for c in df.columns if c in proxy_names()]
    names = known if columns is None else [c.strip() for c in columns.split(",")
                                           if c.strip() and c.strip() != "none"]
    missing = [c for c in names if c not in known]
    if missing or (not names and columns != "none"):
        raise UserError(f"--proxy-columns: {', '.join(missing) or 'none given'} not among "
                        f"the file's proxies ({', '.join(known)})")
    by_key = {space.arch_id(a): (a, y) for a, y in zip(archs, acc, strict=True)}
    out_a, out_y, out_e = [], [], []
    for _, row in df[df["valid"] == 1].iterrows():
        a = space.parse_arch(row["arch"])
        hit = by_key.get(space.arch_id(a))
        if hit is None:
            raise UserError(f"--proxies {path}: {row['arch']} is not a cell of the table")
        out_a.append(hit[0])
        out_y.append(hit[1])
        out_e.append([Aggregate.transform(c, float(row[c])) for c in names])
    return out_a, out_y, out_e, tuple(names)


@surrogate_app.command("study")
def study(
    benchmark_dir: BenchmarkDir = None,
    dataset: str = typer.Option("cifar10", help="cifar10, cifar100 or ImageNet16-120."),
    fidelity: int = typer.Option(12, help="Validation accuracy after 12 or 200 epochs "
                                 "(200: CIFAR-10, 9,445 cells)."),
    sizes: str = typer.Option("50,100,200,500", help="Training set sizes."),
    repeats: int = typer.Option(3, help="Random training sets per size."),
    kind: str = typer.Option("ensemble", help="ensemble (MLPs + forest + boosting), mlp "
                             "or forest."),
    members: int = typer.Option(5, help="MLPs in the ensemble."),
    seed: int = typer.Option(0, help="Seed of the samples and fits."),
    proxies: Path | None = typer.Option(None, help="A `nasbench proxy --out` CSV: study "
                                        "its valid cells, with their proxy scores as "
                                        "features beside the space's."),
    proxy_columns: str | None = typer.Option(None, help="With --proxies: the "
                                                "comma-separated columns to use (default: "
                                                "every single proxy in the file; none: "
                                                "the file's cells, space features only)."),
    out: Path | None = typer.Option(None, help="Also write the rows as JSON here."),
    json_out: JsonOut = False,
):
    """Rank correlation of the predictor on NAS-Bench-201, as predictor papers measure
    it: fit on N random cells, Kendall's tau and Spearman's rho on all the others, and
    on the distinct others (no twin of a training cell)."""
    from rich.console import Console
    from rich.table import Table

    from nasbench.predict.surrogate import rank_study
    if repeats < 1:
        raise UserError(f"--repeats must be positive, got {repeats}")
    if out is not None:
        ensure_writable(out, "--out")
    space, archs, acc = table_set(benchmark_dir, dataset, fidelity)
    extra, names = None, ()
    if proxies is not None:
        archs, acc, extra, names = proxy_features(space, archs, acc, proxies,
                                                  proxy_columns)
    err = Console(stderr=True)
    rows = rank_study(space, archs, acc, _sizes(sizes), repeats, seed, kind, members,
                      progress=None if json_out else lambda t: err.print(t),
                      extra=extra, extra_names=names)
    doc = {"space": "nb201", "dataset": dataset, "signal": f"{fidelity}-epoch validation "
           f"accuracy", "kind": kind, "members": members, "seed": seed,
           "cells": int(sum(a == a for a in acc)), "features": ["space", *names],
           "proxies": str(proxies) if proxies else None, "rows": rows}
    if out is not None:
        from nasbench.files import write_json
        write_json(out, doc)
    if json_out:
        json.dump(doc, sys.stdout, indent=2)
        print()
        return
    t = Table(title=f"accuracy predictor ({kind}) on NAS-Bench-201 {dataset}, "
                    f"{fidelity}-epoch validation accuracy")
    for c in ("train cells", "test cells", "Kendall tau", "Spearman", "distinct test",
              "Kendall tau distinct", "fit s"):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(str(r["n_train"]), str(r["n_test"]),
                  f"{r['kendall_tau']:.3f} ± {r['kendall_tau_std']:.3f}",
                  f"{r['spearman']:.3f} ± {r['spearman_std']:.3f}",
                  f"{r['n_test_distinct']:.0f}",
                  f"{r['kendall_tau_distinct']:.3f} ± {r['kendall_tau_distinct_std']:.3f}",
                  f"{r['fit_seconds']:.1f}")
    Console().print(t)


@surrogate_app.command("fit")
def fit(
    run: Path | None = typer.Argument(None, help="A multi-trial run directory (its "
                                      "evaluated architectures)."),
    out: Path = typer.Option(..., help="Where to write the fitted predictor."),
    benchmark_dir: BenchmarkDir = None,
    sample: int = typer.Option(200, help="With --benchmark-dir: cells to fit on."),
    dataset: str = typer.Option("cifar10", help="With --benchmark-dir: the data set."),
    fidelity: int = typer.Option(12, help="With --benchmark-dir: 12 or 200 epochs."),
    kind: str = typer.Option("ensemble", help="ensemble, mlp or forest."),
    members: int = typer.Option(5, help="MLPs in the ensemble."),
    seed: int = typer.Option(0, help="Seed of the sample and the fit."),
):
    """Fit the accuracy predictor on a run's evaluated architectures or a table sample."""
    import numpy as np

    from nasbench.predict.surrogate import AccuracyPredictor
    ensure_writable(out, "--out")
    space, archs, acc = _source(run, benchmark_dir, dataset, fidelity)
    if run is None:
        ok = [i for i, a in enumerate(acc) if a == a]
        if not 2 <= sample <= len(ok):
            raise UserError(f"--sample must be in 2..{len(ok)}, got {sample}")
        idx = np.random.default_rng(seed).choice(ok, sample, replace=False)
        archs, acc = [archs[i] for i in idx], [acc[i] for i in idx]
    model = AccuracyPredictor(space, kind, members, seed).fit(archs, acc)
    model.save(out)
    print(f"fitted {kind} predictor on {model.n_train} architectures -> {out}")


@surrogate_app.command("eval")
def evaluate(
    model: Path = typer.Argument(..., help="A predictor written by nasbench surrogate fit."),
    run: Path | None = typer.Argument(None, help="A multi-trial run directory to score "
                                      "on."),
    benchmark_dir: BenchmarkDir = None,
    dataset: str = typer.Option("cifar10", help="With --benchmark-dir: the data set."),
    fidelity: int = typer.Option(12, help="With --benchmark-dir: 12 or 200 epochs."),
    json_out: JsonOut = False,
):
    """Kendall's tau and Spearman's rho of a fitted predictor on held-apart architectures."""
    from nasbench.predict.surrogate import AccuracyPredictor, rank_scores
    m = AccuracyPredictor.load(model)
    space, archs, acc = _source(run, benchmark_dir, dataset, fidelity)
    if space.name != m.space.name:
        raise UserError(f"{model} predicts the {m.space.name} space, not {space.name}")
    seen = set(m.trained_on)
    pairs = [(a, y) for a, y in zip(archs, acc, strict=True)
             if y == y and space.arch_id(a) not in seen]
    if len(pairs) < 2:
        raise UserError("fewer than 2 held-apart architectures to score on")
    pred = m.predict([a for a, _ in pairs])[0]
    scores = {"n": len(pairs), **rank_scores(pred, [y for _, y in pairs])}
    if json_out:
        json.dump(scores, sys.stdout, indent=2)
        print()
    else:
        print(f"{scores['n']} held-apart architectures: Kendall tau "
              f"{scores['kendall_tau']:.3f}, Spearman {scores['spearman']:.3f}")
