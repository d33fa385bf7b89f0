"""How well each cost predictor predicts HW-NAS-Bench's devices from N measured cells.

For each device and seed: N random connected cells the device measured are the
"measured networks"; the per-op LUT is fitted on those N only (non-negative least
squares, :func:`~nasbench.benchmarks.hwnas.fitted_lut`), then three predictors are
scored on every other measured connected cell:

- ``plain``: that LUT's sum;
- ``linear``: the linear calibration of the sum (``lut calibrate``'s default);
- ``learned``: the learned model (:mod:`nasbench.predict.learned`).

Few-shot transfer (``few_shot`` cells): the learned model fitted on that few cells
alone and with the other devices' tables as priors (leave-one-device-out).

The table's own noise caps what any predictor can reach: :func:`noise_floor` measures
it from pairs of cells that build the same network (swapping nodes 1 and 2 of a cell
without a 1->2 edge gives the same graph, measured twice).
"""

from __future__ import annotations

import math
import random

import numpy as np

from nasbench.benchmarks.hwnas import TablePrior, fitted_lut, tabular_space
from nasbench.benchmarks.nb201 import DEVICE_METRICS, DEVICES
from nasbench.predict.calibration import error_metrics, fit_calibration
from nasbench.predict.learned import Terms, fit_learned
from nasbench.spaces.nb201 import NB201Arch

#: the table's unit per metric -> the LUT's (energy: mJ in the table, J in a LUT)
TO_LUT = {"latency": 1.0, "energy": 1e-3}


def twin_pairs(archs: list[NB201Arch]) -> list[tuple[int, int]]:
    """Returns index pairs of cells that build the same network: without a 1->2 edge,
    nodes 1 and 2 are interchangeable ((a, b, none, c, d, e) ~ (b, a, none, c, e, d))."""
    where = {a.ops: i for i, a in enumerate(archs)}
    pairs = []
    for i, a in enumerate(archs):
        o = a.ops
        if o[2] != "none":
            continue
        j = where.get((o[1], o[0], "none", o[3], o[5], o[4]))
        if j is not None and i < j:
            pairs.append((i, j))
    return pairs


def noise_floor(values: np.ndarray, pairs: list[tuple[int, int]]) -> dict:
    """Returns the table's measurement noise from twin pairs: ``pairs_within_10pct``
    (share of pairs whose two measurements agree within 10 %) and ``within_10pct``,
    the share a perfect predictor would reach (assuming independent noise of equal
    spread on both: |a/b - 1| <= 10 % x sqrt 2), over pairs both measured."""
    a = np.array([values[i] for i, _ in pairs])
    b = np.array([values[j] for _, j in pairs])
    ok = (a > 0) & (b > 0)
    r = np.abs(a[ok] / b[ok] - 1)
    return {"pairs": int(ok.sum()), "pairs_within_10pct": float(np.mean(r <= 0.1)),
            "within_10pct": float(np.mean(r <= 0.1 * math.sqrt(2)))}


def _scores(pred, y) -> dict:
    m = error_metrics(list(pred), list(y))
    return {k: m[k] for k in ("within_10pct", "mape_pct", "spearman", "kendall")}


def study(bench, device: str, metric: str = "latency", samples: int = 100,
          seeds: int = 5, dataset: str = "cifar10", few_shot: int | None = 20,
          progress=None) -> dict:
    """Returns the figures of ``device`` (see the module doc): per predictor the mean,
    min and max over seeds of ``within_10pct`` (0-1), ``mape_pct`` and ``spearman``,
    the noise floor, and with ``few_shot`` the few-shot figures without and with the
    other devices as priors."""
    space = tabular_space(dataset)
    hw = bench.hardware(dataset)
    archs = [bench.arch(int(i)) for i in hw.index]
    y_all = hw[f"{device}_{metric}"].to_numpy(dtype=float) * TO_LUT[metric]
    ok = np.array([a.connected() for a in archs]) & (y_all > 0)
    idx = np.flatnonzero(ok)
    terms = Terms(space, archs)
    others = [d for d in DEVICES if d != device]
    priors = [TablePrior(d, bench.folder, dataset) for d in others]
    runs: dict[str, list] = {}
    for seed in range(seeds):
        rng = random.Random(seed)
        train = sorted(rng.sample(list(idx), samples))
        test = np.setdiff1d(idx, train)
        lut = fitted_lut(bench, device, dataset, [int(hw.index[i]) for i in train])
        rows = terms.rows(lut, metric)
        y = y_all
        plain = np.array([r["lut:plain"] for r in rows])
        runs.setdefault("plain", []).append(_scores(plain[test], y[test]))
        sums = [{k[4:]: v for k, v in r.items() if k.startswith("lut:")
                 and k != "lut:plain"} for r in rows]
        cal = fit_calibration([sums[i] for i in train], list(y[train]), "", 1, "op",
                              "nb201")
        lin = np.array([cal.predict(sums[i]) for i in test])
        runs.setdefault("linear", []).append(_scores(lin, y[test]))
        model = fit_learned([rows[i] for i in train], list(y[train]), space="nb201",
                            metric=metric, batch=1, lut_sha256="")
        pred, _ = model.predict_terms([rows[i] for i in test])
        runs.setdefault("learned", []).append(_scores(pred, y[test]))
        if few_shot:
            few = sorted(rng.sample(train, few_shot))
            rest = np.setdiff1d(idx, few)
            lut_f = fitted_lut(bench, device, dataset, [int(hw.index[i]) for i in few])
            rows_f = terms.rows(lut_f, metric, priors)
            for name, rr in (("few_shot", [{k: v for k, v in r.items()
                                            if not k.startswith("prior:")}
                                           for r in rows_f]),
                             ("few_shot_prior", rows_f)):
                m = fit_learned([rr[i] for i in few], list(y[few]), space="nb201",
                                metric=metric, batch=1, lut_sha256="")
                p, _ = m.predict_terms([rr[i] for i in rest])
                runs.setdefault(name, []).append(_scores(p, y[rest]))
        if progress:
            progress(seed + 1, seeds)
    out = {"device": device, "metric": metric, "dataset": dataset, "samples": samples,
           "few_shot": few_shot, "seeds": seeds, "cells": int(len(idx)),
           "floor": noise_floor(y_all, twin_pairs(archs)),
           "priors": [p.name for p in priors] if few_shot else []}
    for name, rs in runs.items():
        out[name] = {k: {"mean": float(np.mean([r[k] for r in rs])),
                         "min": float(np.min([r[k] for r in rs])),
                         "max": float(np.max([r[k] for r in rs]))}
                     for k in rs[0]}
    return out


def study_all(bench, metric: str = "latency", **kw) -> list[dict]:
    """Returns :func:`study` of every HW-NAS-Bench device that measured ``metric``."""
    return [study(bench, d, metric, **kw) for d in DEVICES if metric in DEVICE_METRICS[d]]
