"""The accuracy-vs-cost (Pareto) figure of the run report, and its label placement.

:func:`pareto_figure` draws accuracy (%, y) against one cost (x, in that metric's unit
from :data:`reports.loader.METRICS`: latency ms, energy mJ, memory MiB, params and MACs
in millions); predicted costs are titled as estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from .format import esc, fmt_value, is_finite
from .loader import METRIC_BY_KEY, Metric
from .pareto import non_dominated_mask
from .points import accuracy_error, hover_text, left_out
from .style import RUN_COLORS, TEMPLATE, rgba

__all__ = ["REFERENCE_COLOR", "SHORT_TITLES", "pareto_figure"]

#: Outline and label colour of the reference networks' markers.
REFERENCE_COLOR = "#30343b"

#: Short name of each cost, for figure titles and table heads.
SHORT_TITLES = {
    "latency_ms": "latency (measured)", "latency_pred_ms": "latency (LUT-predicted)",
    "energy_mj": "energy (measured)", "energy_pred_mj": "energy (predicted)",
    "memory_mib": "peak memory (measured)",
    "memory_pred_mib": "peak memory (predicted upper bound)",
    "params_m": "parameters", "macs_m": "MACs",
}  # fmt: skip


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
              for x, lo, hi in bars if is_finite(lo) and is_finite(hi)]
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
    v = [float(x) for x in vals if is_finite(x)]
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
        return {field: hover_text(sub)}

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
                    **accuracy_error(f, rgba(color, 0.75)),
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
                marker=dict(color=rep([rgba(p[1], 0.28) for p in dom_parts]), size=6,
                            symbol=rep([p[2] for p in dom_parts]),
                            line=dict(width=rep([1 if p[3] else 0 for p in dom_parts]),
                                      color=rep([rgba(p[1], 0.45) for p in dom_parts]))),
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
                **accuracy_error(refs, rgba(REFERENCE_COLOR, 0.6)),
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
    title = f"Accuracy vs {SHORT_TITLES.get(cost.key, cost.label)}"
    if cost.estimate:
        title += " <span style='font-size:11px;color:#8a6d00'>(estimate)</span>"
    top = 44
    missing = left_out(df, cost.key) if cost.estimate else []
    if missing:  # say on the plot which points the LUT could not predict
        names = [esc(m["name"]) for m in missing]
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
