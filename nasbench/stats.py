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
