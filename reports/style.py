"""The report's look: run colours and the compact plotly template every figure uses.

Holds no figure: the figure modules (:mod:`reports.scatter`, :mod:`reports.cells`,
:mod:`reports.history`, :mod:`reports.costs`, :mod:`reports.bench_figures`) take their
colours and layout from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

__all__ = ["RUN_COLORS", "TEMPLATE", "run_colors", "rgba"]

#: One colour per run (cycled), chosen for contrast on white and for colour-blind safety.
RUN_COLORS = (
    "#2f6fb0", "#e07b21", "#3a9a5b", "#c23b4e", "#7c5cbf",
    "#8c6a4f", "#d462a6", "#6b7785", "#b3a21c", "#1fa3b8",
)  # fmt: skip
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


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """Return ``{run label: hex colour}``, one distinct colour per run (cycled after 10)."""
    return {lab: RUN_COLORS[i % len(RUN_COLORS)] for i, lab in enumerate(labels)}


def rgba(hex_color: str, alpha: float) -> str:
    """Return ``"rgba(r,g,b,alpha)"`` (a CSS colour) of ``"#rrggbb"`` with opacity ``alpha``
    (0..1)."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
