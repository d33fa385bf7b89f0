"""The ``nasbench`` application: the typer app every command module adds itself to, the
consoles, the shared parsers, and :func:`main` (one line and exit status 2 for bad
input).

Every command has ``--help``; data commands have ``--json``; bad input prints one line
on stderr and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nasbench.errors import UserError
from nasbench.options import check_number

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Hardware-aware benchmarking and profiling for Neural Architecture "
                       "Search: profile a device into a LUT, search with cost-aware "
                       "objectives, report Pareto fronts.")
lut_app = typer.Typer(no_args_is_help=True, help="Inspect and compare LUT files.")
app.add_typer(lut_app, name="lut")

out = Console()
err = Console(stderr=True)


def _parse_batches(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--batch must be comma-separated integers, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise UserError(f"--batch needs positive integers, got {text!r}")
    return vals


def _parse_ratio(text: str) -> float:
    t = text.strip()
    try:
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise UserError(f"threshold must look like 10% or 0.1, got {text!r}") from None
    return check_number("--threshold", v, min=0)


# ---- options several commands share: one parser and one help text each ---------------

JSON_HELP = "Print the result as JSON (for scripts)."
QUIET_HELP = "No progress bars or chatter: only the result and errors."
BENCHMARK_DIR_HELP = ("The folder of the NAS-Bench-201 / HW-NAS-Bench tables (default: "
                      "where `nasbench data fetch nb201` put them).")
JsonOut = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]
BenchmarkDir = Annotated[Path | None, typer.Option("--benchmark-dir",  # noqa: UP007
                                                      help=BENCHMARK_DIR_HELP)]
