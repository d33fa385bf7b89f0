"""plotly figures for the report, importable from one place.

The figures live in modules named for what they draw; this module re-exports them so
``reports.figures.X`` keeps working:

- :mod:`reports.style`: run colours and the report's plotly template;
- :mod:`reports.format`: values as text (:func:`fmt_value`);
- :mod:`reports.points`: hover texts, accuracy error bars, points a figure leaves out;
- :mod:`reports.scatter`: accuracy vs cost (:func:`pareto_figure`);
- :mod:`reports.cells`: DARTS cells and ProxylessNAS chains;
- :mod:`reports.history`: architecture weights and training curves over epochs;
- :mod:`reports.costs`: predicted vs measured costs, and the LUT.

Every figure function returns a ``plotly.graph_objects.Figure`` (or None when its input
is absent) styled with the report's compact template. Units are those of
:data:`reports.loader.METRICS` (accuracy %, latency ms, energy mJ, memory MiB, params
and MACs in millions). Figures are drawn from measured or computed values only;
predicted values are labelled as predictions.
"""

from __future__ import annotations

from .cells import OP_COLORS as OP_COLORS
from .cells import architecture_figure, cell_figure, chain_figure
from .costs import UPPER_BOUNDS as UPPER_BOUNDS
from .costs import lut_figure, lut_frame, pred_vs_measured_figure, within_share
from .format import fmt_value
from .history import alpha_figure, curves_figure, epoch_ticks
from .points import accuracy_error, left_out, left_out_note
from .points import chance_text as chance_text
from .points import ci_text as ci_text
from .points import is_at_chance as is_at_chance
from .scatter import _SIDES as _SIDES
from .scatter import REFERENCE_COLOR as REFERENCE_COLOR
from .scatter import _label_positions as _label_positions
from .scatter import pareto_figure
from .style import RUN_COLORS, TEMPLATE, run_colors

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
