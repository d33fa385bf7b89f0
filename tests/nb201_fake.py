"""A synthetic NAS-Bench-201 folder in the shared files' format (all 15,625 cells), so
bench tests run without ../shared and with values computed by hand: accuracy and
cost are known functions of the cell."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from nasbench.benchmarks.nb201 import DATASETS, DEVICE_METRICS
from nasbench.spaces.nb201 import NB201Space

#: per-instance cost of each op (ms); a network has 15 instances per edge
OP_MS = {"none": 0.0, "skip_connect": 0.001, "nor_conv_1x1": 0.01, "nor_conv_3x3": 0.03,
         "avg_pool_3x3": 0.005}
FIXED_MS = 0.5
#: accuracy points per op on an edge
OP_ACC = {"none": 0.0, "skip_connect": 2.0, "nor_conv_1x1": 6.0, "nor_conv_3x3": 10.0,
          "avg_pool_3x3": 1.0}


def cost_ms(arch) -> float:
    """Returns the synthetic latency of a cell's network (ms): fixed + 15 x op costs."""
    return FIXED_MS + 15 * sum(OP_MS[o] for o in arch.ops)


def write_fake_nb201(folder: Path, seed: int = 0) -> Path:
    """Writes the five CSV files into ``folder``; returns it. Test accuracy = 30 + the
    ops' points (+ noise), 10 (+ noise) for a disconnected cell; validation = test +
    independent noise (a noisy signal)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    archs = NB201Space.all_archs(None)
    order = list(range(len(archs)))
    rng.shuffle(order)                      # indices are not the product order
    rows, hw = [], []
    for idx, k in enumerate(order):
        a = archs[k]
        # a cell whose output ignores its input is at chance, as in the real tables
        base = 30.0 + sum(OP_ACC[o] for o in a.ops) if a.connected() else 10.0
        row = {"index": idx, "arch": a.to_str()}
        for d in DATASETS:
            test = base + rng.gauss(0, 0.3)
            row[f"{d}-test"] = round(test, 4)
            row[f"{d}-val"] = round(test + rng.gauss(0, 0.5), 4)
        rows.append(row)
        h = {"index": idx, "arch": a.to_str()}
        for dev, metrics in DEVICE_METRICS.items():
            for m in metrics:
                h[f"{dev}_{m}"] = round(cost_ms(a) * (2.0 if m == "energy" else 1.0), 6)
        hw.append(h)
    pd.DataFrame(rows).to_csv(folder / "nb201-12epoch-accuracy.csv", index=False)
    for d in DATASETS:
        pd.DataFrame(hw).to_csv(folder / f"hw-nas-bench-{d}.csv", index=False)
    v200 = [{"index": r["index"], "arch": r["arch"], "cifar10-valid-200ep":
             r["cifar10-val"] + 4.0} for r in rows[::2]]
    pd.DataFrame(v200).to_csv(folder / "nb201-cifar10-valid-200epoch.csv", index=False)
    return folder
