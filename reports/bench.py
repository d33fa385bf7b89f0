"""Self-contained HTML report of NAS-Bench-201 bench result files (``bench.json``).

A bench file (schema: ``docs/bench-schema.md``) records one search method run over
several seeds against a ground-truth table, scored against the true accuracy/cost Pareto
front (accuracy % to maximise, cost to minimise). :func:`build_bench_report` renders one
page for one or more such files: a methods x devices summary table, the found vs true
fronts, anytime hypervolume-gap curves, and per-seed tables; beside the page goes a CSV
with one row per (file, seed) run. Like the run report, the page embeds plotly.js once
and every figure as JSON; nothing is fetched at view time.

Summary statistics are computed from the per-seed records (not from the file's
``aggregate``): mean and population standard deviation (ddof 0) over the seeds whose
value is finite; a regret is NaN when the chosen cell missed the target.

Loading and statistics live in :mod:`reports.bench_data`, the figures in
:mod:`reports.bench_figures`; this module builds the tables and the page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from jinja2 import Environment, FileSystemLoader, select_autoescape
from plotly.offline import get_plotlyjs

from .bench_data import (
    BENCH_KIND,
    align_anytime,
    bench_metric,
    bench_unit,
    device_label,
    load_bench,
    mean_std,
    median_run,
)
from .bench_figures import FLOOR_COLOR, anytime_figure, front_figure
from .format import DASH, fmt_mean_std, fmt_or_dash
from .html import TEMPLATE_DIR, fig_json, write_report
from .loader import ReportError, _num
from .style import run_colors

# load_bench, align_anytime, mean_std, median_run (reports.bench_data) and front_figure,
# anytime_figure (reports.bench_figures) stay importable from here.
__all__ = [
    "BENCH_KIND",
    "CSV_COLUMNS",
    "load_bench",
    "build_bench_report",
    "align_anytime",
    "mean_std",
    "median_run",
    "runs_frame",
]

#: Columns of the CSV written beside the report (one row per (file, seed) run).
CSV_COLUMNS = (
    "method", "device", "metric", "unit", "target", "seed", "index", "arch", "accuracy_pct",
    "cost", "met", "regret_pp", "hv_gap", "igd", "queries", "wall_s",
)  # fmt: skip


def _target_text(b: dict[str, Any]) -> str:
    t = _num(b.get("target"))
    return "" if math.isnan(t) else f"{bench_metric(b)} ≤ {fmt_or_dash(t, bench_unit(b))}"


def _method_text(b: dict[str, Any]) -> str:
    """Returns the method of a bench, with what it saw when not the table (``zc``)."""
    ev = (b.get("settings") or {}).get("evaluate") or "table"
    return str(b["method"]) if ev == "table" else f"{b['method']} ({ev})"


def _row_label(b: dict[str, Any]) -> str:
    t = _target_text(b)
    return f"{_method_text(b)} · {t}" if t else _method_text(b)


# --------------------------------------------------------------------------- tables


def runs_frame(benches: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (file, seed) run with the columns :data:`CSV_COLUMNS` (units: accuracy
    in %, cost in ``unit``, regret in percentage points; NaN/None where absent)."""
    rows = []
    for b in benches:
        for r in b["runs"]:
            met = r.get("met")
            rows.append({
                "method": b["method"], "device": b["device"], "metric": bench_metric(b),
                "unit": bench_unit(b), "target": _num(b.get("target")), "seed": r.get("seed"),
                "index": r.get("index"), "arch": r.get("arch"),
                "accuracy_pct": _num(r.get("accuracy")), "cost": _num(r.get("cost")),
                "met": met if isinstance(met, bool) else None,
                "regret_pp": _num(r.get("regret")), "hv_gap": _num(r.get("hv_gap")),
                "igd": _num(r.get("igd")), "queries": r.get("queries"),
                "wall_s": _num(r.get("wall_s")),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def _stats(b: dict[str, Any]) -> dict[str, tuple[float, float, int]]:
    runs = b["runs"]
    return {k: mean_std(r.get(k) for r in runs)
            for k in ("regret", "hv_gap", "igd", "accuracy", "cost", "wall_s", "queries")}


def _column_keys(benches: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """Return one (device, metric) key per bench; metric is "" unless a device has several."""
    metrics: dict[str, set[str]] = {}
    for b in benches:
        metrics.setdefault(b["device"], set()).add(bench_metric(b))
    return [(b["device"], bench_metric(b) if len(metrics[b["device"]]) > 1 else "")
            for b in benches]


def _summary_table(benches, labels, colkeys, colors) -> dict[str, Any]:
    columns: dict[tuple[str, str], dict[str, Any]] = {}
    for b, ck in zip(benches, colkeys, strict=True):
        if ck not in columns:
            sub = b["device"] + (f" · {ck[1]}" if ck[1] else "")
            columns[ck] = {"key": ck, "label": device_label(b), "sub": sub,
                           "unit": bench_unit(b), "metric": bench_metric(b)}
    rows: dict[str, dict[str, Any]] = {}
    floors: dict[str, dict[str, Any]] = {}
    for b, label, ck in zip(benches, labels, colkeys, strict=True):
        st = _stats(b)
        runs = b["runs"]
        n_met = sum(1 for r in runs if r.get("met") is True)
        cell = {
            "regret_mean": st["regret"][0],
            "regret": fmt_mean_std(st["regret"][0], st["regret"][1], "pp"),
            "hv_gap": fmt_mean_std(st["hv_gap"][0], st["hv_gap"][1]),
            "igd": fmt_or_dash(st["igd"][0]),
            "accuracy": fmt_mean_std(st["accuracy"][0], st["accuracy"][1], "%"),
            "n": len(runs), "met": f"{n_met}/{len(runs)}" if b.get("target") is not None else "",
            "best": False,
        }
        row = rows.setdefault(label, {"label": label, "color": colors[label], "floor": False,
                                      "method": b["method"], "target": _target_text(b),
                                      "cells": {}})
        key = ck
        while key in row["cells"]:  # the same (method, target, device) twice: keep both
            key = (*key, "+")
            columns.setdefault(key, {**columns[ck], "sub": columns[ck]["sub"] + " (again)"})
        row["cells"][key] = cell
        fl = b.get("floor") or {}
        if fl:
            flabel = "signal floor" + (f" · {_target_text(b)}" if _target_text(b) else "")
            # a floor is the table signal's: one per target, whatever the search saw
            frow = floors.setdefault(flabel, {"label": flabel, "color": FLOOR_COLOR,
                                              "floor": True, "what": fl.get("what") or "",
                                              "cells": {}})
            frow["cells"].setdefault(ck, {
                "regret_mean": _num(fl.get("regret")),
                "regret": fmt_or_dash(fl.get("regret"), "pp"),
                "hv_gap": fmt_or_dash(fl.get("hv_gap")), "igd": fmt_or_dash(fl.get("igd")),
                "accuracy": fmt_or_dash(fl.get("accuracy"), "%"),
                "n": None, "met": "", "best": False,
            })  # fmt: skip
    for key in columns:
        cells = [r["cells"][key] for r in rows.values() if key in r["cells"]]
        finite = [c["regret_mean"] for c in cells if math.isfinite(c["regret_mean"])]
        if finite:
            best = min(finite)
            for c in cells:
                c["best"] = c["regret_mean"] == best
    return {"columns": list(columns.values()), "rows": [*rows.values(), *floors.values()]}


def _seed_rows(b: dict[str, Any]) -> list[dict[str, Any]]:
    unit = bench_unit(b)
    out = []
    for r in b["runs"]:
        met = r.get("met")
        out.append({
            "seed": r.get("seed", DASH), "arch": r.get("arch") or DASH,
            "index": r.get("index") if r.get("index") is not None else DASH,
            "accuracy": fmt_or_dash(r.get("accuracy"), "%"),
            "val_accuracy": fmt_or_dash(r.get("val_accuracy"), "%"),
            "cost": fmt_or_dash(r.get("cost"), unit), "met": met if isinstance(met, bool) else None,
            "regret": fmt_or_dash(r.get("regret"), "pp"),
            "hv_gap": fmt_or_dash(r.get("hv_gap")), "igd": fmt_or_dash(r.get("igd")),
            "front_found": r.get("front_found") if r.get("front_found") is not None else DASH,
            "queries": fmt_or_dash(r.get("queries")),
            "cache_hits": fmt_or_dash(r.get("cache_hits")),
            "wall_s": fmt_or_dash(r.get("wall_s"), "s"),
        })  # fmt: skip
    return out


def _regret_at_rows(b: dict[str, Any]) -> list[dict[str, Any]]:
    """Per extra target: regret mean ± std over seeds (and the floor's), by target value."""
    values: dict[float, list[Any]] = {}
    for t in b.get("targets") or []:
        values.setdefault(round(float(t), 9), [])
    for r in b["runs"]:
        for k, v in (r.get("regret_at") or {}).items():
            t = _num(k)
            if not math.isnan(t):
                values.setdefault(round(t, 9), []).append(v)
    floor_at = {round(_num(k), 9): v for k, v in ((b.get("floor") or {}).get("regret_at")
                                                    or {}).items() if not math.isnan(_num(k))}
    rows = []
    for t in sorted(values):
        m, s, n = mean_std(values[t])
        rows.append({"target": fmt_or_dash(t, bench_unit(b)), "regret": fmt_mean_std(m, s, "pp"),
                     "n": f"{n}/{len(b['runs'])}", "floor": fmt_or_dash(floor_at.get(t), "pp")})
    return rows


def _file_info(b: dict[str, Any], label: str, color: str) -> dict[str, Any]:
    budget = b.get("budget") or {}
    ref = b.get("reference_point")
    cr = b.get("cost_range")
    unit = bench_unit(b)
    pair = lambda v, u0, u1: (f"{fmt_or_dash(v[0], u0)}, {fmt_or_dash(v[1], u1)}"  # noqa: E731
                              if isinstance(v, list) and len(v) == 2 else DASH)
    sig = b.get("signal") or {}
    return {
        "label": label, "color": color, "method": b["method"], "path": b.get("_path", ""),
        "device": device_label(b), "device_id": b["device"],
        "target": f"target {_target_text(b)}" if _target_text(b) else "no target",
        "info": [
            ("space / dataset", f"{b.get('space') or DASH} / {b.get('dataset') or DASH}"),
            ("objective", f"{b.get('objective') or DASH} ({bench_metric(b)}, {unit or 'no unit'})"),
            ("budget", ", ".join(f"{k} {v}" for k, v in budget.items()) or DASH),
            ("seeds", ", ".join(str(s) for s in b.get("seeds") or
                                [r.get("seed") for r in b["runs"]]) or DASH),
            ("search signal", sig.get("search") or DASH),
            ("reported", sig.get("reported") or DASH),
            ("cost source", b.get("cost_source") or DASH),
            ("HV reference (acc, cost)", pair(ref, "%", unit)),
            ("cost range", pair(cr, unit, unit)),
            ("floor", (b.get("floor") or {}).get("what") or DASH),
            ("started / finished", f"{b.get('started') or '?'} → {b.get('finished') or '?'}"),
            ("wall time", fmt_or_dash(b.get("wall_s"), "s")),
        ],
        "seeds": _seed_rows(b), "regret_at": _regret_at_rows(b),
    }  # fmt: skip


# --------------------------------------------------------------------------- report


def _default_title(benches: Sequence[dict[str, Any]]) -> str:
    methods = ", ".join(dict.fromkeys(str(b["method"]) for b in benches))
    devices = ", ".join(dict.fromkeys(device_label(b) for b in benches))
    return f"NAS-Bench-201 bench: {methods} on {devices}"


def _signals(benches, labels) -> list[dict[str, Any]]:
    out: dict[tuple[str, str], list[str]] = {}
    for b, label in zip(benches, labels, strict=True):
        s = b.get("signal") or {}
        key = (str(s.get("search") or "not recorded"), str(s.get("reported") or "not recorded"))
        out.setdefault(key, []).append(label)
    return [{"search": k[0], "reported": k[1], "labels": list(dict.fromkeys(v))}
            for k, v in out.items()]


def build_bench_report(
    paths: list[Path | str], out: Path | str, title: str | None = None
) -> Path:
    """Render one self-contained HTML report of the bench files ``paths``; return its path.

    Each path is a ``bench.json`` or a folder holding one. ``out`` is the HTML file (a
    folder, or a path without suffix, gets ``bench-report.html`` inside it). Beside it
    goes ``<stem>.csv`` with one row per (file, seed) run (:data:`CSV_COLUMNS`). Both are
    written atomically. Raises :class:`ReportError` (one line) for missing or corrupt
    inputs, or when the report cannot be written.
    """
    t0 = time.perf_counter()
    if not paths:
        raise ReportError("no bench files given")
    benches = [load_bench(p) for p in paths]
    out = Path(out)
    if out.is_dir() or not out.suffix:
        out = out / "bench-report.html"
    csv_path = out.with_suffix(".csv")

    labels = [_row_label(b) for b in benches]
    colors = run_colors(list(dict.fromkeys(labels)))
    colkeys = _column_keys(benches)
    table = _summary_table(benches, labels, colkeys, colors)

    figures: list[dict[str, Any]] = []
    anytime_skipped: list[str] = []

    def add(section: str, fig: go.Figure | None, caption: str = "") -> None:
        if fig is not None:
            figures.append({"id": f"fig{len(figures)}", "section": section,
                            "json": fig_json(fig), "caption": caption,
                            "height": fig.layout.height})

    groups: dict[tuple[str, str], list[int]] = {}
    for i, ck in enumerate(colkeys):
        groups.setdefault(ck, []).append(i)
    for ck, idx in groups.items():
        bs, ls = [benches[i] for i in idx], [labels[i] for i in idx]
        name = device_label(bs[0]) + (f" · {ck[1]}" if ck[1] else "")
        reported = (bs[0].get("signal") or {}).get("reported") or "accuracy"
        add("front", front_figure(bs, ls, colors, f"{name}: found vs true front"),
            f"y: {reported}. Faint markers: every seed's found front; line: the median-regret "
            "seed's found front; stars: the cell each seed chose.")
        fig, skipped = anytime_figure(bs, ls, colors, f"{name}: HV gap vs queries")
        anytime_skipped += skipped
        add("anytime", fig, "Mean over seeds (line) and ±1 std (band); curves of different "
            "lengths are aligned on the union of query counts, carrying each seed's last "
            "value forward.")

    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)),
                      autoescape=select_autoescape(["html"]))
    tpl = env.get_template("bench.html")
    n_runs = sum(len(b["runs"]) for b in benches)
    html = tpl.render(
        title=title or _default_title(benches),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        n_files=len(benches), n_runs=n_runs,
        datasets=list(dict.fromkeys(str(b.get("dataset") or "?") for b in benches)),
        signals=_signals(benches, labels),
        cost_sources=list(dict.fromkeys(str(b.get("cost_source") or "not recorded")
                                        for b in benches)),
        table=table, figures=figures, anytime_skipped=list(dict.fromkeys(anytime_skipped)),
        files=[_file_info(b, lab, colors[lab]) for b, lab in zip(benches, labels, strict=True)],
        csv_name=csv_path.name, plotly_js=get_plotlyjs(),
        build_s=f"{time.perf_counter() - t0:.2f}",
    )  # fmt: skip
    return write_report(out, html, csv_path, runs_frame(benches))
