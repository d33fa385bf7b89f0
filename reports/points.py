"""What the report says about single points of the points table (one row each).

Hover texts, the accuracy's 95 % interval as text and as error bars, the "≈ chance"
warning, and which points a figure cannot draw (and why). Units are those of
:data:`reports.loader.METRICS` (accuracy %, latency ms, energy mJ, memory MiB).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .format import esc, fmt_value, is_finite
from .loader import METRIC_BY_KEY

__all__ = [
    "is_at_chance",
    "ci_text",
    "chance_text",
    "accuracy_error",
    "hover_text",
    "left_out",
    "left_out_note",
]


def is_at_chance(v: Any) -> bool:
    """Whether a points-frame ``at_chance`` value says the accuracy's interval includes
    chance (True only for a recorded True; None / NaN / False are not)."""
    return isinstance(v, (bool, np.bool_)) and bool(v)


def ci_text(d: dict[str, Any] | pd.Series) -> str:
    """``"95% CI 7.3–14.3%, 300 images"`` of a points-frame row, ``""`` without one."""
    lo, hi = d.get("accuracy_lo", math.nan), d.get("accuracy_hi", math.nan)
    if not (is_finite(lo) and is_finite(hi)):
        return ""
    n = d.get("accuracy_n", math.nan)
    images = f", {int(n)} images" if is_finite(n) else ""
    return f"95% CI {float(lo):.1f}–{float(hi):.1f}%{images}"


def chance_text(d: dict[str, Any] | pd.Series) -> str:
    """``"its 95% interval includes chance (10%)"`` for an at-chance row, else ``""``."""
    if not is_at_chance(d.get("at_chance")):
        return ""
    c = d.get("chance", math.nan)
    return "its 95% interval includes chance" + (f" ({fmt_value(c, '%')})" if is_finite(c)
                                                 else "")


def accuracy_error(sub: pd.DataFrame, color: str, axis: str = "y") -> dict[str, Any]:
    """``{"error_y": ...}`` (or ``error_x``): asymmetric bars from ``accuracy`` to the
    row's 95 % interval ``accuracy_lo`` .. ``accuracy_hi``; rows without one get none.
    Returns ``{}`` when no row has an interval (no error bars at all)."""
    if "accuracy_lo" not in sub or not sub["accuracy_lo"].notna().any():
        return {}
    plus, minus = [], []
    for a, lo, hi in zip(sub["accuracy"], sub["accuracy_lo"], sub["accuracy_hi"], strict=True):
        ok = is_finite(a) and is_finite(lo) and is_finite(hi)
        plus.append(round(max(0.0, hi - a), 6) if ok else None)
        minus.append(round(max(0.0, a - lo), 6) if ok else None)
    return {f"error_{axis}": dict(type="data", symmetric=False, array=plus, arrayminus=minus,
                                  color=color, thickness=1.3, width=3, visible=True)}


def hover_text(df: pd.DataFrame) -> list[str]:
    """One HTML hover string per row: method, run, name, genotype summary, every metric
    (the accuracy with its 95 % interval, and a chance warning where it includes chance)."""
    metric_keys = [m.key for m in METRIC_BY_KEY.values() if m.key in df.columns]
    out = []
    for row in df.itertuples(index=False):
        d = row._asdict()
        lines = [
            f"<b>{esc(d['name'])}</b> ({esc(d['role'])})",
            f"run {esc(d['run'])} · method {esc(d['method'])}",
        ]
        if d.get("genotype_summary"):
            g = str(d["genotype_summary"])
            lines.append(esc(g if len(g) <= 140 else g[:137] + "…"))
        for k in metric_keys:
            v = d[k]
            if isinstance(v, float) and math.isnan(v):
                continue
            m = METRIC_BY_KEY[k]
            extra = ""
            if k == "accuracy":
                extra = f" ({esc(d['accuracy_kind'])})"
                if ci_text(d):
                    extra += f" [{ci_text(d)}]"
            elif k == "latency_ms" and not math.isnan(d.get("latency_p5_ms", math.nan)):
                extra = (
                    f" [p5 {fmt_value(d['latency_p5_ms'])}, p95 {fmt_value(d['latency_p95_ms'])}"
                    f", CV {fmt_value(100 * d['latency_cv'], '%', 2)}]"
                )
            lines.append(f"{m.label}: {fmt_value(v, m.unit)}{extra}")
            if k == "accuracy" and chance_text(d):
                lines.append(f"<b>≈ chance</b>: {chance_text(d)}; not better than guessing "
                             "on this test split")
        if d.get("train_epochs") and not math.isnan(d["train_epochs"]):
            lines.append(f"trained {int(d['train_epochs'])} epoch(s)")
        out.append("<br>".join(lines))
    return out


_PREDICTED = {"latency_pred_ms", "energy_pred_mj", "memory_pred_mib"}


def _missing_reason(row: pd.Series, key: str) -> str:
    if key in _PREDICTED:
        if row.get("space") == "hand-designed":
            return "hand-designed networks, not built from the LUT's operations"
        return "no LUT prediction recorded"
    if key == "energy_mj" and row.get("energy_reason"):
        return str(row["energy_reason"])
    return "not measured"


def left_out(df: pd.DataFrame, key: str, need: str = "accuracy") -> list[dict[str, Any]]:
    """The points with a ``need`` value (accuracy) but no ``key`` value, which a figure of
    ``need`` vs ``key`` cannot draw: ``[{"name", "runs": [labels], "reason"}]``, one per
    name and reason, in table order."""
    if key not in df or need not in df:
        return []
    d = df[df[need].notna() & df[key].isna()]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for _, row in d.iterrows():
        reason = _missing_reason(row, key)
        item = out.setdefault((str(row["name"]), reason),
                              {"name": str(row["name"]), "runs": [], "reason": reason})
        if row["run"] not in item["runs"]:
            item["runs"].append(row["run"])
    return list(out.values())


def left_out_note(items: list[dict[str, Any]], what: str = "no LUT prediction",
                  html: bool = False) -> str:
    """One sentence naming the left-out points and why, e.g. ``"Not shown (no LUT
    prediction): ResNet-20, MobileNetV2 (hand-designed networks, ...)."``; ``""`` for
    none. Plain text (for an autoescaped caption) unless ``html``."""
    if not items:
        return ""
    quote = esc if html else str
    by_reason: dict[str, list[str]] = {}
    for it in items:
        by_reason.setdefault(it["reason"], []).append(quote(it["name"]))
    parts = [f"{', '.join(names)} ({quote(reason)})" for reason, names in by_reason.items()]
    return f"Not shown ({what}): " + "; ".join(parts) + "."
