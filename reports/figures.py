"""plotly figures for the report.

Every function returns a ``plotly.graph_objects.Figure`` (or None when its input is
absent) styled with the report's compact template. Units are those of
:data:`reports.loader.METRICS` (accuracy %, latency ms, energy mJ, memory MiB, params
and MACs in millions). Figures are drawn from measured or computed values only;
predicted values are labelled as predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .loader import METRIC_BY_KEY, Metric, Run
from .pareto import non_dominated_mask

__all__ = [
    "RUN_COLORS",
    "TEMPLATE",
    "run_colors",
    "fmt_value",
    "pareto_figure",
    "cell_figure",
    "chain_figure",
    "architecture_figure",
    "alpha_figure",
    "curves_figure",
    "pred_vs_measured_figure",
    "within_share",
    "left_out",
    "left_out_note",
    "accuracy_error",
    "epoch_ticks",
    "lut_frame",
    "lut_figure",
]

#: One colour per run (cycled), chosen for contrast on white and for colour-blind safety.
RUN_COLORS = (
    "#2f6fb0", "#e07b21", "#3a9a5b", "#c23b4e", "#7c5cbf",
    "#8c6a4f", "#d462a6", "#6b7785", "#b3a21c", "#1fa3b8",
)  # fmt: skip
REFERENCE_COLOR = "#30343b"
FONT = "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
GRID = "#e6e8ec"

TEMPLATE = go.layout.Template(
    layout=dict(
        font=dict(family=FONT, size=12, color="#2a2f36"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=list(RUN_COLORS),
        margin=dict(l=64, r=20, t=48, b=56),
        hoverlabel=dict(font=dict(family=FONT, size=12), align="left"),
        title=dict(font=dict(size=15), x=0.0, xanchor="left", xref="paper"),
        legend=dict(font=dict(size=11), bgcolor="rgba(255,255,255,0.8)"),
        xaxis=dict(
            gridcolor=GRID, zeroline=False, linecolor="#9aa1ab", ticks="outside",
            tickcolor="#9aa1ab", automargin=True, title=dict(standoff=8),
        ),
        yaxis=dict(
            gridcolor=GRID, zeroline=False, linecolor="#9aa1ab", ticks="outside",
            tickcolor="#9aa1ab", automargin=True, title=dict(standoff=8),
        ),
    )
)  # fmt: skip

#: Colours for operations in cell graphs and chains (unknown ops get a neutral grey).
OP_COLORS = {
    "sep_conv_3x3": "#2f6fb0", "sep_conv_5x5": "#1d4f86", "sep_conv_7x7": "#143a63",
    "dil_conv_3x3": "#3a9a5b", "dil_conv_5x5": "#24703f",
    "max_pool_3x3": "#e07b21", "avg_pool_3x3": "#c9a227",
    "skip_connect": "#7c5cbf", "identity": "#7c5cbf", "none": "#9aa1ab", "zero": "#9aa1ab",
    "conv_7x1_1x7": "#c23b4e",
}  # fmt: skip


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """Return ``{run label: hex colour}``, one distinct colour per run (cycled after 10)."""
    return {lab: RUN_COLORS[i % len(RUN_COLORS)] for i, lab in enumerate(labels)}


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


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


def _esc(s: Any) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_at_chance(v: Any) -> bool:
    """Whether a points-frame ``at_chance`` value says the accuracy's interval includes
    chance (True only for a recorded True; None / NaN / False are not)."""
    return isinstance(v, (bool, np.bool_)) and bool(v)


def ci_text(d: dict[str, Any] | pd.Series) -> str:
    """``"95% CI 7.3–14.3%, 300 images"`` of a points-frame row, ``""`` without one."""
    lo, hi = d.get("accuracy_lo", math.nan), d.get("accuracy_hi", math.nan)
    if not (_finite(lo) and _finite(hi)):
        return ""
    n = d.get("accuracy_n", math.nan)
    images = f", {int(n)} images" if _finite(n) else ""
    return f"95% CI {float(lo):.1f}–{float(hi):.1f}%{images}"


def chance_text(d: dict[str, Any] | pd.Series) -> str:
    """``"its 95% interval includes chance (10%)"`` for an at-chance row, else ``""``."""
    if not is_at_chance(d.get("at_chance")):
        return ""
    c = d.get("chance", math.nan)
    return "its 95% interval includes chance" + (f" ({fmt_value(c, '%')})" if _finite(c)
                                                   else "")


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def accuracy_error(sub: pd.DataFrame, color: str, axis: str = "y") -> dict[str, Any]:
    """``{"error_y": ...}`` (or ``error_x``): asymmetric bars from ``accuracy`` to the
    row's 95 % interval ``accuracy_lo`` .. ``accuracy_hi``; rows without one get none.
    Returns ``{}`` when no row has an interval (no error bars at all)."""
    if "accuracy_lo" not in sub or not sub["accuracy_lo"].notna().any():
        return {}
    plus, minus = [], []
    for a, lo, hi in zip(sub["accuracy"], sub["accuracy_lo"], sub["accuracy_hi"], strict=True):
        ok = _finite(a) and _finite(lo) and _finite(hi)
        plus.append(round(max(0.0, hi - a), 6) if ok else None)
        minus.append(round(max(0.0, a - lo), 6) if ok else None)
    return {f"error_{axis}": dict(type="data", symmetric=False, array=plus, arrayminus=minus,
                                  color=color, thickness=1.3, width=3, visible=True)}


def _hover_text(df: pd.DataFrame) -> list[str]:
    """One HTML hover string per row: method, run, name, genotype summary, every metric
    (the accuracy with its 95 % interval, and a chance warning where it includes chance)."""
    metric_keys = [m.key for m in METRIC_BY_KEY.values() if m.key in df.columns]
    out = []
    for row in df.itertuples(index=False):
        d = row._asdict()
        lines = [
            f"<b>{_esc(d['name'])}</b> ({_esc(d['role'])})",
            f"run {_esc(d['run'])} · method {_esc(d['method'])}",
        ]
        if d.get("genotype_summary"):
            g = str(d["genotype_summary"])
            lines.append(_esc(g if len(g) <= 140 else g[:137] + "…"))
        for k in metric_keys:
            v = d[k]
            if isinstance(v, float) and math.isnan(v):
                continue
            m = METRIC_BY_KEY[k]
            extra = ""
            if k == "accuracy":
                extra = f" ({_esc(d['accuracy_kind'])})"
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


_SHORT_TITLES = {
    "latency_ms": "latency (measured)", "latency_pred_ms": "latency (LUT-predicted)",
    "energy_mj": "energy (measured)", "energy_pred_mj": "energy (predicted)",
    "memory_mib": "peak memory (measured)",
    "memory_pred_mib": "peak memory (predicted upper bound)",
    "params_m": "parameters", "macs_m": "MACs",
}  # fmt: skip


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
    esc = _esc if html else str
    by_reason: dict[str, list[str]] = {}
    for it in items:
        by_reason.setdefault(it["reason"], []).append(esc(it["name"]))
    parts = [f"{', '.join(names)} ({esc(reason)})" for reason, names in by_reason.items()]
    return f"Not shown ({what}): " + "; ".join(parts) + "."


_SIDES = {  # text position -> (x0, x1, y0, y1) of its box in px from the point (w, h)
    "middle right": lambda w, h: (7, 7 + w, -h / 2, h / 2),
    "middle left": lambda w, h: (-7 - w, -7, -h / 2, h / 2),
    "top right": lambda w, h: (2, 2 + w, 5, 5 + h),
    "top left": lambda w, h: (-2 - w, -2, 5, 5 + h),
    "bottom right": lambda w, h: (2, 2 + w, -5 - h, -5),
    "bottom left": lambda w, h: (-2 - w, -2, -5 - h, -5),
}


def _label_positions(xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
                     xr: tuple[float, float], yr: tuple[float, float],
                     plot_px: tuple[float, float] = (440.0, 320.0),
                     obstacles: Sequence[tuple[float, float]] = (),
                     bars: Sequence[tuple[float, float, float]] = ()) -> list[str]:
    """Text positions that keep point labels inside the plot and apart.

    A point in the right half of the x range ``xr`` is labelled on its left, others on
    their right (beside the marker, clear of a vertical error bar); where that box would
    cross the plot's edge, another label, a marker (the points and ``obstacles``) or an
    error bar (``bars``: ``(x, low, high)``), the label moves above or below, then to the
    other side; with no free place, the least crowded one. Sizes are estimated for an
    11 px font on a plot of about ``plot_px`` pixels (the report's two-column figures).
    """
    (x0, x1), (y0, y1) = xr, yr
    sx = plot_px[0] / (x1 - x0) if x1 > x0 else 1.0
    sy = plot_px[1] / (y1 - y0) if y1 > y0 else 1.0
    pts = [((x - x0) * sx, (y - y0) * sy) for x, y in zip(xs, ys, strict=True)]
    marks = [(px - 6, px + 6, py - 6, py + 6) for px, py in
             [*pts, *[((x - x0) * sx, (y - y0) * sy) for x, y in obstacles]]]
    marks += [((x - x0) * sx - 2, (x - x0) * sx + 2, (lo - y0) * sy, (hi - y0) * sy)
              for x, lo, hi in bars if _finite(lo) and _finite(hi)]
    placed: list[tuple[float, float, float, float]] = []
    out = []

    def overlap(a, b) -> float:
        return max(0.0, min(a[1], b[1]) - max(a[0], b[0])) * \
            max(0.0, min(a[3], b[3]) - max(a[2], b[2]))

    for (px, py), text in zip(pts, texts, strict=True):
        side = "left" if px > plot_px[0] / 2 else "right"
        other = "right" if side == "left" else "left"
        order = [f"middle {side}", f"top {side}", f"bottom {side}",
                 f"middle {other}", f"top {other}", f"bottom {other}"]
        if not text:
            out.append(order[0])
            continue
        w, h = 6.6 * len(text), 14.0
        # its own marker and bar (the boxes holding its point) are not in its way
        in_way = [m for m in marks if not (m[0] <= px <= m[1] and m[2] <= py <= m[3])]
        best = None
        for rank, pos in enumerate(order):  # the first free place, else the least bad
            bx0, bx1, by0, by1 = _SIDES[pos](w, h)
            box = (px + bx0, px + bx1, py + by0, py + by1)
            outside = max(0.0, -4 - box[0]) + max(0.0, box[1] - plot_px[0] - 4)
            cost = (1e4 * outside + 10 * sum(overlap(box, o) for o in placed)
                    + sum(overlap(box, m) for m in in_way), rank)
            if best is None or cost < best[0]:
                best = (cost, pos, box)
            if cost[0] == 0:
                break
        placed.append(best[2])
        out.append(best[1])
    return out


def _padded(vals: Sequence[float], pad: float = 0.05) -> tuple[float, float]:
    v = [float(x) for x in vals if _finite(x)]
    if not v:
        return 0.0, 1.0
    lo, hi = min(v), max(v)
    span = (hi - lo) or abs(hi) or 1.0
    return lo - pad * span, hi + pad * span


def pareto_figure(
    df: pd.DataFrame,
    cost: Metric,
    colors: dict[str, str],
    targets: Sequence[tuple[str, float]] = (),
    height: int = 420,
    shared_hover: bool = False,
) -> go.Figure | None:
    """Accuracy (y, %) against one cost (x, in ``cost.unit``), one colour per run.

    Per run and accuracy kind, the non-dominated points are drawn solid and joined by a
    step line (the attainable front); dominated points are faded. Supernet-estimated
    accuracies are hollow markers with a dotted front. Reference networks are labelled
    diamonds, their labels placed toward the inside of the plot. ``targets`` are
    ``(run label, value)`` vertical lines. Where ``df`` has the accuracy's 95 % interval
    (``accuracy_lo`` / ``accuracy_hi``) every point gets an asymmetric vertical error
    bar. A predicted cost's figure names, under its title, the points the LUT could not
    predict (:func:`left_out`). Returns None when no point has both values.

    With ``shared_hover`` the hover texts are not embedded: each trace's ``meta`` holds
    ``{"hover": [row index in df], "field": "text"|"customdata"}`` and the report page
    fills them in from one shared list (so six figures do not carry six copies).
    """

    def hover(sub: pd.DataFrame, field: str = "text") -> dict[str, Any]:
        if shared_hover:
            return {"meta": {"hover": [int(i) for i in sub.index], "field": field}}
        return {field: _hover_text(sub)}

    acc = METRIC_BY_KEY["accuracy"]
    d = df[df["accuracy"].notna() & df[cost.key].notna()]
    if d.empty:
        return None
    fig = go.Figure()
    # Few traces keep drawing fast: all dominated points, all derived stars and all
    # references are one trace each (per-point colours); each run/kind front is one line.
    dom_parts, star_parts = [], []
    for run, g in d.groupby("run", sort=False):
        color = colors.get(run, RUN_COLORS[0])
        searched = g[g["role"] != "reference"]
        for kind, gk in searched.groupby("accuracy_kind", sort=False):
            estimate = kind != "test"
            mask = non_dominated_mask(gk[["accuracy", cost.key]].to_numpy(), ["max", cost.sense])
            front, dom = gk[mask], gk[~mask]
            sym = "circle-open" if estimate else "circle"
            if not dom.empty:
                dom_parts.append((dom, color, sym, estimate))
            f = front.sort_values([cost.key, "accuracy"], ascending=[cost.sense == "min", True])
            fig.add_trace(
                go.Scatter(
                    x=f[cost.key], y=f["accuracy"], mode="lines+markers",
                    name=f"{run} front" + (" (supernet estimate)" if estimate else ""),
                    line=dict(color=color, width=2, shape="hv",
                              dash="dot" if estimate else "solid"),
                    marker=dict(color=color, size=8 if not estimate else 7, symbol=sym,
                                line=dict(width=1.5 if estimate else 1, color=color if estimate
                                          else "white")),
                    hovertemplate="%{text}<extra></extra>", **hover(f),
                    **accuracy_error(f, _rgba(color, 0.75)),
                )
            )  # fmt: skip
            derived = gk[gk["role"] == "derived"]
            if not derived.empty:
                star_parts.append((derived, color))
    if dom_parts:
        dom = pd.concat([p[0] for p in dom_parts])
        n = [len(p[0]) for p in dom_parts]
        rep = lambda vals: [v for v, k in zip(vals, n, strict=True) for _ in range(k)]  # noqa: E731
        fig.add_trace(
            go.Scatter(
                x=dom[cost.key], y=dom["accuracy"], mode="markers", name="dominated",
                marker=dict(color=rep([_rgba(p[1], 0.28) for p in dom_parts]), size=6,
                            symbol=rep([p[2] for p in dom_parts]),
                            line=dict(width=rep([1 if p[3] else 0 for p in dom_parts]),
                                      color=rep([_rgba(p[1], 0.45) for p in dom_parts]))),
                hovertemplate="%{text}<extra></extra>", **hover(dom),
                **accuracy_error(dom, "rgba(107,119,133,0.45)"),
            )
        )  # fmt: skip
        fig.data = (fig.data[-1],) + fig.data[:-1]  # faded points underneath the fronts
    if star_parts:
        stars = pd.concat([p[0] for p in star_parts])
        fig.add_trace(
            go.Scatter(
                x=stars[cost.key], y=stars["accuracy"], mode="markers", name="derived",
                hoverinfo="skip",
                marker=dict(symbol="star", size=15, line=dict(width=1, color="white"),
                            color=[p[1] for p in star_parts for _ in range(len(p[0]))]),
            )
        )  # fmt: skip
    refs = d[d["role"] == "reference"]
    if not refs.empty:
        seen: set[str] = set()
        ref_text = []
        for n_ in refs["name"]:  # label each reference network once
            ref_text.append("" if n_ in seen else n_)
            seen.add(n_)
        # the axes' extent as plotly will autorange it: every point, bar and target
        xr = _padded([*d[cost.key], *(v for _, v in targets)])
        yr = _padded([*d["accuracy"], *d.get("accuracy_lo", []), *d.get("accuracy_hi", [])])
        others = d[d["role"] != "reference"]
        bars = list(zip(d[cost.key], d.get("accuracy_lo", d["accuracy"]),
                        d.get("accuracy_hi", d["accuracy"]), strict=True))
        positions = _label_positions(list(refs[cost.key]), list(refs["accuracy"]), ref_text,
                                     xr, yr, obstacles=list(zip(others[cost.key],
                                                                others["accuracy"],
                                                                strict=True)), bars=bars)
        fig.add_trace(
            go.Scatter(
                x=refs[cost.key], y=refs["accuracy"], mode="markers+text", name="references",
                text=ref_text, textposition=positions,
                textfont=dict(size=11, color=REFERENCE_COLOR),
                marker=dict(symbol="diamond", size=10,
                            color=[colors.get(r, RUN_COLORS[0]) for r in refs["run"]],
                            line=dict(width=1.5, color=REFERENCE_COLOR)),
                hovertemplate="%{customdata}<extra></extra>", **hover(refs, "customdata"),
                **accuracy_error(refs, _rgba(REFERENCE_COLOR, 0.6)),
            )
        )  # fmt: skip
    for i, (run, value) in enumerate(sorted(targets, key=lambda t: t[1])):
        tcolor = colors.get(run, REFERENCE_COLOR)
        fig.add_vline(x=value, line=dict(color=tcolor, dash="dash", width=1.5))
        fig.add_annotation(  # stacked labels so close targets do not overlap
            x=value, xref="x", y=1.0 - 0.065 * i, yref="paper", xanchor="left", yanchor="top",
            text=f" target {fmt_value(value, cost.unit)}", showarrow=False,
            font=dict(size=11, color=tcolor), bgcolor="rgba(255,255,255,0.85)",
        )
    title = f"Accuracy vs {_SHORT_TITLES.get(cost.key, cost.label)}"
    if cost.estimate:
        title += " <span style='font-size:11px;color:#8a6d00'>(estimate)</span>"
    top = 44
    missing = left_out(df, cost.key) if cost.estimate else []
    if missing:  # say on the plot which points the LUT could not predict
        names = [_esc(m["name"]) for m in missing]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        title += (f"<br><span style='font-size:11px;color:#5f6875'>not shown, no LUT "
                  f"prediction: {shown}</span>")
        top = 62
    fig.update_layout(
        template=TEMPLATE, height=height, title=dict(text=title),
        xaxis_title=cost.axis_title, yaxis_title=acc.axis_title,
        showlegend=False, hovermode="closest", margin=dict(t=top),
    )
    return fig


# --------------------------------------------------------------------------- cell graphs


def _edge_path(p0, p1, bend: float) -> tuple[str, tuple[float, float], tuple[float, float]]:
    """SVG quadratic path from p0 to p1; returns (path, label point, arrow tail point)."""
    (x0, y0), (x1, y1) = p0, p1
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1.0
    cx, cy = mx - dy / length * bend * length, my + dx / length * bend * length
    label = (0.25 * x0 + 0.5 * cx + 0.25 * x1, 0.25 * y0 + 0.5 * cy + 0.25 * y1)
    t = 0.86  # point on the curve just before the head, for the arrow direction
    tail = (
        (1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x1,
        (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y1,
    )
    return f"M {x0},{y0} Q {cx},{cy} {x1},{y1}", label, tail


_HALO = "0 0 3px #fff, 0 0 3px #fff, 0 0 2px #fff"


def _arrow_head(tail: tuple[float, float], head: tuple[float, float], scale: tuple[float, float],
                back: float = 16.0, length: float = 9.0, width: float = 4.5) -> str:
    """SVG path (data units) of a filled triangle pointing at ``head``.

    ``scale`` is the approximate (x, y) pixels per data unit, so the head keeps its shape
    and stops ``back`` pixels short of the node centre (node radius 15 px).
    """
    sx, sy = scale
    hx, hy = head[0] * sx, head[1] * sy
    dx, dy = hx - tail[0] * sx, hy - tail[1] * sy
    n = math.hypot(dx, dy) or 1.0
    ux, uy = dx / n, dy / n
    tx, ty = hx - ux * back, hy - uy * back
    bx, by = tx - ux * length, ty - uy * length
    pts = [(tx, ty), (bx - uy * width, by + ux * width), (bx + uy * width, by - ux * width)]
    p = [f"{x / sx:.4f},{y / sy:.4f}" for x, y in pts]
    return f"M {p[0]} L {p[1]} L {p[2]} Z"


def _add_cell(fig: go.Figure, edges, concat, col: int, xref: str, yref: str,
              scale: tuple[float, float] = (115.0, 50.0)) -> None:
    """Draw one DARTS cell (list of [op, input]) into subplot ``col``.

    Layout: c_{k-2} top left, c_{k-1} bottom left, intermediate nodes on the midline,
    output on the right. Edges from c_{k-2} bow upwards, from c_{k-1} downwards, and
    skips between non-adjacent nodes arc alternately, so op labels rarely collide.
    """
    steps = len(edges) // 2
    pos: dict[int, tuple[float, float]] = {0: (0.0, 2.0), 1: (0.0, -2.0)}
    for i in range(steps):
        pos[i + 2] = (2.0 + 1.6 * i, 0.0)
    out_pos = (2.0 + 1.6 * steps + 0.6, 0.0)
    names = {0: "c<sub>k-2</sub>", 1: "c<sub>k-1</sub>"}
    names.update({i + 2: str(i) for i in range(steps)})
    shapes: list[dict] = []
    label_x: list[float] = []
    label_y: list[float] = []
    label_t: list[str] = []
    label_c: list[str] = []
    concat = list(concat) if concat else list(range(2, steps + 2))
    for s in concat:
        if s in pos:
            gap = steps + 2 - s
            path, _, _ = _edge_path(pos[s], out_pos, 0.0 if s < 2 or gap == 1 else -0.22)
            shapes.append(dict(type="path", path=path, xref=xref, yref=yref,
                               line=dict(color="#b5bbc4", width=1.2, dash="dot"), layer="below"))
    for k, edge in enumerate(edges):
        try:
            op, src = str(edge[0]), int(edge[1])
        except (TypeError, ValueError, IndexError):
            continue
        node = k // 2 + 2
        if src not in pos:
            continue
        color = OP_COLORS.get(op, "#6b7785")
        if src == 0:
            bend = 0.16
        elif src == 1:
            bend = -0.16
        elif node - src == 1:
            bend = 0.0
        else:
            bend = 0.3 if (node + src) % 2 else -0.3
        path, label, tail = _edge_path(pos[src], pos[node], bend)
        shapes.append(dict(type="path", path=path, xref=xref, yref=yref,
                           line=dict(color=color, width=2), layer="below"))
        head = _arrow_head(tail, pos[node], scale)
        shapes.append(dict(type="path", path=head, xref=xref, yref=yref,
                           fillcolor=color, line=dict(color=color, width=1), layer="below"))
        label_x.append(label[0])
        label_y.append(label[1] + (0.3 if bend == 0.0 else 0.0))  # straight: label above
        label_t.append(op)
        label_c.append(color)
    # shapes and one text trace are much cheaper to draw than annotations
    fig.update_layout(shapes=list(fig.layout.shapes) + shapes)
    fig.add_trace(
        go.Scatter(x=label_x, y=label_y, mode="text", text=label_t, hoverinfo="skip",
                   textfont=dict(size=10, color=label_c, shadow=_HALO), showlegend=False),
        row=col, col=1,
    )  # fmt: skip
    xs = [pos[i][0] for i in sorted(pos)] + [out_pos[0]]
    ys = [pos[i][1] for i in sorted(pos)] + [out_pos[1]]
    labels = [names[i] for i in sorted(pos)] + ["c<sub>k</sub>"]
    colors_ = ["#eef2f7"] * 2 + ["#ffffff"] * steps + ["#eef2f7"]
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="markers+text", text=labels, textfont=dict(size=12),
            marker=dict(size=30, color=colors_, line=dict(width=1.5, color="#4a5261"),
                        symbol=["square"] * 2 + ["circle"] * steps + ["square"]),
            hoverinfo="skip", showlegend=False,
        ),
        row=col, col=1,
    )  # fmt: skip


def cell_figure(genotype: dict[str, Any], title: str = "", height: int = 300) -> go.Figure | None:
    """Draw the normal and reduction cells of a DARTS genotype, one above the other.

    Nodes are the two cell inputs, the intermediate nodes and the output; each edge is
    labelled and coloured by its operation. Returns None when the genotype has no cells.
    """
    cells = [(c, genotype.get(c)) for c in ("normal", "reduce") if genotype.get(c)]
    if not cells:
        return None
    titles = ["Normal cell" if c == "normal" else "Reduction cell" for c, _ in cells]
    fig = make_subplots(rows=len(cells), cols=1, subplot_titles=titles, vertical_spacing=0.08)
    steps = max(len(e) // 2 for _, e in cells)
    # approximate pixels per data unit for a ~1150 px wide plot (arrow heads keep shape)
    scale = (1150 / (2.0 + 1.6 * steps + 1.5), (height - 30) / 5.0)
    for i, (c, edges) in enumerate(cells, start=1):
        suffix = "" if i == 1 else str(i)
        _add_cell(fig, edges, genotype.get(f"{c}_concat"), i, f"x{suffix}", f"y{suffix}", scale)
    fig.update_xaxes(visible=False, range=[-0.5, 2.0 + 1.6 * steps + 1.0])
    fig.update_yaxes(visible=False, range=[-2.5, 2.5])
    fig.update_layout(template=TEMPLATE, height=height * len(cells) + 40, title=dict(text=title),
                      margin=dict(l=10, r=10, t=70, b=10), showlegend=False)
    return fig


def chain_figure(blocks: Sequence[str], title: str = "", max_per_row: int = 12) -> go.Figure | None:
    """Draw a ProxylessNAS block chain: one box per searched block, in order, wrapped.

    ``zero`` / ``none`` blocks (skipped) are drawn grey. Returns None for no blocks.
    """
    if not blocks:
        return None
    xs, ys, labels, colors_ = [], [], [], []
    fig = go.Figure()
    rows = math.ceil(len(blocks) / max_per_row)
    per_row = math.ceil(len(blocks) / rows)
    for i, b in enumerate(blocks):
        r, c = divmod(i, per_row)
        x, y = c * 1.2, -r * 1.1
        b = str(b)
        skip = b in ("zero", "none", "identity", "skip")
        color = "#c4c9d1" if skip else OP_COLORS.get(b, _block_color(b))
        fig.add_shape(type="rect", x0=x - 0.5, x1=x + 0.5, y0=y - 0.4, y1=y + 0.4,
                      fillcolor=_rgba(color, 0.18), line=dict(color=color, width=1.5))
        if c < per_row - 1 and i < len(blocks) - 1:
            fig.add_annotation(x=x + 0.7, y=y, ax=x + 0.5, ay=y, xref="x", yref="y",
                               axref="x", ayref="y", text="", showarrow=True, arrowhead=2,
                               arrowcolor="#7a828e", arrowwidth=1.2)
        xs.append(x)
        ys.append(y)
        labels.append(f"<b>{i}</b><br>{_esc(b)}")
        colors_.append(color)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="text", text=labels,
                             textfont=dict(size=10, color="#2a2f36"), hoverinfo="skip"))
    fig.update_xaxes(visible=False, range=[-0.7, per_row * 1.2 - 0.5])
    fig.update_yaxes(visible=False, range=[-(rows - 1) * 1.1 - 0.6, 0.6])
    fig.update_layout(template=TEMPLATE, height=90 + 80 * rows, title=dict(text=title),
                      margin=dict(l=10, r=10, t=44, b=10), showlegend=False)
    return fig


def _block_color(name: str) -> str:
    """Colour a MobileNet-style block (``mb5_e6``, ``mb_k5_e6``, ``mbconv_k5x5_e6``) by
    its kernel size."""
    import re
    m = re.match(r"mb\w*?(?:_k)?(\d)", name)
    if m:
        return {"3": "#2f6fb0", "5": "#3a9a5b", "7": "#e07b21"}.get(m.group(1), "#6b7785")
    return "#6b7785"


def architecture_figure(genotype: dict[str, Any] | None, title: str = "") -> go.Figure | None:
    """Draw a genotype: DARTS cells, or the ProxylessNAS chain. None when unknown."""
    if not isinstance(genotype, dict):
        return None
    if isinstance(genotype.get("blocks"), list):
        return chain_figure(genotype["blocks"], title)
    return cell_figure(genotype, title)


# --------------------------------------------------------------------------- alphas


def _edge_names(n_edges: int) -> list[str]:
    """DARTS edge names in genotype order: node 0 has 2 inputs, node 1 has 3, ..."""
    names, node = [], 0
    while len(names) < n_edges:
        for src in range(node + 2):
            s = {0: "k-2", 1: "k-1"}.get(src, str(src - 2))
            names.append(f"{node}←{s}")
        node += 1
    return names[:n_edges]


def alpha_figure(history: list[dict[str, Any]], title: str = "") -> go.Figure | None:
    """Heat maps of architecture weights (softmax probabilities) per edge over epochs.

    One row per cell kind (normal, reduce; or the ProxylessNAS blocks); along x each
    edge gets a band of epochs, y is the candidate operation, colour is the probability
    (0..1). Returns None when the history carries no alphas.
    """
    epochs = [h for h in history if isinstance(h.get("alphas"), dict)]
    if not epochs:
        return None
    kinds = [k for k in ("normal", "reduce", "blocks") if k in epochs[-1]["alphas"]]
    kinds = kinds or list(epochs[-1]["alphas"])
    if not kinds:
        return None
    ops = epochs[-1].get("ops") or []
    ep_nums = [int(h.get("epoch", i)) for i, h in enumerate(epochs)]
    titles = {"normal": "Normal cell", "reduce": "Reduction cell", "blocks": "Blocks",
              "cell": "Cell (every cell shares it)"}
    fig = make_subplots(rows=len(kinds), cols=1, vertical_spacing=0.2 if len(kinds) > 1 else 0.1,
                        subplot_titles=[titles.get(k, k) for k in kinds])
    for r, kind in enumerate(kinds, start=1):
        try:
            arr = np.array([h["alphas"][kind] for h in epochs], dtype=float)  # (E, edges, ops)
        except (KeyError, ValueError, TypeError):
            continue
        if arr.ndim != 3:
            continue
        n_ep, n_edges, n_ops = arr.shape
        names = _edge_names(n_edges) if kind != "blocks" else [f"b{i}" for i in range(n_edges)]
        op_names = list(ops)[:n_ops] if len(ops) >= n_ops else [f"op{i}" for i in range(n_ops)]
        cols, z_cols, ticks = [], [], []
        gap = max(1, n_ep // 6)
        for e in range(n_edges):
            start = len(cols)
            for t in range(n_ep):
                cols.append(f"{names[e]} · epoch {ep_nums[t]}")
                z_cols.append(arr[t, e, :])
            ticks.append((cols[start + (n_ep - 1) // 2], names[e]))
            if e < n_edges - 1:
                for g in range(gap):
                    cols.append(" " * (e * gap + g + 1))
                    z_cols.append(np.full(n_ops, np.nan))
        z = np.array(z_cols).T  # (ops, columns)
        fig.add_trace(
            go.Heatmap(
                z=np.round(z, 3), x=cols, y=op_names, coloraxis="coloraxis",
                hovertemplate="edge %{x}<br>%{y}: p = %{z:.3f}<extra></extra>", hoverongaps=False,
            ),
            row=r, col=1,
        )  # fmt: skip
        fig.update_xaxes(tickvals=[t[0] for t in ticks], ticktext=[t[1] for t in ticks],
                         tickangle=0, tickfont=dict(size=10), showgrid=False, row=r, col=1)
        fig.update_yaxes(tickfont=dict(size=10), showgrid=False, row=r, col=1)
    fig.update_layout(
        template=TEMPLATE, height=150 + 210 * len(kinds), title=dict(text=title),
        coloraxis=dict(colorscale="Blues", cmin=0, cmax=1,
                       colorbar=dict(title=dict(text="softmax(α)"), thickness=12, len=0.8)),
        margin=dict(l=110, r=20, t=70, b=40),
    )  # fmt: skip
    return fig


# --------------------------------------------------------------------------- training


def epoch_ticks(epochs: Sequence[Any]) -> dict[str, Any]:
    """x-axis settings for an epoch axis: whole-number ticks only (every epoch up to 10
    epochs, then every 2, 5, 10, 20, ... so at most about 10 ticks)."""
    vals = [float(e) for e in epochs if _finite(e)]
    if not vals:
        return {}
    lo, hi = min(vals), max(vals)
    step = 1
    while (hi - lo) / step > 10:
        step = _next_step(step)
    out: dict[str, Any] = dict(tickmode="linear", tick0=0, dtick=step, tickformat="d")
    if hi - lo < 1:  # one epoch: a unit range around it, so only its own tick shows
        out["range"] = [lo - 0.5, hi + 0.5]
    return out


def _next_step(step: int) -> int:
    """1, 2, 5, 10, 20, 50, ..."""
    s = str(step)
    return step * 5 // 2 if s[0] == "2" else step * 2


def curves_figure(runs: list[Run], colors: dict[str, str]) -> go.Figure | None:
    """Loss, accuracy and expected cost over epochs for every run, one colour per run.

    Training is solid, validation dotted; the expected (LUT-predicted, differentiable)
    cost is plotted against each run's target as a dashed line. None without history.
    """
    runs = [r for r in runs if r.history]
    if not runs:
        return None
    has_cost = any(isinstance(h.get("expected_cost"), dict) for r in runs for h in r.history)
    ncols = 3 if has_cost else 2
    titles = ["Loss", "Accuracy (%)", "Expected cost (LUT-predicted) vs target"][:ncols]
    fig = make_subplots(rows=1, cols=ncols, subplot_titles=titles, horizontal_spacing=0.08)
    for r in runs:
        c = colors.get(r.label, RUN_COLORS[0])
        ep = [h.get("epoch", i) for i, h in enumerate(r.history)]
        for col, key, dash, what in (
            (1, "train_loss", "solid", "train loss"), (1, "val_loss", "dot", "val loss"),
            (2, "train_acc", "solid", "train acc"), (2, "val_acc", "dot", "val acc"),
        ):  # fmt: skip
            ys = [h.get(key) for h in r.history]
            if all(y is None for y in ys):
                continue
            fig.add_trace(
                go.Scatter(x=ep, y=ys, mode="lines", line=dict(color=c, dash=dash, width=2),
                           name=f"{r.label} ({r.method})", legendgroup=r.label,
                           showlegend=(key == "train_loss"),
                           hovertemplate=f"{_esc(r.label)} {what}<br>epoch %{{x}}: %{{y:.4g}}"
                           "<extra></extra>"),
                row=1, col=col,
            )  # fmt: skip
        if has_cost:
            keys = sorted({k for h in r.history for k in (h.get("expected_cost") or {})})
            for k in keys:
                ys = [(h.get("expected_cost") or {}).get(k) for h in r.history]
                unit = "ms" if k == "latency" else ""
                fig.add_trace(
                    go.Scatter(x=ep, y=ys, mode="lines+markers", marker=dict(size=4),
                               line=dict(color=c, width=2), legendgroup=r.label,
                               showlegend=False, name=f"{r.label} expected {k}",
                               hovertemplate=f"{_esc(r.label)} expected {k}<br>epoch %{{x}}: "
                               f"%{{y:.4g}} {unit}<extra></extra>"),
                    row=1, col=3,
                )  # fmt: skip
            t = r.target
            if t is not None:
                fig.add_hline(y=float(t["value"]), line=dict(color=c, dash="dash", width=1.5),
                              annotation_text=f"target {fmt_value(t['value'], t.get('unit', ''))}",
                              annotation_font_size=10, row=1, col=3)
    epochs = [e for r in runs for e in (h.get("epoch", i) for i, h in enumerate(r.history))]
    for col in range(1, ncols + 1):
        fig.update_xaxes(title_text="epoch", row=1, col=col, **epoch_ticks(epochs))
    fig.update_yaxes(title_text="cross-entropy", row=1, col=1)
    fig.update_yaxes(title_text="%", row=1, col=2)
    if has_cost:
        fig.update_yaxes(title_text="expected latency (ms)", row=1, col=3)
    fig.update_layout(template=TEMPLATE, height=380,
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    return fig


# --------------------------------------------------------------------------- cost model


def within_share(pred, meas, tol: float = 0.10) -> float:
    """Return the fraction (0..1) of pairs with ``|pred - meas| <= tol * meas``; NaN if none."""
    p, m = np.asarray(pred, dtype=float), np.asarray(meas, dtype=float)
    ok = np.isfinite(p) & np.isfinite(m) & (m > 0)
    if not ok.any():
        return math.nan
    return float(np.mean(np.abs(p[ok] - m[ok]) <= tol * m[ok]))


_PAIRS = (
    ("latency_ms", "latency_pred_ms", "Latency", "ms"),
    ("energy_mj", "energy_pred_mj", "Energy", "mJ"),
    ("memory_mib", "memory_pred_mib", "Peak memory", "MiB"),
)
#: Predictions that are upper bounds, not estimates: the LUT's memory is the sum of each
#: op's own peak, while the network's peak is that of the ops alive at one time.
UPPER_BOUNDS = {"memory_pred_mib"}


def pred_vs_measured_figure(
    df: pd.DataFrame, colors: dict[str, str], validation: dict[str, Any] | None = None
) -> tuple[go.Figure | None, list[dict[str, Any]]]:
    """Predicted (y) vs measured (x) cost with the y = x line and a ±10% band.

    One subplot per cost with pairs (latency, energy, memory). Architecture points are
    coloured by run; LUT validation points (``validation["points"]``, in ms) are grey.
    Peak memory's prediction is an upper bound (:data:`UPPER_BOUNDS`), not comparable with
    a measured peak: its panel has no ±10% band and it gets no within-10% share, only the
    share of points where the bound holds (predicted ≥ measured).
    Returns (figure or None, list of ``{"cost", "unit", "n", "within_10pct", "upper_bound",
    "bound_holds", "left_out"}`` summaries; shares 0..1, ``within_10pct`` NaN for an upper
    bound; ``left_out``: :func:`left_out` items measured but not predicted).
    """
    panels = []
    for mk, pk, label, unit in _PAIRS:
        d = df[df[mk].notna() & df[pk].notna()]
        vpts = []
        if mk == "latency_ms" and validation:
            for p in validation.get("points", []):
                try:
                    # the calibrated predictor where `lut calibrate` fitted one
                    pred = p.get("calibrated_ms", p["predicted_ms"])
                    vpts.append((float(p["measured_ms"]), float(pred)))
                except (KeyError, TypeError, ValueError):
                    continue
        if not d.empty or vpts:
            panels.append((mk, pk, label, unit, d, vpts))
    summaries: list[dict[str, Any]] = []
    if not panels:
        return None, summaries
    titles = []
    for mk, pk, label, unit, d, vpts in panels:
        meas = list(d[mk]) + [v[0] for v in vpts]
        pred = list(d[pk]) + [v[1] for v in vpts]
        bound = pk in UPPER_BOUNDS
        m_, p_ = np.asarray(meas, dtype=float), np.asarray(pred, dtype=float)
        holds = float(np.mean(p_ >= m_)) if len(m_) else math.nan
        share = math.nan if bound else within_share(pred, meas)
        missing = left_out(df, pk, need=mk)
        summaries.append({"cost": label, "unit": unit, "n": len(meas), "within_10pct": share,
                          "upper_bound": bound, "bound_holds": holds if bound else None,
                          "left_out": missing})
        if bound:
            titles.append(f"{label}: LUT upper bound ≥ measured for "
                          f"{int(round(holds * len(meas)))} of {len(meas)}")
        else:
            titles.append(f"{label}: {fmt_value(100 * share, '%', 3)} of {len(meas)} "
                          "within ±10%")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.09)
    for i, (mk, pk, label, unit, d, vpts) in enumerate(panels, start=1):
        bound = pk in UPPER_BOUNDS
        allv = np.array(list(d[mk]) + list(d[pk]) + [x for v in vpts for x in v], dtype=float)
        allv = allv[np.isfinite(allv) & (allv > 0)]
        lo, hi = (allv.min() * 0.8, allv.max() * 1.2) if allv.size else (0.1, 1.0)
        log = hi / lo > 30
        xs = np.geomspace(lo, hi, 40) if log else np.linspace(0, hi, 40)
        if not bound:  # a ±10% band would suggest the upper bound estimates the peak
            fig.add_trace(go.Scatter(x=np.r_[xs, xs[::-1]], y=np.r_[xs * 1.1, xs[::-1] * 0.9],
                                     fill="toself", fillcolor="rgba(58,154,91,0.12)",
                                     line=dict(width=0), hoverinfo="skip", showlegend=i == 1,
                                     name="±10% band", legendgroup="band"), row=1, col=i)
        fig.add_trace(go.Scatter(x=xs[[0, -1]], y=xs[[0, -1]], mode="lines",
                                 line=dict(color="#3a9a5b", width=1.5, dash="dash"),
                                 name="y = x", showlegend=i == 1, legendgroup="yx",
                                 hoverinfo="skip"), row=1, col=i)
        if vpts:
            v = np.array(vpts)
            fig.add_trace(go.Scatter(x=v[:, 0], y=v[:, 1], mode="markers",
                                     marker=dict(color="rgba(107,119,133,0.55)", size=6),
                                     name=("LUT validation (calibrated)" if any(
                                         "calibrated_ms" in p for p in validation["points"])
                                         else "LUT validation"),
                                     legendgroup="val", showlegend=True,
                                     hovertemplate="validation<br>measured %{x:.4g} ms<br>"
                                     "predicted %{y:.4g} ms<extra></extra>"), row=1, col=i)
        what = "predicted upper bound" if bound else "predicted"
        if not d.empty:  # all runs in one trace (per-point colours) to keep drawing fast
            fig.add_trace(go.Scatter(
                x=d[mk], y=d[pk], mode="markers", name="architectures", showlegend=False,
                marker=dict(color=[colors.get(r, RUN_COLORS[0]) for r in d["run"]], size=7,
                            opacity=0.8, line=dict(width=0.5, color="white")),
                text=[f"<b>{_esc(n)}</b> ({_esc(r)})"
                      for n, r in zip(d["name"], d["run"], strict=True)],
                hovertemplate=f"%{{text}}<br>measured %{{x:.4g}} {unit}<br>"
                f"{what} %{{y:.4g}} {unit}<extra></extra>"), row=1, col=i)  # fmt: skip
        axis = dict(type="log" if log else "linear")
        if not log:
            axis["range"] = [0, hi]
        fig.update_xaxes(title_text=f"measured {label.lower()} ({unit})", row=1, col=i, **axis)
        ytitle = (f"{label.lower()}, LUT upper bound ({unit})" if bound
                  else f"predicted {label.lower()} ({unit})")
        fig.update_yaxes(title_text=ytitle, row=1, col=i, **axis)
    fig.update_layout(template=TEMPLATE, height=400,
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return fig, summaries


def lut_frame(lut: dict[str, Any]) -> pd.DataFrame:
    """Flatten LUT entries into a table: op, shape, latency stats (ms), CV, memory, energy.

    Columns: key, op, shape, c_in, c_out, h, w, stride, batch, dtype, median_ms, mean_ms,
    p5_ms, p95_ms, cv (fraction), repeats, noisy, memory_mib, energy_mj, energy_reason.
    """
    rows = []
    for key, e in (lut.get("entries") or {}).items():
        if not isinstance(e, dict):
            continue
        lat = e.get("latency_ms") if isinstance(e.get("latency_ms"), dict) else {}

        def num(v):
            try:
                f = float(v)
                return f if math.isfinite(f) else math.nan
            except (TypeError, ValueError):
                return math.nan

        shape = (
            f"{e.get('c_in', '?')}→{e.get('c_out', '?')} · {e.get('h', '?')}×{e.get('w', '?')}"
            f" · s{e.get('stride', '?')}"
        )
        rows.append({
            "key": key, "op": str(e.get("op") or key.split("/")[0]), "shape": shape,
            "c_in": e.get("c_in"), "c_out": e.get("c_out"), "h": e.get("h"), "w": e.get("w"),
            "stride": e.get("stride"), "batch": e.get("batch"), "dtype": e.get("dtype"),
            "median_ms": num(lat.get("median")), "mean_ms": num(lat.get("mean")),
            "p5_ms": num(lat.get("p5")), "p95_ms": num(lat.get("p95")),
            "cv": num(lat.get("cv")), "repeats": num(lat.get("repeats")),
            "noisy": bool(e.get("noisy")),
            "memory_mib": num(e.get("memory_bytes")) / 2**20,
            "energy_mj": num(e.get("energy_j")) * 1e3,
            "energy_reason": str(e.get("energy_reason") or ""),
        })  # fmt: skip
    return pd.DataFrame(rows)


def lut_figure(table: pd.DataFrame, title: str = "") -> go.Figure | None:
    """Heat maps of the LUT: median latency (log colour, ms) and its CV (%), op x shape.

    When several batch sizes / dtypes are present, the first batch and dtype are shown.
    Returns None for an empty table.
    """
    if table is None or table.empty or table["median_ms"].notna().sum() == 0:
        return None
    t = table
    for col in ("batch", "dtype"):
        vals = t[col].dropna().unique()
        if len(vals) > 1:
            t = t[t[col] == sorted(vals, key=str)[0]]
    t = t.sort_values(["c_in", "h", "stride"], key=lambda s: pd.to_numeric(s, errors="coerce"))
    shapes = list(dict.fromkeys(t["shape"]))
    ops = sorted(t["op"].unique())
    med = t.pivot_table(index="op", columns="shape", values="median_ms", aggfunc="first")
    cv = t.pivot_table(index="op", columns="shape", values="cv", aggfunc="first")
    med = med.reindex(index=ops, columns=shapes)
    cv = cv.reindex(index=ops, columns=shapes)
    zlog = np.log10(med.to_numpy(dtype=float).clip(min=1e-6))
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Median latency (ms)", "CV (%)"],
                        horizontal_spacing=0.14)
    finite = zlog[np.isfinite(zlog)]
    lo, hi = (math.floor(finite.min()), math.ceil(finite.max())) if finite.size else (0, 1)
    ticks = list(range(lo, hi + 1))
    fig.add_trace(go.Heatmap(
        z=zlog, x=shapes, y=ops, customdata=med.to_numpy(), colorscale="Viridis",
        zmin=lo, zmax=hi, hoverongaps=False,
        colorbar=dict(title=dict(text="ms"), tickvals=ticks,
                      ticktext=[fmt_value(10.0**v) for v in ticks], x=0.43, thickness=10),
        hovertemplate="%{y} @ %{x}<br>median %{customdata:.4g} ms<extra></extra>",
    ), row=1, col=1)  # fmt: skip
    fig.add_trace(go.Heatmap(
        z=(100 * cv.to_numpy(dtype=float)).round(2), x=shapes, y=ops, colorscale="OrRd",
        zmin=0, hoverongaps=False, colorbar=dict(title=dict(text="%"), thickness=10),
        hovertemplate="%{y} @ %{x}<br>CV %{z:.2f}%<extra></extra>",
    ), row=1, col=2)  # fmt: skip
    fig.update_xaxes(tickangle=-40, tickfont=dict(size=9), showgrid=False)
    fig.update_yaxes(tickfont=dict(size=10), showgrid=False)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=max(300, 140 + 26 * len(ops)),
                      title=dict(text=title), margin=dict(l=110, r=20, t=84, b=110))
    return fig
