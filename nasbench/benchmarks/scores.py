"""Scoring what a search found against a benchmark's ground truth (accuracy to maximise,
one cost to minimise), the figures NAS benchmarks report:

* **regret**: the best test accuracy among all cells that meet the cost target, minus
  the chosen cell's (percentage points; 0 is the best possible choice);
* **hypervolume gap**: 1 - HV(found front) / HV(true front), both bounded by one
  reference point (stated; the bench's: chance accuracy (10 % on CIFAR-10) and the
  largest cost of the table moved outwards by 10 % of its range); 0 when the true front
  is found. The truth holds valid cells only: on NAS-Bench-201 a cell whose output
  ignores its input (chance accuracy, near-zero cost) is not on the true front, where it
  alone would be worth most of a point of HV gap;
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

    #: per cell, whether it is a valid network (the truth's front, reference, ranges
    #: and best-under-target use the valid ones only; all cells keep their point)
    valid: np.ndarray | None = None

    @classmethod
    def of(cls, ids, accuracy, cost, valid=None, chance: float | None = None) -> Truth:
        """Returns the truth of a table (rows with NaN are left out). ``valid`` (bools
        per row): cells outside it (nb201: cells whose output ignores the input) stay
        scoreable when a search picks one, but are not part of the truth. ``chance``
        (%): the reference point's accuracy (the HV counts only what beats chance);
        default: the worst valid accuracy moved out by 10 % of the range."""
        pts = np.column_stack([np.asarray(accuracy, float), np.asarray(cost, float)])
        keep = np.all(np.isfinite(pts), axis=1)
        ok = np.ones(len(pts), bool) if valid is None else np.asarray(valid, bool)
        ids = [i for i, k in zip(ids, keep, strict=True) if k]
        pts, ok = pts[keep], ok[keep]
        good = pts[ok]
        span = good.max(0) - good.min(0)
        front = np.zeros(len(pts), bool)
        front[np.flatnonzero(ok)] = non_dominated_mask(good, SENSES)
        ref = default_reference_point(good, SENSES)
        if chance is not None:
            ref[0] = float(chance)
        return cls(ids, pts, front, ref, np.where(span > 0, span, 1.0), ok)

    def __post_init__(self):
        self._pos = {i: k for k, i in enumerate(self.ids)}
        if self.valid is None:
            self.valid = np.ones(len(self.ids), bool)

    def is_valid(self, i) -> bool:
        """Returns whether cell ``i`` is part of the truth (a valid network)."""
        return bool(self.valid[self._pos[i]])

    def __contains__(self, i) -> bool:
        return i in self._pos

    def point(self, i) -> np.ndarray:
        """Returns (accuracy, cost) of cell ``i``."""
        return self.points[self._pos[i]]

    def best_under(self, target: float | None) -> float:
        """Returns the best accuracy of the cells costing at most ``target`` (all cells
        without one); NaN when none meets it."""
        ok = self.valid & (self.points[:, 1] <= target) if target is not None else \
            self.valid.copy()
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
