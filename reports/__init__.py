"""HTML Pareto reports for nasbench runs: Pareto sets, hypervolume, plotly figures, HTML.

This package imports nothing else of nasbench: it reads run directories (JSON) and,
optionally, LUT and validation JSON files. Entry point: :func:`build_report`.

Modules: ``loader`` (reading runs, LUTs, validation files; the points table),
``pareto`` (fronts, hypervolume), ``style`` (colours, plotly template), ``format``
(values as text), ``points`` (per-point hover texts, error bars, left-out points),
``scatter`` (accuracy vs cost), ``cells`` (architectures), ``history`` (per-epoch
figures), ``costs`` (predicted vs measured, LUT), ``html`` (the run report page);
``bench_data``, ``bench_figures`` and ``bench`` (the NAS-Bench-201 bench report).
``figures`` re-exports every figure function.
"""

from .bench import build_bench_report, load_bench
from .html import atomic_write_text, build_report
from .loader import METRICS, ReportError, Run, load_lut, load_run, load_runs, points_frame
from .pareto import (
    default_reference_point,
    dominates,
    hypervolume,
    non_dominated_mask,
    pareto_ranks,
)

__all__ = [
    "METRICS",
    "ReportError",
    "Run",
    "atomic_write_text",
    "build_bench_report",
    "build_report",
    "default_reference_point",
    "dominates",
    "hypervolume",
    "load_bench",
    "load_lut",
    "load_run",
    "load_runs",
    "non_dominated_mask",
    "pareto_ranks",
    "points_frame",
]
