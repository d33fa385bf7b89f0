"""Text formatting of values for figures, tables and sentences.

Every function returns a string: a number with its unit, or a placeholder ("n/a" from
:func:`fmt_value`, "—" from :func:`fmt_or_dash`) where there is no value; :func:`esc`
makes any value safe as HTML text.
"""

from __future__ import annotations

import math
from typing import Any

from .loader import _num

__all__ = ["DASH", "fmt_value", "fmt_or_dash", "fmt_mean_std", "esc", "is_finite"]

#: What a table shows for a missing value.
DASH = "—"


def fmt_value(v: Any, unit: str = "", digits: int = 3) -> str:
    """Return ``v`` with ``digits`` significant digits and its unit, or ``"n/a"`` for NaN."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(f):
        return "n/a"
    if f != 0 and (abs(f) >= 10 ** (digits + 2) or abs(f) < 1e-3):
        s = f"{f:.{digits - 1}e}"
    else:
        s = f"{f:.{digits}g}" if abs(f) < 10**digits else f"{f:.0f}"
    sep = "" if unit in ("%", "") else " "
    return f"{s}{sep}{unit}" if unit else s


def fmt_or_dash(v: Any, unit: str = "", digits: int = 3) -> str:
    """Return ``v`` with its unit (see :func:`fmt_value`), or "—" for null/NaN."""
    f = _num(v)
    return DASH if math.isnan(f) else fmt_value(f, unit, digits)


def fmt_mean_std(mean: float, std: float, unit: str = "") -> str:
    """Return ``"mean ± std unit"`` (the unit once, after the std); "—" for a NaN mean and
    the mean alone for a NaN std."""
    if math.isnan(mean):
        return DASH
    if math.isnan(std):
        return fmt_or_dash(mean, unit)
    return f"{fmt_or_dash(mean)} ± {fmt_or_dash(std, unit)}"


def esc(s: Any) -> str:
    """Return ``str(s)`` with ``&``, ``<`` and ``>`` escaped for HTML text."""
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_finite(v: Any) -> bool:
    """Whether ``v`` converts to a finite float (False for None, strings, NaN and inf)."""
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
