"""Figures of a derived architecture: DARTS cells as graphs, ProxylessNAS block chains.

Each function returns a plotly figure (no units: nodes, operations and edges) or None
when the genotype has nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .format import esc
from .style import TEMPLATE, rgba

__all__ = ["OP_COLORS", "cell_figure", "chain_figure", "architecture_figure"]

#: Colours for operations in cell graphs and chains (unknown ops get a neutral grey).
OP_COLORS = {
    "sep_conv_3x3": "#2f6fb0", "sep_conv_5x5": "#1d4f86", "sep_conv_7x7": "#143a63",
    "dil_conv_3x3": "#3a9a5b", "dil_conv_5x5": "#24703f",
    "max_pool_3x3": "#e07b21", "avg_pool_3x3": "#c9a227",
    "skip_connect": "#7c5cbf", "identity": "#7c5cbf", "none": "#9aa1ab", "zero": "#9aa1ab",
    "conv_7x1_1x7": "#c23b4e",
}  # fmt: skip


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
                      fillcolor=rgba(color, 0.18), line=dict(color=color, width=1.5))
        if c < per_row - 1 and i < len(blocks) - 1:
            fig.add_annotation(x=x + 0.7, y=y, ax=x + 0.5, ay=y, xref="x", yref="y",
                               axref="x", ayref="y", text="", showarrow=True, arrowhead=2,
                               arrowcolor="#7a828e", arrowwidth=1.2)
        xs.append(x)
        ys.append(y)
        labels.append(f"<b>{i}</b><br>{esc(b)}")
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
