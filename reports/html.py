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

from .cells import architecture_figure
from .costs import lut_figure, lut_frame, pred_vs_measured_figure
from .format import esc, fmt_value, is_finite
from .history import alpha_figure, curves_figure
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
from .points import chance_text, hover_text, is_at_chance, left_out, left_out_note
from .scatter import SHORT_TITLES, pareto_figure
from .style import run_colors

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
            parts.append(fmt_value(v, METRIC_BY_KEY[c].unit) + " " + _short(c))
    return ", ".join(parts)


def _short(key: str) -> str:
    return {"latency_ms": "latency", "latency_pred_ms": "predicted latency",
            "energy_mj": "per inference", "memory_mib": "peak memory", "params_m": "params",
            "macs_m": "MACs"}.get(key, key)  # fmt: skip


def _arch(row: pd.Series) -> str:
    role = " (reference)" if row["role"] == "reference" else ""
    return f"<b>{esc(row['name'])}</b>{role} from {esc(row['run'])} ({esc(row['method'])})"


CHANCE_BADGE = ('<span class="badge chance" title="{title}">≈ chance</span>')


def chance_badge(row: Any) -> str:
    """The small "≈ chance" badge (HTML) of a point whose 95 % accuracy interval
    includes chance; ``""`` for any other point (or one without an interval)."""
    text = chance_text(row)
    return CHANCE_BADGE.format(title=esc(text[0].upper() + text[1:])) if text else ""


def _ci_range(row: Any) -> str:
    lo, hi = row.get("accuracy_lo", math.nan), row.get("accuracy_hi", math.nan)
    if not (is_finite(lo) and is_finite(hi)):
        return ""
    return f"{lo:.1f}–{hi:.1f}%"


def _acc(row: pd.Series) -> str:
    """The accuracy with its 95 % interval where known: ``10.3% (95% CI 7.4–14.2%)``."""
    ci = _ci_range(row)
    return fmt_value(row["accuracy"], "%") + (f" (95% CI {ci})" if ci else "")


def overlaps(a: Any, b: Any) -> bool | None:
    """Whether two points' 95 % accuracy intervals overlap (they are not separable on
    their test split); None when either has no interval."""
    alo, ahi = a.get("accuracy_lo", math.nan), a.get("accuracy_hi", math.nan)
    blo, bhi = b.get("accuracy_lo", math.nan), b.get("accuracy_hi", math.nan)
    if not all(is_finite(v) for v in (alo, ahi, blo, bhi)):
        return None
    return bool(alo <= bhi and blo <= ahi)


def _verdict(ranked: pd.DataFrame) -> str:
    """A clause for the winner ``ranked.iloc[0]`` (ranked best first) when its accuracy
    interval overlaps the runner-up's; ``""`` otherwise. The runner-up is the next row
    that is not the same reference network again (trained in another run)."""
    best = ranked.iloc[0]
    rest = ranked.iloc[1:]
    if best["role"] == "reference":
        rest = rest[~((rest["role"] == "reference") & (rest["name"] == best["name"]))]
    if rest.empty:
        return ""
    second = rest.iloc[0]
    if not overlaps(best, second):
        return ""
    where = f" from {esc(second['run'])}" if ranked["run"].nunique() > 1 else ""
    return (f", but its accuracy interval overlaps the runner-up's "
            f"({esc(second['name'])}{where} at {fmt_value(second['accuracy'], '%')}, "
            f"95% CI {_ci_range(second)}): not separable on this test split")


def summary_sentences(df: pd.DataFrame, runs: list[Run]) -> list[str]:
    """One sentence (HTML) per constraint: the best architecture satisfying it.

    Constraints: none (most accurate), each run's cost target, and for every measured
    cost "at most half the cost of the most accurate architecture". Only test-accuracy
    points are considered, unless there are none (then estimates, said so).

    Accuracies carry their 95 % interval where the run recorded one. A winner whose
    interval overlaps the runner-up's (the next most accurate under the same constraint)
    is said to be not separable from it, and a winner whose interval includes chance
    gets a "≈ chance" badge; when every ranked accuracy includes chance, a first sentence
    says so.
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
    ranked = pool.sort_values(["accuracy", *costs], ascending=[False] + [True] * len(costs))
    best = ranked.iloc[0]
    out = []
    if "at_chance" in pool and all(is_at_chance(v) for v in pool["at_chance"]):
        chances = sorted({fmt_value(c, "%") for c in pool["chance"] if is_finite(c)})
        out.append(f"{chance_badge(best)} Every accuracy below is within its 95% interval of "
                   f"chance ({', '.join(chances) or 'guessing'}): on this test split no "
                   "architecture is shown to beat guessing, so the rankings are not evidence "
                   "that one is better than another.")
    out.append(
        f"Most accurate overall: {_arch(best)}, {_acc(best)} top-1"
        f"{note}" + (f" at {_desc(best, costs)}" if costs else "") + _verdict(ranked) + "."
        + (f" {chance_badge(best)}" if chance_badge(best) else "")
    )
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
        head = f"Under the {fmt_value(limit, unit)} {metric} target of {esc(r.label)}"
        if ok.empty:
            cheapest = pool.sort_values(key).iloc[0]
            out.append(f"{head}: nothing qualifies; the closest is {_arch(cheapest)} at "
                       f"{fmt_value(cheapest[key], unit)}.")
        else:
            rk = ok.sort_values(["accuracy", key], ascending=[False, True])
            b = rk.iloc[0]
            out.append(f"{head}: {_arch(b)} reaches {_acc(b)} at "
                       f"{fmt_value(b[key], unit)}{_verdict(rk)}."
                       + (f" {chance_badge(b)}" if chance_badge(b) else ""))
    for key in costs:
        if any(k == key for k, _ in seen_targets):
            continue
        m = METRIC_BY_KEY[key]
        if math.isnan(best[key]):
            continue
        limit = best[key] / 2
        ok = pool[pool[key] <= limit]
        head = (f"At half the {_short(key) if key != 'energy_mj' else 'energy'} of the most "
                f"accurate (≤ {fmt_value(limit, m.unit)})")
        if ok.empty:
            cheapest = pool.sort_values(key).iloc[0]
            out.append(f"{head}: nothing qualifies; the cheapest is {_arch(cheapest)} at "
                       f"{fmt_value(cheapest[key], m.unit)} with {_acc(cheapest)}."
                       + (f" {chance_badge(cheapest)}" if chance_badge(cheapest) else ""))
        else:
            rk = ok.sort_values(["accuracy", key], ascending=[False, True])
            b = rk.iloc[0]
            out.append(f"{head}: {_arch(b)} reaches {_acc(b)} at "
                       f"{fmt_value(b[key], m.unit)}{_verdict(rk)}."
                       + (f" {chance_badge(b)}" if chance_badge(b) else ""))
    return out


def pvm_caption(summary: list[dict[str, Any]]) -> str:
    """Caption of the predicted-vs-measured figure: why an upper bound (peak memory) has
    no ±10% share, and which measured points have no prediction (so are not drawn)."""
    parts = []
    for s in summary:
        if s.get("upper_bound"):
            parts.append(
                f"{s['cost']} is left out of the within-±10% shares: the LUT's figure is a sum "
                "of each operation's own peak, an upper bound on the network's peak (which "
                "holds only the operations alive at one time), not an estimate of it; the "
                f"bound holds for {fmt_value(100 * s['bound_holds'], '%')} of {s['n']}.")
    missing: dict[tuple[str, str], list[str]] = {}  # (name, reason) -> costs
    for s in summary:
        for it in s.get("left_out") or []:
            missing.setdefault((it["name"], it["reason"]), []).append(s["cost"].lower())
    by_costs: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for (name, reason), costs in missing.items():
        by_costs.setdefault(tuple(costs), []).append({"name": name, "reason": reason})
    for costs, items in by_costs.items():
        parts.append(left_out_note(items, f"{' and '.join(costs)} measured, no LUT "
                                          "prediction"))
    return " ".join(parts)


def fig_json(fig) -> str:
    """Return the figure as compact JSON, safe inside a <script> element (both pages)."""
    return pio.to_json(fig, validate=False, pretty=False).replace("<", "\\u003c")


#: ``nasbench search`` options of a resolved config: (config key, flag). Methods' own
#: options only go with their method (the CLI refuses them for another).
_COMMON_FLAGS = (
    ("method", "--method"), ("space", "--space"), ("objective", "--objective"),
    ("preset", "--preset"), ("dataset", "--dataset"), ("data_dir", "--data-dir"),
    ("device", "--device"), ("lut", "--lut"), ("epochs", "--epochs"),
    ("steps_per_epoch", "--steps-per-epoch"), ("batch_size", "--batch-size"),
    ("train_epochs", "--train-epochs"), ("input_size", "--input"), ("deploy_batch", "--batch"),
    ("seed", "--seed"), ("threads", "--threads"), ("references", "--references"),
    ("benchmark_dir", "--benchmark-dir"), ("out", "--out"),
)  # fmt: skip
_METHOD_FLAGS = {
    "darts": (("cost_weight", "--cost-weight"), ("channels", "--channels"),
              ("layers", "--layers"), ("eval_channels", "--eval-channels"),
              ("eval_layers", "--eval-layers")),
    "proxyless": (("latency_loss", "--latency-loss"), ("grad_estimator", "--grad-estimator"),
                  ("space_config", "--space-config"), ("width_mult", "--width-mult"),
                  ("warmup_epochs", "--warmup-epochs")),
    "trials": (("trials", "--trials"), ("evaluate", "--evaluate"), ("fidelity", "--fidelity"),
               ("population", "--population"), ("sample_size", "--sample-size"),
               ("startup", "--startup"), ("pool", "--pool"), ("pruner", "--pruner")),
}  # fmt: skip
_TRIAL_METHODS = {"random", "evolution", "tpe", "nsga2", "bo", "mobo", "pnas"}


def equivalent_command(cfg: dict[str, Any], res: dict[str, Any] | None = None) -> str:
    """A ``nasbench search`` command line that asks for the resolved config ``cfg``
    (config.json, or result.json's ``config``); ``res`` (result.json) fills in the
    method, objective and dataset when ``cfg`` lacks them. Settings that have no option
    come from the preset."""
    import shlex

    res = res or {}
    cfg = {**{k: res.get(k) for k in ("method", "objective", "dataset")}, **cfg}
    method = str(cfg.get("method") or "darts")
    group = ("trials" if method in _TRIAL_METHODS else
             "proxyless" if method == "proxyless" else "darts")  # fmt: skip
    parts = ["nasbench", "search"]
    for key, flag in (*_COMMON_FLAGS, *_METHOD_FLAGS[group]):
        v = cfg.get(key)
        if key == "steps_per_epoch" and key in cfg and v is None:
            v = 0  # the whole split
        if v is None or v is False or v == "" or (key == "pruner" and v == "none"):
            continue
        parts += [flag] if v is True else [flag, shlex.quote(str(v))]
    if group == "darts" and cfg.get("order") not in (None, "first"):
        parts += ["--order", shlex.quote(str(cfg["order"]))]
    target = cfg.get("latency_target_ms")
    if target is not None:
        parts += ["--latency-target", f"{target:g}ms" if isinstance(target, (int, float))
                  else shlex.quote(str(target))]
        if cfg.get("hard_target") is False:
            parts.append("--soft-target")
    if cfg.get("download") is True:
        parts.append("--download")
    return " ".join(parts)


def _command(r: Run) -> tuple[str, str, str]:
    """(label, command, note) for the provenance: the recorded command, else one
    reconstructed from the resolved config (never nothing)."""
    res = r.result
    cfg = r.config or (res.get("config") if isinstance(res.get("config"), dict) else {})
    command = cfg.get("command") or res.get("command") or ""
    if isinstance(command, list):
        command = " ".join(map(str, command))
    if command:
        return "command", str(command), ""
    src = ("config.json" if r.config else "result.json's config" if cfg
           else "result.json (no config recorded)")
    return ("equivalent command", equivalent_command(cfg, res),
            f"not recorded by the run; reconstructed from {src}, other settings from "
            "the preset")


def _provenance(r: Run) -> dict[str, Any]:
    res = r.result
    dev = res.get("device") or {}
    lut = res.get("lut") or {}
    dur = res.get("durations_s") or {}
    cfg = dict(r.config or (res.get("config") if isinstance(res.get("config"), dict) else {}))
    command_label, command, command_note = _command(r)
    return {
        "label": r.label, "method": r.method, "path": str(r.path),
        "objective": res.get("objective") or cfg.get("objective") or "",
        "dataset": res.get("dataset") or cfg.get("dataset") or "",
        "device": dev if isinstance(dev, dict) else {"name": str(dev)},
        "versions": res.get("versions") or {},
        "lut_path": lut.get("path") if isinstance(lut, dict) else None,
        "lut_sha256": lut.get("sha256") if isinstance(lut, dict) else None,
        "lut_provenance": lut.get("provenance") if isinstance(lut, dict) else None,
        "warnings": list(res.get("warnings") or []),
        "command": command, "command_label": command_label, "command_note": command_note,
        "config": json.dumps(cfg, indent=2, sort_keys=True, default=str),
        "started": res.get("started") or "", "finished": res.get("finished") or "",
        "durations": {k: fmt_value(v, "s") for k, v in dur.items()} if isinstance(dur, dict)
        else {},
        "target": r.target,
    }  # fmt: skip


def _run_card(r: Run, row: pd.Series | None) -> dict[str, Any]:
    d = r.derived
    t = r.target
    return {
        "label": r.label, "method": r.method,
        "derived": esc(d.get("name", "derived")) if d else None,
        "genotype_summary": (d or {}).get("genotype_summary") or "",
        "accuracy": fmt_value(row["accuracy"], "%") if row is not None else "n/a",
        "accuracy_kind": row["accuracy_kind"] if row is not None else "",
        "accuracy_ci": _ci_range(row) if row is not None else "",
        "chance": chance_badge(row) if row is not None else "",
        "latency": fmt_value(row["latency_ms"], "ms") if row is not None else "n/a",
        "target": (f"{t.get('metric', '')} ≤ {fmt_value(t['value'], t.get('unit', ''))}"
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

    colors = run_colors([r.label for r in runs])
    df = annotate_fronts(points_frame(runs))
    hover_json = json.dumps(hover_text(df), ensure_ascii=False).replace("<", "\\u003c")

    figures: list[dict[str, Any]] = []

    def add(section: str, fig, caption: str = "", wide: bool = False) -> None:
        if fig is not None:
            figures.append({"id": f"fig{len(figures)}", "section": section, "json": fig_json(fig),
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
        caption = left_out_note(left_out(df, key)) if m.estimate else ""
        add("pareto", pareto_figure(df, m, colors, targets, shared_hover=True), caption)

    hv_rows, hv_refs = hypervolume_table(df, runs)
    for r in runs:
        arch = architecture_figure(r.genotype, f"{r.label} · derived architecture")
        add(f"arch:{r.label}", arch, wide=True)
        add(f"arch:{r.label}", alpha_figure(r.history, f"{r.label} · architecture weights "
                                                    "per edge over epochs"), wide=True)
    add("training", curves_figure(runs, colors), wide=True)
    pvm, pvm_summary = pred_vs_measured_figure(df, colors, val_data)
    add("cost", pvm, pvm_caption(pvm_summary), wide=True)
    lut_table = lut_frame(lut_data) if lut_data else None
    if lut_table is not None:
        add("lut", lut_figure(lut_table, "Lookup table: per-op latency and its noise"),
            wide=True)

    # Table of notable architectures: derived, references and every front point.
    notable = df[(df["role"] != "visited") | df["front_nd"]].copy()
    notable = notable.sort_values(["run", "accuracy"], ascending=[True, False])
    notable_rows = notable.to_dict("records")
    for p in notable_rows:
        p["chance_badge"] = chance_badge(p)
        p["ci_range"] = _ci_range(p)
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
    env.filters["fmt"] = fmt_value
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
        short_titles=SHORT_TITLES,
        pvm_summary=pvm_summary, validation=val_data,
        notable=notable_rows, show_cols=show_cols,
        has_ci=bool(df["accuracy_lo"].notna().any()),
        lut=lut_data, lut_path=str(lut) if lut else None, lut_rows=lut_rows,
        provenance=[_provenance(r) for r in runs],
        csv_name=csv_path.name, plotly_js=get_plotlyjs(), hover_json=hover_json,
        build_s=f"{time.perf_counter() - t0:.2f}",
    )  # fmt: skip
    data = df.rename(columns={"accuracy": "accuracy_pct", "accuracy_lo": "accuracy_lo_pct",
                              "accuracy_hi": "accuracy_hi_pct", "chance": "chance_pct"})
    return write_report(out, html, csv_path, data)


def write_report(out: Path, html: str, csv_path: Path, frame) -> Path:
    """Writes a report's HTML and its CSV (every point) atomically; returns the HTML
    path; raises ReportError (one line) when they cannot be written."""
    try:
        atomic_write_text(csv_path, frame.to_csv(index=False, float_format="%.6g"))
        atomic_write_text(out, html)
    except OSError as exc:
        raise ReportError(f"cannot write report to {out}: {exc.strerror or exc}") from None
    return out
