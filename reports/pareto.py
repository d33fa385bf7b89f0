"""Pareto (non-dominated) sets, non-dominated sorting and hypervolume.

Everything here works on plain arrays: ``points`` is an ``(n, k)`` array-like of
objective values (one row per architecture, one column per objective) and
``senses`` gives, per column, ``"min"`` (smaller is better, e.g. latency) or
``"max"`` (larger is better, e.g. accuracy).

Dominance is the usual weak-Pareto definition: row ``a`` dominates row ``b`` when
``a`` is at least as good as ``b`` in every objective and strictly better in at
least one. Consequences worth stating:

* exact duplicates never dominate each other, so every copy of a non-dominated
  point is itself non-dominated;
* a tie in one objective is decided by the others.

Rows containing NaN (a metric that was not measured) take no part: they are
never on a front, never dominate anything and get rank ``-1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "to_minimisation",
    "dominates",
    "non_dominated_mask",
    "pareto_ranks",
    "hypervolume",
    "default_reference_point",
]

_SENSES = {"min": 1.0, "max": -1.0}


def _signs(senses: Sequence[str], k: int) -> np.ndarray:
    if len(senses) != k:
        raise ValueError(f"got {len(senses)} senses for {k} objectives")
    try:
        return np.array([_SENSES[s] for s in senses], dtype=float)
    except KeyError as exc:
        raise ValueError(f"sense must be 'min' or 'max', got {exc.args[0]!r}") from None


def to_minimisation(points, senses: Sequence[str]) -> np.ndarray:
    """Return ``points`` as a float ``(n, k)`` array in which every objective is minimised.

    Columns with sense ``"max"`` are negated; values are otherwise unchanged (same units).
    """
    arr = np.asarray(points, dtype=float)
    if arr.ndim == 1:
        arr = arr.reshape(0, len(senses)) if arr.size == 0 else arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError("points must be a 2-D array (n points x k objectives)")
    return arr * _signs(senses, arr.shape[1])


def dominates(a, b, senses: Sequence[str]) -> bool:
    """Return True when point ``a`` Pareto-dominates point ``b`` under ``senses``."""
    s = _signs(senses, len(senses))
    x, y = np.asarray(a, dtype=float) * s, np.asarray(b, dtype=float) * s
    return bool(np.all(x <= y) and np.any(x < y))


def _mask_2d(p: np.ndarray) -> np.ndarray:
    """Non-dominated mask for finite 2-D minimisation points, O(n log n)."""
    n = p.shape[0]
    order = np.lexsort((p[:, 1], p[:, 0]))  # by f0, then f1
    mask = np.zeros(n, dtype=bool)
    best_prev = np.inf  # min f1 over points with strictly smaller f0
    i = 0
    while i < n:
        j = i
        f0 = p[order[i], 0]
        while j < n and p[order[j], 0] == f0:
            j += 1
        group = order[i:j]
        g1 = p[group, 1]
        gmin = g1.min()  # sorted, so g1[0], but be explicit
        # dominated by an earlier group (f0 smaller, f1 <=) or by a same-f0 point with smaller f1
        mask[group] = (g1 < best_prev) & (g1 == gmin)
        best_prev = min(best_prev, gmin)
        i = j
    return mask


def _mask_nd(p: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Non-dominated mask for finite k-D minimisation points, pairwise in chunks."""
    n = p.shape[0]
    mask = np.ones(n, dtype=bool)
    for start in range(0, n, chunk):
        block = p[start : start + chunk]  # (b, k) candidates to test
        le = np.all(p[None, :, :] <= block[:, None, :], axis=2)  # (b, n): p_j <= block_i
        lt = np.any(p[None, :, :] < block[:, None, :], axis=2)
        mask[start : start + chunk] = ~np.any(le & lt, axis=1)
    return mask


def non_dominated_mask(points, senses: Sequence[str]) -> np.ndarray:
    """Return a boolean array of length n, True for the rows on the Pareto front.

    Works for any number of objectives (k >= 1). Duplicated non-dominated rows are all
    True; rows with NaN are False. 2-D uses an O(n log n) sweep, k-D an O(n^2 k) scan.
    """
    p = to_minimisation(points, senses)
    n = p.shape[0]
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    finite = np.all(np.isfinite(p), axis=1)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return out
    q = p[idx]
    if q.shape[1] == 1:
        sub = q[:, 0] == q[:, 0].min()
    elif q.shape[1] == 2:
        sub = _mask_2d(q)
    else:
        sub = _mask_nd(q)
    out[idx] = sub
    return out


def pareto_ranks(points, senses: Sequence[str]) -> np.ndarray:
    """Non-dominated sorting: return an int array of length n giving each row's front.

    Rank 0 is the Pareto front, rank 1 the front once rank 0 is removed, and so on.
    Rows with NaN get -1.
    """
    p = to_minimisation(points, senses)
    n = p.shape[0]
    ranks = np.full(n, -1, dtype=int)
    remaining = np.flatnonzero(np.all(np.isfinite(p), axis=1)) if n else np.array([], int)
    senses_min = ["min"] * p.shape[1]
    rank = 0
    while remaining.size:
        m = non_dominated_mask(p[remaining], senses_min)
        ranks[remaining[m]] = rank
        remaining = remaining[~m]
        rank += 1
    return ranks


def _hv_2d(p: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of 2-D minimisation points that all strictly dominate ``ref``."""
    if p.shape[0] == 0:
        return 0.0
    p = p[_mask_2d(p)]
    p = p[np.lexsort((p[:, 1], p[:, 0]))]
    area = 0.0
    prev_y = ref[1]
    for x, y in p:
        if y < prev_y:
            area += (ref[0] - x) * (prev_y - y)
            prev_y = y
    return float(area)


def _hv_rec(p: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume by slicing along the last objective (HSO); p already clipped."""
    k = p.shape[1]
    if p.shape[0] == 0:
        return 0.0
    if k == 1:
        return float(ref[0] - p[:, 0].min())
    if k == 2:
        return _hv_2d(p, ref)
    p = p[_mask_nd(p)]
    p = p[np.argsort(p[:, -1], kind="stable")]
    zs = np.append(np.unique(p[:, -1]), ref[-1])
    vol = 0.0
    for lo, hi in zip(zs[:-1], zs[1:], strict=True):
        active = p[p[:, -1] <= lo, :-1]
        vol += _hv_rec(active, ref[:-1]) * (hi - lo)
    return float(vol)


def hypervolume(points, reference, senses: Sequence[str]) -> float:
    """Return the hypervolume dominated by ``points`` and bounded by ``reference``.

    The result is in the product of the objectives' units (e.g. ``% x ms`` for
    accuracy vs latency). ``reference`` is a point in the original objective space,
    worse than the front in every objective (smaller for ``"max"`` objectives, larger
    for ``"min"`` ones). Points that do not strictly beat the reference in every
    objective, and rows with NaN, contribute nothing. Exact for any k (HSO slicing;
    cost grows like n^(k-1), fine for the handful of objectives used in reports).
    """
    p = to_minimisation(points, senses)
    r = np.asarray(reference, dtype=float) * _signs(senses, p.shape[1])
    if r.shape != (p.shape[1],) or not np.all(np.isfinite(r)):
        raise ValueError("reference must be a finite point with one value per objective")
    keep = np.all(np.isfinite(p), axis=1) & np.all(p < r, axis=1)
    return _hv_rec(p[keep], r)


def default_reference_point(points, senses: Sequence[str], margin: float = 0.1) -> np.ndarray:
    """Return a reference point slightly worse than the worst value of each objective.

    Per objective the reference is the worst finite value moved outwards by ``margin``
    times the observed range (or times ``|worst|``, or by 1, when the range is zero), in
    the original units and senses. Use one reference for all runs being compared.
    """
    p = to_minimisation(points, senses)
    finite = p[np.all(np.isfinite(p), axis=1)]
    if finite.shape[0] == 0:
        raise ValueError("no finite points to derive a reference point from")
    worst, best = finite.max(axis=0), finite.min(axis=0)
    span = worst - best
    pad = np.where(span > 0, span * margin, np.where(worst != 0, np.abs(worst) * margin, 1.0))
    return (worst + pad) * _signs(senses, p.shape[1])
