"""Figures of the NAS-Bench-201 bench report: found vs true fronts, anytime HV gap.

Accuracy is in %, cost in the bench file's ``unit``; the HV gap is
``1 − HV found / HV true`` (no unit). Each function returns a plotly figure, or None
when there is nothing to draw.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

from .bench_data import align_anytime, bench_metric, bench_unit, median_run
from .format import fmt_or_dash
from .loader import _num
from .pareto import non_dominated_mask
from .style import TEMPLATE, rgba

__all__ = ["FLOOR_COLOR", "MIN_ANYTIME_POINTS", "front_figure", "anytime_figure"]

#: A method whose aligned anytime curve has fewer query counts than this is not drawn.
MIN_ANYTIME_POINTS = 2
#: Colour of the signal floor (fronts and table rows); of the true front.
FLOOR_COLOR = "#6b7785"
TRUE_COLOR = "#1f242b"
SENSES = ("max", "min")  # (accuracy, cost)


def _points(front: Any) -> dict[str, list]:
    """Finite (cost, accuracy) points of a front list, sorted by cost, with their ids."""
    pts = []
    for p in front or []:
        c, a = _num(p.get("cost")), _num(p.get("accuracy"))
        if math.isfinite(c) and math.isfinite(a):
            pts.append((c, a, str(p.get("arch") or "?"), p.get("index")))
    pts.sort(key=lambda t: (t[0], -t[1]))
    return {"x": [p[0] for p in pts], "y": [p[1] for p in pts],
            "arch": [p[2] for p in pts], "index": ["?" if p[3] is None else p[3] for p in pts]}


def _front_only(pts: dict[str, list]) -> dict[str, list]:
    if not pts["x"]:
        return pts
    mask = non_dominated_mask(np.column_stack([pts["y"], pts["x"]]), SENSES)
    return {k: [v for v, m in zip(vals, mask, strict=True) if m] for k, vals in pts.items()}


def _hover(unit: str, extra: str = "") -> str:
    return ("<b>%{customdata[0]}</b><br>index %{customdata[1]}" + extra +
            "<br>accuracy %{y:.2f}%<br>cost %{x:.4g} " + unit + "<extra>%{fullData.name}</extra>")


def front_figure(benches, labels, colors, title: str = "", height: int = 460) -> go.Figure | None:
    """Accuracy (y, %) vs cost (x) for benches of one device: the true front (step line),
    every seed's found front (faint), the median-regret seed's front (solid), the chosen
    cells (stars), targets (dashed) and the signal floor's front (dotted grey)."""
    b0 = benches[0]
    unit = bench_unit(b0)
    fig = go.Figure()
    true = _points(b0.get("true_front"))
    if true["x"]:
        fig.add_trace(go.Scatter(
            x=true["x"], y=true["y"], mode="lines+markers", name="true front",
            line=dict(color=TRUE_COLOR, width=1.5, shape="hv"),
            marker=dict(color=TRUE_COLOR, size=6, symbol="circle-open", line=dict(width=1.5)),
            customdata=list(zip(true["arch"], true["index"], strict=True)),
            hovertemplate=_hover(unit),
        ))  # fmt: skip
    floor_done = False
    for b, label in zip(benches, labels, strict=True):
        color = colors[label]
        faint = {"x": [], "y": [], "cd": []}
        for r in b["runs"]:
            p = _points(r.get("found_front"))
            faint["x"] += p["x"]
            faint["y"] += p["y"]
            faint["cd"] += [(a, i, r.get("seed")) for a, i in zip(p["arch"], p["index"],
                                                                  strict=True)]
        if faint["x"]:
            fig.add_trace(go.Scatter(
                x=faint["x"], y=faint["y"], mode="markers", name=label, legendgroup=label,
                showlegend=False, marker=dict(color=rgba(color, 0.25), size=6),
                customdata=faint["cd"], hovertemplate=_hover(unit, " · seed %{customdata[2]}"),
            ))  # fmt: skip
        med = median_run(b["runs"])
        if med is not None:
            p = _front_only(_points(med.get("found_front")))
            if p["x"]:
                fig.add_trace(go.Scatter(
                    x=p["x"], y=p["y"], mode="lines+markers", legendgroup=label,
                    name=f"{label} (median seed {med.get('seed')})",
                    line=dict(color=color, width=2, shape="hv"),
                    marker=dict(color=color, size=7, line=dict(width=1, color="white")),
                    customdata=list(zip(p["arch"], p["index"], strict=True)),
                    hovertemplate=_hover(unit),
                ))  # fmt: skip
        chosen = [r for r in b["runs"]
                  if math.isfinite(_num(r.get("cost"))) and math.isfinite(_num(r.get("accuracy")))]
        if chosen:
            fig.add_trace(go.Scatter(
                x=[_num(r["cost"]) for r in chosen], y=[_num(r["accuracy"]) for r in chosen],
                mode="markers", name=f"{label} chosen", legendgroup=label, showlegend=False,
                marker=dict(color=color, size=14, symbol="star", line=dict(width=1, color="white")),
                customdata=[(str(r.get("arch") or "?"), r.get("index", "?"), r.get("seed"),
                             fmt_or_dash(r.get("regret"), "pp")) for r in chosen],
                hovertemplate=_hover(unit, "<br>chosen by seed %{customdata[2]}, "
                                           "regret %{customdata[3]}"),
            ))  # fmt: skip
        fl = _front_only(_points((b.get("floor") or {}).get("found_front")))
        if fl["x"] and not floor_done:
            floor_done = True
            fig.add_trace(go.Scatter(
                x=fl["x"], y=fl["y"], mode="lines", name="signal floor",
                line=dict(color=FLOOR_COLOR, width=1.5, dash="dot", shape="hv"),
                customdata=list(zip(fl["arch"], fl["index"], strict=True)),
                hovertemplate=_hover(unit),
            ))  # fmt: skip
    targets = sorted({t for t in (_num(b.get("target")) for b in benches) if math.isfinite(t)})
    for i, t in enumerate(targets):
        fig.add_vline(x=t, line=dict(color="#4a5261", dash="dash", width=1.2))
        fig.add_annotation(x=t, xref="x", y=1.0 - 0.065 * i, yref="paper", xanchor="left",
                           yanchor="top", text=f" target {fmt_or_dash(t, unit)}", showarrow=False,
                           font=dict(size=11, color="#4a5261"),
                           bgcolor="rgba(255,255,255,0.85)")
    if not fig.data:
        return None
    fig.update_layout(
        template=TEMPLATE, height=height, title=dict(text=title), hovermode="closest",
        xaxis_title=f"{bench_metric(b0)} ({unit})" if unit else bench_metric(b0),
        yaxis_title="accuracy (%)", margin=dict(t=48, b=110),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )  # fmt: skip
    return fig


def anytime_figure(benches, labels, colors, title: str = "",
                   height: int = 420) -> tuple[go.Figure | None, list[str]]:
    """HV gap against queries, per bench the mean over seeds (line) and ±1 std (band).

    Returns (figure or None, labels of the benches skipped for lack of anytime data).
    The query axis is logarithmic when the largest count exceeds 50.
    """
    fig = go.Figure()
    skipped, qmax = [], 0.0
    for b, label in zip(benches, labels, strict=True):
        q, mean, std = align_anytime(b["runs"])
        keep = np.isfinite(mean)
        q, mean, std = q[keep], mean[keep], std[keep]
        if q.size < MIN_ANYTIME_POINTS:
            skipped.append(label)
            continue
        qmax = max(qmax, float(q.max()))
        color = colors[label]
        x = q.tolist()
        std = np.nan_to_num(std)
        fig.add_trace(go.Scatter(x=x, y=(mean - std).tolist(), mode="lines", legendgroup=label,
                                 line=dict(width=0, color=color, shape="hv"), showlegend=False,
                                 hoverinfo="skip", name=f"{label} −1 std"))
        fig.add_trace(go.Scatter(x=x, y=(mean + std).tolist(), mode="lines", legendgroup=label,
                                 line=dict(width=0, color=color, shape="hv"), fill="tonexty",
                                 fillcolor=rgba(color, 0.18), showlegend=False,
                                 hoverinfo="skip", name=f"{label} +1 std"))
        fig.add_trace(go.Scatter(
            x=x, y=mean.tolist(), mode="lines", name=label, legendgroup=label,
            line=dict(color=color, width=2, shape="hv"), customdata=std.tolist(),
            hovertemplate="%{x:.0f} queries<br>HV gap %{y:.4f} ± %{customdata:.4f}"
                          "<extra>%{fullData.name}</extra>",
        ))  # fmt: skip
    if not fig.data:
        return None, skipped
    fig.update_layout(
        template=TEMPLATE, height=height, title=dict(text=title), hovermode="x unified",
        xaxis=dict(title=dict(text="queries"), type="log" if qmax > 50 else "linear"),
        yaxis_title="HV gap (1 − HV found / HV true)", margin=dict(t=48, b=100),
        legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
    )  # fmt: skip
    return fig, skipped
