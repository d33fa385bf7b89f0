"""Build the self-contained HTML report (and its data file) from run directories.

The page embeds plotly.js once, inline, and every figure as JSON; nothing is fetched
at view time. The HTML and the data file beside it are written atomically.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.io as pio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from plotly.offline import get_plotlyjs

from . import figures as F
from .loader import (
    METRIC_BY_KEY,
    METRICS,
    ReportError,
    Run,
    load_lut,
    load_runs,
    load_validation,
    points_frame,
)
from .pareto import default_reference_point, hypervolume, non_dominated_mask

__all__ = [
    "build_report",
    "annotate_fronts",
    "hypervolume_table",
    "summary_sentences",
    "atomic_write_text",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"
#: Costs that get an accuracy-vs-cost Pareto figure, in display order.
PARETO_COSTS = ("latency_ms", "latency_pred_ms", "energy_mj", "memory_mib", "params_m", "macs_m")
#: Measured costs that take part in the N-objective front (with accuracy).
ND_COSTS = ("latency_ms", "energy_mj", "memory_mib", "params_m", "macs_m")
_TARGET_METRIC = {"latency": "latency_ms", "energy": "energy_mj", "memory": "memory_mib",
                  "params": "params_m", "macs": "macs_m"}  # fmt: skip
#: Scale from a target's (metric, unit) to the report's units (mJ, MiB, millions).
_TARGET_SCALE = {
    ("energy", "j"): 1e3, ("memory", "b"): 2.0**-20, ("memory", "bytes"): 2.0**-20,
    ("memory", "mb"): 1e6 / 2**20, ("params", ""): 1e-6, ("macs", ""): 1e-6,
}  # fmt: skip


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temp file in the same folder + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _group_keys(df: pd.DataFrame) -> pd.Series:
    """Front groups: one per (run, accuracy kind); references form their own group."""
    role = np.where(df["role"] == "reference", "reference", df["accuracy_kind"])
    return df["run"].astype(str) + "\x00" + pd.Series(role, index=df.index)


def annotate_fronts(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``df`` with boolean front columns added.

    ``front_<cost>`` is True when the point is non-dominated in (accuracy max, cost min)
    among its run's points of the same accuracy kind (references: among references);
    ``front_nd`` is the same over accuracy and every measured cost present.
    """
    out = df.copy()
    groups = _group_keys(out)
    nd_cols = [c for c in ND_COSTS if c in out and out[c].notna().any()]
    for cost in [*PARETO_COSTS, "nd"]:
        cols = ["accuracy", *nd_cols] if cost == "nd" else ["accuracy", cost]
        col = f"front_{cost}"
        out[col] = False
        if cost != "nd" and out[cost].isna().all():
            continue
        senses = ["max"] + [METRIC_BY_KEY[c].sense for c in cols[1:]]
        for _, idx in out.groupby(groups, sort=False).groups.items():
            pts = out.loc[idx, cols].to_numpy(dtype=float)
            out.loc[idx, col] = non_dominated_mask(pts, senses)
    return out


def hypervolume_table(df: pd.DataFrame, runs: list[Run]) -> tuple[list[dict], dict[str, Any]]:
    """Hypervolume of each run's (accuracy, cost) front, for every cost present.

    One reference point per cost, common to all runs (default_reference_point over every
    run's searched points, 10% beyond the worst). Only test-accuracy points count, unless
    a run has none (then its supernet estimates are used, and the row says so).
    Returns (rows ``{"run", "method", "kind", cells: {cost: hv}}``, refs ``{cost: (acc, c)}``);
    HV is in % x cost unit.
    """
    searched = df[(df["role"] != "reference") & df["accuracy"].notna()]
    costs = [c for c in PARETO_COSTS if searched[c].notna().any()]
    refs = {}
    for c in costs:
        pts = searched[["accuracy", c]].dropna().to_numpy(dtype=float)
        ref = default_reference_point(pts, ["max", METRIC_BY_KEY[c].sense])
        refs[c] = (float(ref[0]), float(ref[1]))
    rows = []
    for r in runs:
        g = searched[searched["run"] == r.label]
        kind = "test"
        if not (g["accuracy_kind"] == "test").any():
            kind = "supernet-val"
        else:
            g = g[g["accuracy_kind"] == "test"]
        cells = {}
        for c in costs:
            pts = g[["accuracy", c]].dropna().to_numpy(dtype=float)
            cells[c] = hypervolume(pts, refs[c], ["max", "min"]) if len(pts) else math.nan
        rows.append({"run": r.label, "method": r.method, "kind": kind, "cells": cells})
    return rows, refs


def _desc(row: pd.Series, costs: list[str]) -> str:
    parts = []
    for c in costs:
        v = row.get(c)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            parts.append(F.fmt_value(v, METRIC_BY_KEY[c].unit) + " " + _short(c))
    return ", ".join(parts)


def _short(key: str) -> str:
    return {"latency_ms": "latency", "latency_pred_ms": "predicted latency",
            "energy_mj": "per inference", "memory_mib": "peak memory", "params_m": "params",
            "macs_m": "MACs"}.get(key, key)  # fmt: skip


def _arch(row: pd.Series) -> str:
    role = " (reference)" if row["role"] == "reference" else ""
    return f"<b>{F._esc(row['name'])}</b>{role} from {F._esc(row['run'])} ({F._esc(row['method'])})"


def summary_sentences(df: pd.DataFrame, runs: list[Run]) -> list[str]:
    """One sentence (HTML) per constraint: the best architecture satisfying it.

    Constraints: none (most accurate), each run's cost target, and for every measured
    cost "at most half the cost of the most accurate architecture". Only test-accuracy
    points are considered, unless there are none (then estimates, said so).
    """
    pool = df[df["accuracy"].notna()]
    note = ""
    if (pool["accuracy_kind"] == "test").any():
        pool = pool[pool["accuracy_kind"] == "test"]
    elif not pool.empty:
        note = " (supernet accuracy estimate; nothing was trained)"
    if pool.empty:
        return ["No architecture in these runs has an accuracy yet, so nothing can be ranked."]
    costs = [c for c in ND_COSTS if pool[c].notna().any()]
    best = pool.sort_values(["accuracy", *costs], ascending=[False] + [True] * len(costs)).iloc[0]
    out = [
        f"Most accurate overall: {_arch(best)}, {F.fmt_value(best['accuracy'], '%')} top-1"
        f"{note}" + (f" at {_desc(best, costs)}." if costs else ".")
    ]
    seen_targets = set()
    for r in runs:
        t = r.target
        if not t:
            continue
        metric = str(t.get("metric", "latency"))
        key = _TARGET_METRIC.get(metric)
        if key is None or key not in pool:
            continue
        value = float(t["value"])
        scale = _TARGET_SCALE.get((metric, str(t.get("unit", "")).lower()), 1.0)
        limit = value * scale
        if (key, limit) in seen_targets:
            continue
        seen_targets.add((key, limit))
        unit = METRIC_BY_KEY[key].unit
        ok = pool[pool[key] <= limit]
        head = f"Under the {F.fmt_value(limit, unit)} {metric} target of {F._esc(r.label)}"
        if ok.empty:
            cheapest = pool.sort_values(key).iloc[0]
            out.append(f"{head}: nothing qualifies; the closest is {_arch(cheapest)} at "
                       f"{F.fmt_value(cheapest[key], unit)}.")
        else:
            b = ok.sort_values(["accuracy", key], ascending=[False, True]).iloc[0]
            out.append(f"{head}: {_arch(b)} reaches {F.fmt_value(b['accuracy'], '%')} at "
                       f"{F.fmt_value(b[key], unit)}.")
    for key in costs:
        if any(k == key for k, _ in seen_targets):
            continue
        m = METRIC_BY_KEY[key]
        if math.isnan(best[key]):
            continue
        limit = best[key] / 2
        ok = pool[pool[key] <= limit]
        head = (f"At half the {_short(key) if key != 'energy_mj' else 'energy'} of the most "
                f"accurate (≤ {F.fmt_value(limit, m.unit)})")
        if ok.empty:
            cheapest = pool.sort_values(key).iloc[0]
            out.append(f"{head}: nothing qualifies; the cheapest is {_arch(cheapest)} at "
                       f"{F.fmt_value(cheapest[key], m.unit)} with "
                       f"{F.fmt_value(cheapest['accuracy'], '%')}.")
        else:
            b = ok.sort_values(["accuracy", key], ascending=[False, True]).iloc[0]
            out.append(f"{head}: {_arch(b)} reaches {F.fmt_value(b['accuracy'], '%')} at "
                       f"{F.fmt_value(b[key], m.unit)}.")
    return out


def _fig_json(fig) -> str:
    """Figure as compact JSON, safe inside a <script> element."""
    return pio.to_json(fig, validate=False, pretty=False).replace("<", "\\u003c")


def _provenance(r: Run) -> dict[str, Any]:
    res = r.result
    dev = res.get("device") or {}
    lut = res.get("lut") or {}
    dur = res.get("durations_s") or {}
    cfg = dict(r.config)
    command = cfg.get("command") or res.get("command") or ""
    if isinstance(command, list):
        command = " ".join(map(str, command))
    return {
        "label": r.label, "method": r.method, "path": str(r.path),
        "objective": res.get("objective") or cfg.get("objective") or "",
        "dataset": res.get("dataset") or cfg.get("dataset") or "",
        "device": dev if isinstance(dev, dict) else {"name": str(dev)},
        "versions": res.get("versions") or {},
        "lut_path": lut.get("path") if isinstance(lut, dict) else None,
        "lut_sha256": lut.get("sha256") if isinstance(lut, dict) else None,
        "lut_provenance": lut.get("provenance") if isinstance(lut, dict) else None,
        "command": command, "config": json.dumps(cfg, indent=2, sort_keys=True, default=str),
        "started": res.get("started") or "", "finished": res.get("finished") or "",
        "durations": {k: F.fmt_value(v, "s") for k, v in dur.items()} if isinstance(dur, dict)
        else {},
        "target": r.target,
    }  # fmt: skip


def _run_card(r: Run, row: pd.Series | None) -> dict[str, Any]:
    d = r.derived
    t = r.target
    return {
        "label": r.label, "method": r.method,
        "derived": F._esc(d.get("name", "derived")) if d else None,
        "genotype_summary": (d or {}).get("genotype_summary") or "",
        "accuracy": F.fmt_value(row["accuracy"], "%") if row is not None else "n/a",
        "accuracy_kind": row["accuracy_kind"] if row is not None else "",
        "latency": F.fmt_value(row["latency_ms"], "ms") if row is not None else "n/a",
        "target": (f"{t.get('metric', '')} ≤ {F.fmt_value(t['value'], t.get('unit', ''))}"
                   if t else None),
        "target_met": t.get("met") if t else None,
        "n_points": len(r.candidates),
    }  # fmt: skip


def _default_title(runs: list[Run]) -> str:
    if len(runs) == 1:
        return f"nasbench report · {runs[0].label}"
    methods = ", ".join(dict.fromkeys(r.method for r in runs))
    return f"nasbench report · {len(runs)} runs ({methods})"


def build_report(
    run_dirs: list[Path],
    out: Path,
    lut: Path | None = None,
    validation: Path | None = None,
    title: str | None = None,
) -> Path:
    """Render one self-contained HTML report of ``run_dirs``; return the HTML path.

    ``out`` is the HTML file (a folder gets ``report.html`` inside it). Beside it goes
    ``<stem>.csv`` with every point (units in column names) and front flags. ``lut`` (a
    LUT JSON) adds the LUT heat map and table; ``validation`` (``{"points": [...]}``)
    adds LUT validation points to the predicted-vs-measured plot. Both files are written
    atomically. Raises :class:`ReportError` (one line) for missing or corrupt inputs.
    """
    t0 = time.perf_counter()
    runs = load_runs(list(run_dirs))
    out = Path(out)
    if out.is_dir() or out.suffix.lower() not in (".html", ".htm"):
        out = out / "report.html" if out.is_dir() or not out.suffix else out
    lut_data = load_lut(lut) if lut is not None else None
    val_data = load_validation(validation) if validation is not None else None

    colors = F.run_colors([r.label for r in runs])
    df = annotate_fronts(points_frame(runs))
    hover_json = json.dumps(F._hover_text(df), ensure_ascii=False).replace("<", "\\u003c")

    figures: list[dict[str, Any]] = []

    def add(section: str, fig, caption: str = "", wide: bool = False) -> None:
        if fig is not None:
            figures.append({"id": f"fig{len(figures)}", "section": section, "json": _fig_json(fig),
                            "caption": caption, "wide": wide, "height": fig.layout.height})

    n_no_acc = int(df["accuracy"].isna().sum())
    for key in PARETO_COSTS:
        m = METRIC_BY_KEY[key]
        targets = []
        metric = key.split("_")[0]
        for r in runs:
            t = r.target
            if t and str(t.get("metric")) == metric:
                scale = _TARGET_SCALE.get((metric, str(t.get("unit", "")).lower()), 1.0)
                targets.append((r.label, float(t["value"]) * scale))
        add("pareto", F.pareto_figure(df, m, colors, targets, shared_hover=True))

    hv_rows, hv_refs = hypervolume_table(df, runs)
    for r in runs:
        arch = F.architecture_figure(r.genotype, f"{r.label} · derived architecture")
        add(f"arch:{r.label}", arch, wide=True)
        add(f"arch:{r.label}", F.alpha_figure(r.history, f"{r.label} · architecture weights "
                                                      "per edge over epochs"), wide=True)
    add("training", F.curves_figure(runs, colors), wide=True)
    pvm, pvm_summary = F.pred_vs_measured_figure(df, colors, val_data)
    add("cost", pvm, wide=True)
    lut_table = F.lut_frame(lut_data) if lut_data else None
    if lut_table is not None:
        add("lut", F.lut_figure(lut_table, "Lookup table: per-op latency and its noise"),
            wide=True)

    # Table of notable architectures: derived, references and every front point.
    notable = df[(df["role"] != "visited") | df["front_nd"]].copy()
    notable = notable.sort_values(["run", "accuracy"], ascending=[True, False])
    show_cols = [m for m in METRICS if df[m.key].notna().any()]

    by_run = {r.label: df[(df["run"] == r.label) & (df["role"] == "derived")] for r in runs}
    cards = [_run_card(r, by_run[r.label].iloc[0] if not by_run[r.label].empty else None)
             for r in runs]
    devices = sorted({str((r.result.get("device") or {}).get("name") or "unknown device")
                      for r in runs})
    datasets = sorted({str(r.result.get("dataset") or r.config.get("dataset") or "?")
                       for r in runs})

    csv_path = out.with_suffix(".csv")
    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)),
                      autoescape=select_autoescape(["html"]))
    env.filters["fmt"] = F.fmt_value
    tpl = env.get_template("report.html")
    lut_rows = None
    if lut_table is not None and not lut_table.empty:
        lut_rows = lut_table.sort_values(["op", "median_ms"]).to_dict("records")
    html = tpl.render(
        title=title or _default_title(runs),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        runs=runs, cards=cards, colors=colors, devices=devices, datasets=datasets,
        summary=summary_sentences(df, runs),
        figures=figures, n_points=len(df), n_no_acc=n_no_acc,
        hv_rows=hv_rows, hv_refs=hv_refs, metric_by_key=METRIC_BY_KEY,
        short_titles=F._SHORT_TITLES,
        pvm_summary=pvm_summary, validation=val_data,
        notable=notable.to_dict("records"), show_cols=show_cols,
        lut=lut_data, lut_path=str(lut) if lut else None, lut_rows=lut_rows,
        provenance=[_provenance(r) for r in runs],
        csv_name=csv_path.name, plotly_js=get_plotlyjs(), hover_json=hover_json,
        build_s=f"{time.perf_counter() - t0:.2f}",
    )  # fmt: skip
    data = df.rename(columns={"accuracy": "accuracy_pct"})
    try:
        atomic_write_text(csv_path, data.to_csv(index=False, float_format="%.6g"))
        atomic_write_text(out, html)
    except OSError as exc:
        raise ReportError(f"cannot write report to {out}: {exc.strerror or exc}") from None
    return out
