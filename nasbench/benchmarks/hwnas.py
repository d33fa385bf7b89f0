"""A per-op LUT fitted to a HW-NAS-Bench device, and how additive that device is.

HW-NAS-Bench measured whole networks, not ops. A cell's network holds 15 copies of
each of its 6 edge ops (5 cells in each of 3 stages) plus fixed parts, so its cost is
modelled as

    cost = b + sum_op n_op x c_op

with ``n_op`` the number of instances of ``op`` in the network and ``b, c_op >= 0``
fitted by non-negative least squares (``scipy.optimize.nnls``) over the connected cells
measured there. In a cell whose output does not depend on its input every network
computes zeros, and some devices' compilers then remove nearly all of it (raspi4 and
pixel3 time such networks at 0.003-0.02 ms): those are left out of the fit and counted
apart. ``none`` costs 0 (its column is collinear with ``b``: a cell has 6 edges). Whole
networks cannot tell the stages apart (each cell repeats in every stage), so each
stage's entry of an op holds the op's mean cost per instance ``c_op``; the fixed parts
are identifiable only as their total ``b``, stored on the stem's entry (the other fixed
entries hold 0). The provenance says so: the entries are fitted, not measured.

:func:`additivity` says how well that sum explains the device: on cells held apart from
the fit, the share predicted within +-10 %, MAPE and Spearman. HW-NAS-Bench notes that
summed op costs miss fusion on some devices; this is the figure.
"""

from __future__ import annotations

import math
import random

import numpy as np

from profilers.lut import LUT

from ..errors import UserError
from ..predict.learned import register_prior
from ..spaces.nb201 import NB201Arch, NB201DeployConfig, NB201Space
from .nb201 import DEVICE_METRICS, NB201Bench, check_dataset

DEVICE_NAMES = {"edgegpu": "NVIDIA Jetson TX2 (edge GPU)", "raspi4": "Raspberry Pi 4",
                "edgetpu": "Google Edge TPU", "pixel3": "Google Pixel 3",
                "eyeriss": "Eyeriss (ASIC, simulated)", "fpga": "FPGA (ZC706, simulated)"}
INPUT = {"cifar10": (32, 10), "cifar100": (32, 100), "ImageNet16-120": (16, 120)}


def parse_tabular_device(spec: str) -> str:
    """Returns the HW-NAS-Bench device of ``hw-nas-bench:DEV``; raises UserError."""
    dev = spec.split(":", 1)[1] if ":" in spec else ""
    if dev not in DEVICE_METRICS:
        raise UserError(f"unknown HW-NAS-Bench device {dev!r} in {spec!r} (use "
                        f"hw-nas-bench:{'|'.join(DEVICE_METRICS)})")
    return dev


def tabular_space(dataset: str) -> NB201Space:
    """Returns the nb201 space on the network HW-NAS-Bench measured for ``dataset``."""
    check_dataset(dataset)
    size, classes = INPUT[dataset]
    return NB201Space(NB201DeployConfig(input_size=size, num_classes=classes))


def _design(space: NB201Space, archs: list[NB201Arch]) -> tuple[np.ndarray, list]:
    """Returns (instance counts [cells x op columns + 1 constant], the columns' ops);
    ``none`` has no column."""
    cols = [op for op in space.candidate_ops if op != "none"]
    per_edge = 3 * space.deploy.cells
    x = np.zeros((len(archs), len(cols) + 1))
    for r, a in enumerate(archs):
        for op in a.ops:
            if op != "none":
                x[r, cols.index(op)] += per_edge
    x[:, -1] = 1.0
    return x, cols


def fit_costs(bench: NB201Bench, device: str, dataset: str = "cifar10",
              metric: str = "latency", cells: list[int] | None = None) -> dict:
    """Returns the fitted per-instance costs of ``device``: ``{"coef": {op: value},
    "fixed": b, "unit", "cells": fitted cell count}`` (ms for latency, mJ for
    energy), fitted on ``cells`` (indices; default every measured cell)."""
    from scipy.optimize import nnls
    if metric not in DEVICE_METRICS[device]:
        raise UserError(f"HW-NAS-Bench has no {metric} for {device} (it has "
                        f"{', '.join(DEVICE_METRICS[device])})")
    space = tabular_space(dataset)
    y_all = bench.hardware(dataset)[f"{device}_{metric}"]
    idx = [i for i in (cells if cells is not None else y_all.index) if not np.isnan(y_all[i])]
    archs = [bench.arch(int(i)) for i in idx]
    keep = [k for k, a in enumerate(archs) if a.connected()]
    idx, archs = [idx[k] for k in keep], [archs[k] for k in keep]
    x, cols = _design(space, archs)
    coef, _ = nnls(x, y_all.loc[idx].to_numpy(dtype=float))
    return {"coef": dict(zip(cols, coef[:-1].tolist(), strict=True)),
            "fixed": float(coef[-1]), "unit": "ms" if metric == "latency" else "mJ",
            "cells": len(idx), "device": device, "dataset": dataset, "metric": metric}


def predict(fit: dict, space: NB201Space, archs: list[NB201Arch]) -> np.ndarray:
    """Returns the fitted sum of each architecture (the fit's unit)."""
    x, cols = _design(space, archs)
    w = np.array([fit["coef"][c] for c in cols] + [fit["fixed"]])
    return x @ w


def additivity(bench: NB201Bench, device: str, dataset: str = "cifar10",
               metric: str = "latency", seed: int = 0, holdout: float = 0.5) -> dict:
    """Returns how additive ``device`` is: fit on a random ``1 - holdout`` of the
    measured connected cells, then on the held-apart ones ``within_10pct`` (share),
    ``mape_pct``, ``spearman``, ``kendall`` and ``bias_pct`` of the fitted sum against
    the table; ``disconnected`` counts the cells left out (see the module doc)."""
    from ..predict.calibration import error_metrics
    y = bench.hardware(dataset)[f"{device}_{metric}"].dropna()
    conn = [i for i in y.index if bench.arch(int(i)).connected()]
    disconnected = len(y) - len(conn)
    y = y.loc[conn]
    idx = list(y.index)
    random.Random(seed).shuffle(idx)
    cut = int(len(idx) * (1 - holdout))
    fit = fit_costs(bench, device, dataset, metric, idx[:cut])
    test = idx[cut:]
    pred = predict(fit, tabular_space(dataset), [bench.arch(int(i)) for i in test])
    m = error_metrics(pred.tolist(), y.loc[test].tolist())
    return {"device": device, "dataset": dataset, "metric": metric, "fit_cells": cut,
            "test_cells": len(test), "disconnected": disconnected, **m}


def fitted_lut(bench: NB201Bench, device: str, dataset: str = "cifar10",
               cells: list[int] | None = None):
    """Returns a LUT of the nb201 space's op instances for ``device`` fitted to every
    measured cell, or to ``cells`` (indices) only (latency, and energy where
    HW-NAS-Bench has it, in J), labelled in its provenance as fitted from HW-NAS-Bench,
    not measured."""
    from nasbench.luts import instance_item
    space = tabular_space(dataset)
    fits = {m: fit_costs(bench, device, dataset, m, cells) for m in DEVICE_METRICS[device]}
    entries = {}
    for inst in space.enumerate_instances():
        vals = {}
        for m, fit in fits.items():
            if inst.op in space.candidate_ops:
                v = 0.0 if inst.op == "none" else fit["coef"][inst.op]
            else:     # the fixed parts' total is identifiable only as a whole
                v = fit["fixed"] if inst.op == "stem" else 0.0
            vals[m] = v
        lat = vals["latency"]
        item = instance_item(inst, 1, "float32")      # the key and fields a profile writes
        e = {**item.fields, "fitted": True,
             "latency_ms": {"median": lat, "mean": lat, "p5": lat, "p95": lat, "cv": 0.0,
                            "repeats": 0},
             "noisy": False, "memory_bytes": None,
             "energy_j": vals["energy"] * 1e-3 if "energy" in vals else None,
             "energy_reason": None if "energy" in vals else
             f"HW-NAS-Bench has no energy for {device}"}
        entries[item.key] = e
    prov = {"device": {"id": f"hw-nas-bench:{device}", "name": DEVICE_NAMES[device],
                       "spec": f"hw-nas-bench:{device}"},
            "backend": "hw-nas-bench (tabular)", "threads": None,
            "space": "nb201", "deploy": space.describe(), "batches": [1],
            "dtype": "float32", "measured": False,
            "fitted": {"from": f"HW-NAS-Bench v1.0, {dataset}",
                       "method": "non-negative least squares of whole-network costs on "
                                 "per-op instance counts, connected cells; none = 0; "
                                 "an op's entries at every stage hold its mean cost per "
                                 "instance (whole networks cannot tell stages apart); "
                                 "the fixed parts' total on the stem entry",
                       **{m: {"cells": f["cells"], "fixed": f["fixed"], "unit": f["unit"]}
                          for m, f in fits.items()}}}
    return LUT(prov, entries)


def table_targets(bench: NB201Bench, device: str, dataset: str = "cifar10",
                  metric: str = "latency") -> tuple[list[int], np.ndarray]:
    """Returns (indices of the connected cells ``device`` measured, their ``metric`` in
    a LUT's unit: ms, or J for energy); raises UserError for a metric it lacks."""
    if metric not in DEVICE_METRICS[device]:
        raise UserError(f"HW-NAS-Bench has no {metric} for {device} (it has "
                        f"{', '.join(DEVICE_METRICS[device])})")
    y = bench.hardware(dataset)[f"{device}_{metric}"]
    cells = [int(i) for i, v in y.items() if v == v and v > 0
             and bench.arch(int(i)).connected()]
    scale = 1e-3 if metric == "energy" else 1.0          # table mJ -> LUT J
    return cells, y.loc[cells].to_numpy(dtype=float) * scale


def score_predictors(lut, bench: NB201Bench, device: str, dataset: str = "cifar10",
                     metric: str = "latency") -> dict:
    """Returns how the LUT's predictors match HW-NAS-Bench's ``device`` on every
    connected cell it measured and no predictor was fitted on: ``predictors`` holds
    per predictor (``plain`` sum; ``linear`` calibration and ``learned`` model where
    fitted beside the LUT) ``within_10`` (0-1), ``mape`` (%), ``spearman`` and the rest
    of :func:`~nasbench.predict.calibration.error_metrics`; ``cells`` scored,
    ``disconnected`` (left out, see the module doc), ``fitted_on`` (cells left out
    because a predictor was fitted on them). The top-level figures are the plain
    sum's. For a LUT fitted to the same table, ``plain`` is in-sample."""
    from ..predict.calibration import CalibratedLUT, error_metrics, load_calibration
    from ..predict.learned import LearnedCost, load_learned
    from ..predict.table import CostTable
    space = NB201Space(NB201Space.deploy_from_lut(lut))
    cells, y = table_targets(bench, device, dataset, metric)
    n_all = int(bench.hardware(dataset)[f"{device}_{metric}"].notna().sum())
    learned = load_learned(lut, None, metric)
    calib = load_calibration(lut) if metric == "latency" else None
    fitted = set()
    for m in (learned, calib):
        if m is not None:
            fitted |= set(m.fit.get("cells", []))
    keep = [k for k, i in enumerate(cells) if i not in fitted]
    cells, y = [cells[k] for k in keep], y[keep]
    archs = [bench.arch(i) for i in cells]
    cols = None

    def table_costs(view) -> list[float]:
        # every cell at once: the table's fixed part plus one entry per edge
        nonlocal cols
        t = CostTable.from_lut(space, view, [metric])
        if cols is None:
            cols = np.array([[t.column(op) for op in a.ops] for a in archs])
        m = t.tables[metric].numpy()
        return list(t.fixed[metric] + m[np.arange(m.shape[0]), cols].sum(axis=1))

    preds = {"plain": table_costs(lut)}
    if calib is not None:
        preds["linear"] = table_costs(CalibratedLUT(lut, calib))
    if learned is not None:
        preds["learned"] = list(LearnedCost(learned, space, lut).predict(archs)[0])
    res = {}
    for k, p in preds.items():
        m = error_metrics(p, list(y))
        res[k] = {"within_10": m["within_10pct"], "mape": m["mape_pct"], **m}
    return {"device": device, "dataset": dataset, "metric": metric, "cells": len(cells),
            "disconnected": n_all - len(cells) - len(fitted), "fitted_on": len(fitted),
            **res["plain"], "predictors": res}


@register_prior("table")
class TablePrior:
    """A HW-NAS-Bench device's measured cost of an nb201 cell (NaN: unmeasured)."""

    def __init__(self, device: str, benchmark_dir, dataset: str = "cifar10",
                 metric: str = "latency"):
        self.device, self.dataset, self.metric = device, dataset, metric
        self.benchmark_dir = str(benchmark_dir)
        hw = NB201Bench(benchmark_dir).hardware(dataset)
        col = f"{device}_{metric}"
        if col not in hw:
            raise UserError(f"HW-NAS-Bench has no {metric} for {device}")
        self.table = {a: float(v) for a, v in zip(hw["arch"], hw[col], strict=True)}
        self.name = f"hw-nas-bench:{device}"

    def __call__(self, arch) -> float:
        v = self.table.get(arch.to_str(), math.nan)
        return v if v == v and v > 0 else math.nan

    def values(self, archs) -> list[float]:
        """Returns the table's cost of each cell (NaN: unmeasured)."""
        return [self(a) for a in archs]

    def spec(self) -> dict:
        """Returns what the model file records to rebuild this prior."""
        return {"kind": "table", "device": self.device, "dataset": self.dataset,
                "metric": self.metric, "benchmark_dir": self.benchmark_dir}

    @classmethod
    def from_spec(cls, spec: dict) -> TablePrior:
        """Returns the prior :meth:`spec` describes."""
        return cls(spec["device"], spec["benchmark_dir"], spec["dataset"], spec["metric"])
