"""Scoring what a search found against a benchmark's ground truth (accuracy to maximise,
one cost to minimise), the figures NAS benchmarks report:

* **regret**: the best test accuracy among all cells that meet the cost target, minus
  the chosen cell's (percentage points; 0 is the best possible choice);
* **hypervolume gap**: 1 - HV(found front) / HV(true front), both bounded by one
  reference point (stated; default: the worst accuracy and the largest cost of the whole
  table, each moved outwards by 10 % of its range); 0 when the true front is found;
* **IGD** (inverted generational distance): the mean, over the true front's points, of
  the distance to the nearest found point, with both objectives scaled to [0, 1] by the
  table's ranges; 0 when every true point is found.

The Pareto machinery is ``reports.pareto``'s (one implementation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reports.pareto import default_reference_point, hypervolume, non_dominated_mask

SENSES = ("max", "min")


@dataclass
class Truth:
    """The ground truth of one (accuracy, cost) pair: ``points`` [cells x 2] of every
    cell (accuracy %, cost), their ids, the true front's mask, the reference point and
    the ranges that scale IGD."""

    ids: list
    points: np.ndarray
    front: np.ndarray
    reference: np.ndarray
    span: np.ndarray

    @classmethod
    def of(cls, ids, accuracy, cost) -> Truth:
        """Returns the truth of a table (rows with NaN are left out)."""
        pts = np.column_stack([np.asarray(accuracy, float), np.asarray(cost, float)])
        keep = np.all(np.isfinite(pts), axis=1)
        ids = [i for i, k in zip(ids, keep, strict=True) if k]
        pts = pts[keep]
        span = pts.max(0) - pts.min(0)
        return cls(ids, pts, non_dominated_mask(pts, SENSES),
                   default_reference_point(pts, SENSES), np.where(span > 0, span, 1.0))

    def __post_init__(self):
        self._pos = {i: k for k, i in enumerate(self.ids)}

    def __contains__(self, i) -> bool:
        return i in self._pos

    def point(self, i) -> np.ndarray:
        """Returns (accuracy, cost) of cell ``i``."""
        return self.points[self._pos[i]]

    def best_under(self, target: float | None) -> float:
        """Returns the best accuracy of the cells costing at most ``target`` (all cells
        without one); NaN when none meets it."""
        ok = self.points[:, 1] <= target if target is not None else \
            np.ones(len(self.points), bool)
        return float(self.points[ok, 0].max()) if ok.any() else float("nan")


def score(truth: Truth, chosen, found=(), target: float | None = None) -> dict:
    """Returns the scores of a search (see the module doc): ``chosen`` is the cell it
    returned, ``found`` every cell it evaluated (the chosen one is added). Keys:
    ``accuracy``, ``cost``, ``met``, ``regret``, ``hv``, ``hv_true``, ``hv_gap``,
    ``igd``, ``front_found`` (its size) and ``reference``."""
    acc, cost = truth.point(chosen)
    met = target is None or cost <= target
    found = list(dict.fromkeys([*found, chosen]))
    fp = np.array([truth.point(i) for i in found])
    hv_true = hypervolume(truth.points[truth.front], truth.reference, SENSES)
    hv = hypervolume(fp, truth.reference, SENSES)
    mine = fp[non_dominated_mask(fp, SENSES)] / truth.span
    true = truth.points[truth.front] / truth.span
    d = np.sqrt(((true[:, None, :] - mine[None, :, :]) ** 2).sum(-1)).min(1)
    return {"accuracy": float(acc), "cost": float(cost), "met": bool(met),
            "regret": truth.best_under(target) - float(acc) if met else float("nan"),
            "hv": hv, "hv_true": hv_true, "hv_gap": 1.0 - hv / hv_true,
            "igd": float(d.mean()), "front_found": int(len(mine)),
            "reference": truth.reference.tolist()}
