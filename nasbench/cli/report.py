"""``nasbench report RUN [RUN ...]``: rebuild or combine HTML Pareto reports."""

from __future__ import annotations

from pathlib import Path

import typer

from nasbench.cli.app import Quiet
from nasbench.errors import UserError


def report(
    runs: list[Path] = typer.Argument(..., help="Run directories (runs/<id>/), or "
                                      "`nasbench bench` output folders."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                       help="HTML file (default: RUN/report.html for one "
                                            "run, ./report.html for several)."),
    lut: Path | None = typer.Option(None, help="LUT to show (default: the first run's)."),
    validation: Path | None = typer.Option(None, help="`nasbench lut validate` JSON."),
    title: str | None = typer.Option(None, help="Report title."),
    quiet: Quiet = False,
):
    """Write one self-contained HTML report (Pareto fronts, cells, alphas, LUT,
    provenance) for one or more runs, plus a CSV of every point beside it."""
    from reports import ReportError, build_report
    benches = _bench_files(runs)
    if benches:                     # `nasbench bench` output: the bench report
        from reports import build_bench_report
        if len(benches) != len(runs) and any((r / "result.json").is_file() for r in runs):
            raise UserError("give either run directories or bench folders, not both")
        out = out or (runs[0] / "report.html" if len(runs) == 1 else Path("report.html"))
        try:
            path = build_bench_report([p for ps in benches.values() for p in ps], out,
                                      title=title)
        except ReportError as e:
            raise UserError(str(e)) from None
        if not quiet:
            typer.echo(f"wrote {path}")
        return
    for r in runs:
        if not (r / "result.json").is_file():
            raise UserError(f"{r} is not a run directory (no result.json)")
    if lut is not None and not lut.is_file():
        raise UserError(f"LUT file not found: {lut}")
    if out is None:
        out = runs[0] / "report.html" if len(runs) == 1 else Path("report.html")
    if lut is None:
        import json
        try:
            p = json.loads((runs[0] / "result.json").read_text()).get("lut", {}).get("path")
        except (OSError, ValueError):
            p = None
        lut = Path(p) if p and Path(p).is_file() else None
    try:
        path = build_report(list(runs), out, lut=lut, validation=validation, title=title)
    except ReportError as e:
        raise UserError(str(e)) from None
    if not quiet:
        typer.echo(f"wrote {path}")


def _bench_files(paths: list[Path]) -> dict[Path, list[Path]]:
    """Returns {argument: its bench.json files} for the arguments that are `nasbench
    bench` outputs (a bench.json, its folder, or a folder of such folders)."""
    out = {}
    for p in paths:
        if p.is_file() and p.name.endswith(".json") and p.name != "result.json":
            out[p] = [p]
        elif (p / "bench.json").is_file():
            out[p] = [p / "bench.json"]
        elif p.is_dir() and not (p / "result.json").is_file():
            found = sorted(p.glob("*/bench.json"))
            if found:
                out[p] = found
    return out
