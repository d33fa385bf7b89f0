"""Does the quick retrain budget rank architectures like a longer one?
``python -m nasbench.diagnostics.proxy_rank --dataset cifar10 --data-dir DIR --out DIR``.

Trains the reference networks (ResNet-20, MobileNetV2, DARTS_V2, PC-DARTS) and
``--sampled`` uniformly sampled DARTS cells with the run's retrain budget (the quick
preset's, as ``nasbench search`` retrains its derived network and references: the same
:func:`nasbench.run.references.train_reference`) and again with ``--factor`` times its
epochs, evaluates each on the test split, and prints Kendall's tau and Spearman's rho
between the two rankings with a bootstrap 95 % interval over the architectures, and how
many pairs the short budget orders differently while their long-budget accuracies are
separable (disjoint 95 % Wilson intervals).

Every trained result is kept in ``OUT/proxy_rank.json`` (atomic writes), so an
interrupted run resumes where it stopped; the short budget runs first for every
architecture, so a partial run already answers part of the question.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from nasbench.errors import UserError
from nasbench.stats import wilson_interval


def rank_agreement(short: list[float], long: list[float], boot: int = 2000,
                   seed: int = 0) -> dict:
    """Returns Kendall's tau (with its p-value) and Spearman's rho between two lists of
    accuracies of the same architectures, and a bootstrap 95 % interval of tau over the
    architectures (resampled with replacement; resamples with fewer than 3 distinct
    architectures are skipped)."""
    from scipy.stats import kendalltau, spearmanr
    a, b = np.asarray(short, float), np.asarray(long, float)
    tau, p = kendalltau(a, b)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(boot):
        i = rng.integers(0, len(a), len(a))
        if len(set(i.tolist())) < 3:
            continue
        t = kendalltau(a[i], b[i])[0]
        if np.isfinite(t):
            taus.append(t)
    lo, hi = (np.percentile(taus, [2.5, 97.5]).tolist() if taus else (None, None))
    return {"kendall_tau": float(tau), "p_value": float(p),
            "spearman": float(spearmanr(a, b)[0]), "tau_ci95": [lo, hi], "n": len(a)}


def separable_swaps(short: list[float], long: list[dict]) -> tuple[int, int]:
    """Returns (pairs the short budget orders against the long one although the long
    budget's Wilson intervals are disjoint, pairs with disjoint long-budget intervals)."""
    swaps = sep = 0
    for i in range(len(short)):
        for j in range(i + 1, len(short)):
            li, lj = long[i]["ci95"], long[j]["ci95"]
            if li[1] < lj[0] or lj[1] < li[0]:
                sep += 1
                if (short[i] - short[j]) * (long[i]["acc"] - long[j]["acc"]) < 0:
                    swaps += 1
    return swaps, sep


def architectures(space, sampled: int, seed: int) -> list[tuple[str, object]]:
    """Returns [(name, genotype or None)]: the default references (None: hand-designed,
    built by name) then ``sampled`` uniform DARTS cells."""
    from nasbench.run.references import DEFAULT_REFERENCES, REFERENCES
    out = [(n, REFERENCES[n].genotype) for n in DEFAULT_REFERENCES]
    rng = random.Random(seed)
    return out + [(f"sample{i}", space.sample(rng)) for i in range(sampled)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--sampled", type=int, default=6, help="sampled DARTS cells")
    ap.add_argument("--factor", type=int, default=10, help="long budget = factor x epochs")
    ap.add_argument("--channels", type=int, default=None,
                    help="DARTS-space width while training (default: the preset's)")
    ap.add_argument("--layers", type=int, default=None,
                    help="DARTS-space cells while training (default: the preset's)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="short budget's epochs (default: the preset's)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="steps per epoch (default: the preset's)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0, help="seed of the sampled cells")
    args = ap.parse_args(argv)

    import torch

    from nasbench.data import load_dataset
    from nasbench.files import write_json
    from nasbench.run.references import build_reference, train_reference
    from nasbench.searchers.darts_config import DARTSConfig
    from nasbench.spaces import get_space
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = DARTSConfig.from_preset("quick", "darts", dataset=args.dataset,
                                      data_dir=args.data_dir, references="none",
                                      train_channels=args.channels,
                                      train_layers=args.layers, train_epochs=args.epochs,
                                      train_max_steps=args.max_steps)
        if args.sampled < 0 or args.factor < 2:
            raise UserError("--sampled must be >= 0 and --factor >= 2")
        data = load_dataset(cfg.dataset, cfg.data_dir, False, cfg.data_input_size)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    deploy = cfg.deploy(num_classes=data.num_classes, in_channels=data.in_channels)
    space = get_space("darts")(deploy)
    archs = architectures(space, args.sampled, args.seed)
    short = cfg.retrain_budget()
    budgets = {"short": short, "long": replace(short, epochs=short.epochs * args.factor)}
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "proxy_rank.json"
    res = json.loads(out.read_text()) if out.is_file() else {}
    res.setdefault("budgets", {k: asdict(v) for k, v in budgets.items()})
    res.setdefault("data", data.describe())
    res.setdefault("archs", {n: (str(g) if g is not None else n) for n, g in archs})
    runs = res.setdefault("runs", {})
    todo = [(b, n, g) for b in budgets for n, g in archs if f"{b}/{n}" not in runs]
    for k, (b, name, g) in enumerate(todo, 1):
        budget = budgets[b]
        with torch.random.fork_rng():
            torch.manual_seed(budget.seed)
            if g is not None and name.startswith("sample"):
                net = space.build(g, **cfg.train_build_options())
            else:
                net = build_reference(name, size="train", num_classes=data.num_classes,
                                      in_channels=data.in_channels,
                                      input_size=data.input_size,
                                      channels=budget.channels, layers=budget.layers)
        t0 = time.time()
        tr = train_reference(net, data, budget, True)
        n = tr["test_n"]
        lo, hi = wilson_interval(round(tr["test_acc"] * n), n)
        runs[f"{b}/{name}"] = {"acc": 100 * tr["test_acc"], "n": n,
                               "ci95": [100 * lo, 100 * hi], "steps": tr["steps"],
                               "seconds": round(time.time() - t0, 1)}
        write_json(out, res)
        print(f"[{k}/{len(todo)}] {b} {name}: {100 * tr['test_acc']:.2f} % "
              f"({tr['steps']} steps, {time.time() - t0:.0f} s)", flush=True)
    names = [n for n, _ in archs if f"short/{n}" in runs and f"long/{n}" in runs]
    if len(names) < 3:
        print(f"{len(names)} architectures have both budgets; need 3 for a ranking")
        return 0
    s = [runs[f"short/{n}"]["acc"] for n in names]
    lg = [runs[f"long/{n}"] for n in names]
    agree = rank_agreement(s, [r["acc"] for r in lg])
    swaps, sep = separable_swaps(s, lg)
    res["agreement"] = agree | {"separable_pairs": sep, "separable_swapped": swaps,
                                "architectures": names}
    write_json(out, res)
    for n in names:
        print(f"{n:12s} short {runs[f'short/{n}']['acc']:6.2f} %   "
              f"long {runs[f'long/{n}']['acc']:6.2f} %")
    ci = agree["tau_ci95"]
    print(f"Kendall tau {agree['kendall_tau']:.3f} (bootstrap 95 % CI {ci[0]:.2f} to "
          f"{ci[1]:.2f}, p {agree['p_value']:.3f}), Spearman {agree['spearman']:.3f}, "
          f"{len(names)} architectures; {swaps} of {sep} pairs separable at the long "
          f"budget are swapped by the short one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
