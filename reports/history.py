"""Figures of a run's search history (``history.json``), one value per epoch.

:func:`alpha_figure` shows the architecture weights (softmax probabilities, 0..1) per
edge over epochs; :func:`curves_figure` the loss (cross-entropy), accuracy (%) and
expected LUT-predicted cost (ms) over epochs, with :func:`epoch_ticks` for their axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .format import esc, fmt_value, is_finite
from .loader import Run
from .style import RUN_COLORS, TEMPLATE

__all__ = ["alpha_figure", "epoch_ticks", "curves_figure"]


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
    vals = [float(e) for e in epochs if is_finite(e)]
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

    Training is solid, validation dotted; the cost term each epoch added to the loss is
    dashed beside the losses (so a cost-driven choice shows as a large term, a collapse
    as accuracy falling while it is small); the expected (LUT-predicted, differentiable)
    cost of the mixture, and dotted with diamonds the derived cell's (what the target is
    judged on), are plotted against each run's target as a dashed line. None without
    history.
    """
    runs = [r for r in runs if r.history]
    if not runs:
        return None
    has_cost = any(isinstance(h.get("expected_cost"), dict) for r in runs for h in r.history)
    ncols = 3 if has_cost else 2
    titles = ["Loss (dashed: cost term)", "Accuracy (%)",
              "Expected cost (LUT-predicted) vs target"][:ncols]
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
                           hovertemplate=f"{esc(r.label)} {what}<br>epoch %{{x}}: %{{y:.4g}}"
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
                               hovertemplate=f"{esc(r.label)} expected {k}<br>epoch %{{x}}: "
                               f"%{{y:.4g}} {unit}<extra></extra>"),
                    row=1, col=3,
                )  # fmt: skip
            # what the derivation keeps (the cost the target is judged on, DARTS), and
            # the cost term itself (no unit: how hard the cost pulled at each epoch)
            for key, col, what, unit, style in (
                ("derived_latency", 3, "derived cell's latency", " ms",
                 dict(mode="lines+markers", marker=dict(size=6, symbol="diamond"),
                      line=dict(color=c, width=1.5, dash="dot"))),
                ("penalty", 1, "cost term (added to the loss)", "",
                 dict(mode="lines", line=dict(color=c, width=1, dash="dash"))),
            ):  # fmt: skip
                ys = [h.get(key) for h in r.history]
                if any(y for y in ys if y is not None):
                    fig.add_trace(go.Scatter(
                        x=ep, y=ys, legendgroup=r.label, showlegend=False,
                        name=f"{r.label} {what}", **style,
                        hovertemplate=f"{esc(r.label)} {what}<br>epoch %{{x}}: "
                        f"%{{y:.4g}}{unit}<extra></extra>"), row=1, col=col)
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
