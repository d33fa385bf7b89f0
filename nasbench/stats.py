"""Uncertainty of the figures nasbench reports.

An accuracy is a proportion measured on a finite split: ``k`` correct of ``n`` images.
Its 95 % confidence interval is the Wilson score interval (scipy's
``binomtest(...).proportion_ci(method="wilson")``), which stays inside [0, 1] and is
sound for small ``n`` and for accuracies near 0 or 1, where the normal approximation
is not.
"""

from __future__ import annotations


def wilson_interval(correct: int, n: int, confidence: float = 0.95
                    ) -> tuple[float, float] | None:
    """Returns the Wilson interval (low, high) of the proportion ``correct / n`` as
    fractions, None for ``n == 0``."""
    if n <= 0:
        return None
    from scipy.stats import binomtest
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy_interval(acc: float | None, n: int | None, classes: int | None = None
                      ) -> dict:
    """Returns ``{"ci_pct": [low, high] (%), "n": images, "chance_pct": 100/classes,
    "at_chance": whether the interval includes chance}`` of an accuracy given as a
    fraction on ``n`` images (empty values where unknown)."""
    if acc is None or not n:
        return {"ci_pct": None, "n": n, "chance_pct": None, "at_chance": None}
    lo, hi = wilson_interval(round(acc * n), n)
    chance = 100.0 / classes if classes else None
    return {"ci_pct": [100.0 * lo, 100.0 * hi], "n": int(n), "chance_pct": chance,
            "at_chance": None if chance is None else bool(100.0 * lo <= chance)}


def separable(a: dict, b: dict) -> bool | None:
    """Returns whether two accuracies' intervals (``accuracy_interval`` dicts) do not
    overlap; None when either has none."""
    if not a.get("ci_pct") or not b.get("ci_pct"):
        return None
    (alo, ahi), (blo, bhi) = a["ci_pct"], b["ci_pct"]
    return ahi < blo or bhi < alo


def rank_correlation(x, y, boot: int = 1000, seed: int = 0) -> dict:
    """Returns Spearman's rho and Kendall's tau (tau-b) between two equally long
    sequences, each with a bootstrap 95 % interval over the pairs (``boot`` resamples
    with replacement, seeded; resamples where a statistic is undefined are skipped):
    {"spearman", "spearman_ci95": [lo, hi], "kendall", "kendall_ci95", "n"}. Values
    are None where undefined (fewer than 3 pairs, or a constant sequence)."""
    import numpy as np
    from scipy.stats import kendalltau, spearmanr
    a, b = np.asarray(x, float), np.asarray(y, float)
    out = {"spearman": None, "spearman_ci95": [None, None], "kendall": None,
           "kendall_ci95": [None, None], "n": int(len(a))}
    if len(a) < 3 or len(a) != len(b):
        return out

    def both(i):
        s, k = spearmanr(a[i], b[i])[0], kendalltau(a[i], b[i])[0]
        return (float(s) if np.isfinite(s) else None, float(k) if np.isfinite(k) else None)

    out["spearman"], out["kendall"] = both(np.arange(len(a)))
    rng = np.random.default_rng(seed)
    draws = [both(rng.integers(0, len(a), len(a))) for _ in range(boot)]
    for j, name in enumerate(("spearman", "kendall")):
        v = [d[j] for d in draws if d[j] is not None]
        if v:
            out[f"{name}_ci95"] = [float(q) for q in np.percentile(v, [2.5, 97.5])]
    return out


def robust_scale(values, axis: int = 0):
    """Returns (centre, scale) of ``values`` along ``axis``: the median, and the
    interquartile range / 1.349 (the standard deviation of a normal sample, robust to
    tails), falling back to the standard deviation, then 1, where that is 0."""
    import numpy as np
    v = np.asarray(values, dtype=np.float64)
    q1, med, q3 = np.percentile(v, [25, 50, 75], axis=axis)
    scale = (q3 - q1) / 1.349
    std = v.std(axis=axis)
    scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
    return med, scale
