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
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from plotly.offline import get_plotlyjs

from . import figures as F
from .html import write_report
from .loader import ReportError, _read_json
from .pareto import non_dominated_mask

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

BENCH_KIND = "nasbench-bench"
BENCH_VERSION = 1
TEMPLATE_DIR = Path(__file__).parent / "templates"
#: Columns of the CSV written beside the report (one row per (file, seed) run).
CSV_COLUMNS = (
    "method", "device", "metric", "unit", "target", "seed", "index", "arch", "accuracy_pct",
    "cost", "met", "regret_pp", "hv_gap", "igd", "queries", "wall_s",
)  # fmt: skip
#: A method whose aligned anytime curve has fewer query counts than this is not drawn.
MIN_ANYTIME_POINTS = 2
DASH = "—"
FLOOR_COLOR = "#6b7785"
TRUE_COLOR = "#1f242b"
SENSES = ("max", "min")  # (accuracy, cost)


# --------------------------------------------------------------------------- loading


def _bench_file(path: Path | str) -> Path:
    p = Path(path)
    return p / "bench.json" if p.is_dir() else p


def load_bench(path: Path | str) -> dict[str, Any]:
    """Read and check one bench file (a ``bench.json``, or a folder holding one).

    Returns the file's JSON object with ``"_path"`` (the file read, as a string) added.
    Raises :class:`ReportError` with a one-line message naming the file when it is
    missing, unreadable, not JSON, not a bench file (``kind`` other than
    ``"nasbench-bench"``), of another version, or has fields of the wrong shape.
    """
    p = _bench_file(path)
    if not p.is_file():
        where = f"{path} has no bench.json" if Path(path).is_dir() else f"{p} is missing"
        raise ReportError(f"bench: {where}")
    data = _read_json(p, "bench", True)
    if not isinstance(data, dict):
        raise ReportError(f"bench: {p} must hold a JSON object")
    kind = data.get("kind")
    if kind != BENCH_KIND:
        raise ReportError(f"bench: {p} is not a bench result file "
                          f"(kind {kind!r}, expected {BENCH_KIND!r})")
    version = data.get("version", BENCH_VERSION)
    if version != BENCH_VERSION:
        raise ReportError(f"bench: {p} has version {version!r}; this report reads version "
                          f"{BENCH_VERSION}")
    _check(data, p)
    data["_path"] = str(p)
    return data


def _check(d: dict[str, Any], p: Path) -> None:
    def bad(msg: str) -> ReportError:
        return ReportError(f"bench: {p}: {msg}")

    for key in ("method", "device"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise bad(f"{key!r} must be a non-empty string")
    if not _is_list_of_dicts(d.get("runs")):
        raise bad("'runs' must be a list of objects")
    for key in ("true_front",):
        if d.get(key) is not None and not _is_list_of_dicts(d[key]):
            raise bad(f"{key!r} must be a list of objects")
    for key in ("floor", "signal", "aggregate", "budget"):
        if d.get(key) is not None and not isinstance(d[key], dict):
            raise bad(f"{key!r} must be an object")
    if d.get("target") is not None and not _is_number(d["target"]):
        raise bad("'target' must be a number or null")
    if d.get("targets") is not None and (
        not isinstance(d["targets"], list) or not all(_is_number(t) for t in d["targets"])
    ):
        raise bad("'targets' must be a list of numbers")
    floor = d.get("floor") or {}
    if floor.get("found_front") is not None and not _is_list_of_dicts(floor["found_front"]):
        raise bad("'floor.found_front' must be a list of objects")
    for i, r in enumerate(d["runs"]):
        where = f"runs[{i}]"
        if r.get("found_front") is not None and not _is_list_of_dicts(r["found_front"]):
            raise bad(f"{where}.found_front must be a list of objects")
        if r.get("regret_at") is not None and not isinstance(r["regret_at"], dict):
            raise bad(f"{where}.regret_at must be an object")
        a = r.get("anytime")
        if a is None:
            continue
        if not isinstance(a, dict):
            raise bad(f"{where}.anytime must be an object")
        lists = {k: v for k, v in a.items() if k in ("queries", "hv_gap", "best_accuracy")}
        if any(not isinstance(v, list) for v in lists.values()):
            raise bad(f"{where}.anytime: queries, hv_gap and best_accuracy must be lists")
        if len({len(v) for v in lists.values()}) > 1:
            raise bad(f"{where}.anytime: lists of different lengths")


def _is_list_of_dicts(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, dict) for x in v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(v: Any) -> float:
    """``v`` as a float; NaN for null, booleans, strings that are not numbers and infinities."""
    if v is None or isinstance(v, bool):
        return math.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


# --------------------------------------------------------------------------- statistics


def mean_std(values: Iterable[Any]) -> tuple[float, float, int]:
    """Return (mean, population std, n) over the finite values; (NaN, NaN, 0) if none."""
    a = np.array([_num(v) for v in values], dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return math.nan, math.nan, 0
    return float(a.mean()), float(a.std()), int(a.size)


def median_run(runs: Sequence[dict[str, Any]], key: str = "regret") -> dict[str, Any] | None:
    """Return the run with the median ``key`` (the lower median for an even count).

    Runs whose ``key`` is not finite are skipped; when none is finite, ``hv_gap`` is
    used instead, and failing that the first run. None for no runs.
    """
    if not runs:
        return None
    for k in (key, "hv_gap"):
        ok = [r for r in runs if math.isfinite(_num(r.get(k)))]
        if ok:
            ok.sort(key=lambda r: _num(r.get(k)))
            return ok[(len(ok) - 1) // 2]
    return runs[0]


def _ffill(v: np.ndarray) -> np.ndarray:
    out = v.copy()
    last = math.nan
    for i, x in enumerate(out):
        if math.isfinite(x):
            last = x
        else:
            out[i] = last
    return out


def align_anytime(
    runs: Sequence[dict[str, Any]], key: str = "hv_gap"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align anytime curves of different lengths; return (queries, mean, std).

    ``runs`` are run records (with an ``"anytime"`` object) or anytime objects themselves
    (``{"queries": [...], key: [...]}``). The query axis is the sorted union of every
    run's query counts; at each count a run contributes its last value at or before it
    (carried forward, also over NaN values), and nothing before its first count. ``mean``
    and ``std`` (population, ddof 0) are over the runs contributing at each count (NaN
    where none does). Runs without data for ``key`` are skipped; with none, three empty
    arrays are returned.
    """
    series = []
    for r in runs:
        a = r.get("anytime") if isinstance(r, dict) and "anytime" in r else r
        if not isinstance(a, dict):
            continue
        q, v = a.get("queries"), a.get(key)
        if not isinstance(q, list) or not isinstance(v, list):
            continue
        n = min(len(q), len(v))
        qa = np.array([_num(x) for x in q[:n]], dtype=float)
        va = np.array([_num(x) for x in v[:n]], dtype=float)
        keep = np.isfinite(qa)
        qa, va = qa[keep], va[keep]
        if qa.size == 0:
            continue
        order = np.argsort(qa, kind="stable")
        series.append((qa[order], _ffill(va[order])))
    if not series:
        empty = np.array([], dtype=float)
        return empty, empty.copy(), empty.copy()
    grid = np.unique(np.concatenate([q for q, _ in series]))
    mat = np.full((len(series), grid.size), np.nan)
    for i, (q, v) in enumerate(series):
        idx = np.searchsorted(q, grid, side="right") - 1  # last count <= grid value
        has = idx >= 0
        mat[i, has] = v[idx[has]]
    finite = np.isfinite(mat)
    count = finite.sum(axis=0)
    filled = np.where(finite, mat, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, filled.sum(axis=0) / count, np.nan)
        dev = np.where(finite, mat - mean, 0.0)
        std = np.where(count > 0, np.sqrt((dev**2).sum(axis=0) / count), np.nan)
    return grid, mean, std


# --------------------------------------------------------------------------- formatting


def _fmt(v: Any, unit: str = "", digits: int = 3) -> str:
    """``v`` with its unit (see :func:`reports.figures.fmt_value`), or "—" for null/NaN."""
    f = _num(v)
    return DASH if math.isnan(f) else F.fmt_value(f, unit, digits)


def _pm(mean: float, std: float, unit: str = "") -> str:
    if math.isnan(mean):
        return DASH
    if math.isnan(std):
        return _fmt(mean, unit)
    return f"{_fmt(mean)} ± {_fmt(std, unit)}"


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _fig_json(fig: go.Figure) -> str:
    """Figure as compact JSON, safe inside a <script> element."""
    return pio.to_json(fig, validate=False, pretty=False).replace("<", "\\u003c")


def _unit(b: dict[str, Any]) -> str:
    return str(b.get("unit") or "")


def _metric(b: dict[str, Any]) -> str:
    return str(b.get("metric") or "cost")


def _device_label(b: dict[str, Any]) -> str:
    return str(b.get("device_name") or b.get("device"))


def _target_text(b: dict[str, Any]) -> str:
    t = _num(b.get("target"))
    return "" if math.isnan(t) else f"{_metric(b)} ≤ {_fmt(t, _unit(b))}"


def _row_label(b: dict[str, Any]) -> str:
    t = _target_text(b)
    return f"{b['method']} · {t}" if t else str(b["method"])


# --------------------------------------------------------------------------- tables


def runs_frame(benches: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (file, seed) run with the columns :data:`CSV_COLUMNS` (units: accuracy
    in %, cost in ``unit``, regret in percentage points; NaN/None where absent)."""
    rows = []
    for b in benches:
        for r in b["runs"]:
            met = r.get("met")
            rows.append({
                "method": b["method"], "device": b["device"], "metric": _metric(b),
                "unit": _unit(b), "target": _num(b.get("target")), "seed": r.get("seed"),
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
        metrics.setdefault(b["device"], set()).add(_metric(b))
    return [(b["device"], _metric(b) if len(metrics[b["device"]]) > 1 else "") for b in benches]


def _summary_table(benches, labels, colkeys, colors) -> dict[str, Any]:
    columns: dict[tuple[str, str], dict[str, Any]] = {}
    for b, ck in zip(benches, colkeys, strict=True):
        if ck not in columns:
            sub = b["device"] + (f" · {ck[1]}" if ck[1] else "")
            columns[ck] = {"key": ck, "label": _device_label(b), "sub": sub,
                           "unit": _unit(b), "metric": _metric(b)}
    rows: dict[str, dict[str, Any]] = {}
    floors: dict[str, dict[str, Any]] = {}
    for b, label, ck in zip(benches, labels, colkeys, strict=True):
        st = _stats(b)
        runs = b["runs"]
        n_met = sum(1 for r in runs if r.get("met") is True)
        cell = {
            "regret_mean": st["regret"][0],
            "regret": _pm(st["regret"][0], st["regret"][1], "pp"),
            "hv_gap": _pm(st["hv_gap"][0], st["hv_gap"][1]),
            "igd": _fmt(st["igd"][0]),
            "accuracy": _pm(st["accuracy"][0], st["accuracy"][1], "%"),
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
            frow = floors.setdefault(flabel, {"label": flabel, "color": FLOOR_COLOR,
                                              "floor": True, "what": fl.get("what") or "",
                                              "cells": {}})
            frow["cells"].setdefault(ck, {
                "regret_mean": _num(fl.get("regret")),
                "regret": _fmt(fl.get("regret"), "pp"), "hv_gap": _fmt(fl.get("hv_gap")),
                "igd": _fmt(fl.get("igd")), "accuracy": _fmt(fl.get("accuracy"), "%"),
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
    unit = _unit(b)
    out = []
    for r in b["runs"]:
        met = r.get("met")
        out.append({
            "seed": r.get("seed", DASH), "arch": r.get("arch") or DASH,
            "index": r.get("index") if r.get("index") is not None else DASH,
            "accuracy": _fmt(r.get("accuracy"), "%"),
            "val_accuracy": _fmt(r.get("val_accuracy"), "%"), "cost": _fmt(r.get("cost"), unit),
            "met": met if isinstance(met, bool) else None, "regret": _fmt(r.get("regret"), "pp"),
            "hv_gap": _fmt(r.get("hv_gap")), "igd": _fmt(r.get("igd")),
            "front_found": r.get("front_found") if r.get("front_found") is not None else DASH,
            "queries": _fmt(r.get("queries")), "cache_hits": _fmt(r.get("cache_hits")),
            "wall_s": _fmt(r.get("wall_s"), "s"),
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
        rows.append({"target": _fmt(t, _unit(b)), "regret": _pm(m, s, "pp"),
                     "n": f"{n}/{len(b['runs'])}", "floor": _fmt(floor_at.get(t), "pp")})
    return rows


def _file_info(b: dict[str, Any], label: str, color: str) -> dict[str, Any]:
    budget = b.get("budget") or {}
    ref = b.get("reference_point")
    cr = b.get("cost_range")
    unit = _unit(b)
    pair = lambda v, u0, u1: (f"{_fmt(v[0], u0)}, {_fmt(v[1], u1)}"  # noqa: E731
                              if isinstance(v, list) and len(v) == 2 else DASH)
    sig = b.get("signal") or {}
    return {
        "label": label, "color": color, "method": b["method"], "path": b.get("_path", ""),
        "device": _device_label(b), "device_id": b["device"],
        "target": f"target {_target_text(b)}" if _target_text(b) else "no target",
        "info": [
            ("space / dataset", f"{b.get('space') or DASH} / {b.get('dataset') or DASH}"),
            ("objective", f"{b.get('objective') or DASH} ({_metric(b)}, {unit or 'no unit'})"),
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
            ("wall time", _fmt(b.get("wall_s"), "s")),
        ],
        "seeds": _seed_rows(b), "regret_at": _regret_at_rows(b),
    }  # fmt: skip


# --------------------------------------------------------------------------- figures


def _points(front: Any) -> dict[str, list]:
    """Finite (cost, accuracy) points of a front list, sorted by cost, with their ids."""
    pts = []
    for p in front or []:
        c, a = _num(p.get("cost")), _num(p.get("accuracy"))
        if math.isfinite(c) and math.isfinite(a):
            pts.append((c, a, str(p.get("arch") or "?"), p.get("index")))
    pts.sort(key=lambda t: (t[0], -t[1]))
    return {"x": [p[0] for p in pts], "y": [p[1] for p in pts],
            "arch": [p[2] for p in pts], "index": ["?" if p[3] is None else p[3] for p in pts]}


def _front_only(pts: dict[str, list]) -> dict[str, list]:
    if not pts["x"]:
        return pts
    mask = non_dominated_mask(np.column_stack([pts["y"], pts["x"]]), SENSES)
    return {k: [v for v, m in zip(vals, mask, strict=True) if m] for k, vals in pts.items()}


def _hover(unit: str, extra: str = "") -> str:
    return ("<b>%{customdata[0]}</b><br>index %{customdata[1]}" + extra +
            "<br>accuracy %{y:.2f}%<br>cost %{x:.4g} " + unit + "<extra>%{fullData.name}</extra>")


def front_figure(benches, labels, colors, title: str = "", height: int = 460) -> go.Figure | None:
    """Accuracy (y, %) vs cost (x) for benches of one device: the true front (step line),
    every seed's found front (faint), the median-regret seed's front (solid), the chosen
    cells (stars), targets (dashed) and the signal floor's front (dotted grey)."""
    b0 = benches[0]
    unit = _unit(b0)
    fig = go.Figure()
    true = _points(b0.get("true_front"))
    if true["x"]:
        fig.add_trace(go.Scatter(
            x=true["x"], y=true["y"], mode="lines+markers", name="true front",
            line=dict(color=TRUE_COLOR, width=1.5, shape="hv"),
            marker=dict(color=TRUE_COLOR, size=6, symbol="circle-open", line=dict(width=1.5)),
            customdata=list(zip(true["arch"], true["index"], strict=True)),
            hovertemplate=_hover(unit),
        ))  # fmt: skip
    floor_done = False
    for b, label in zip(benches, labels, strict=True):
        color = colors[label]
        faint = {"x": [], "y": [], "cd": []}
        for r in b["runs"]:
            p = _points(r.get("found_front"))
            faint["x"] += p["x"]
            faint["y"] += p["y"]
            faint["cd"] += [(a, i, r.get("seed")) for a, i in zip(p["arch"], p["index"],
                                                                  strict=True)]
        if faint["x"]:
            fig.add_trace(go.Scatter(
                x=faint["x"], y=faint["y"], mode="markers", name=label, legendgroup=label,
                showlegend=False, marker=dict(color=_rgba(color, 0.25), size=6),
                customdata=faint["cd"], hovertemplate=_hover(unit, " · seed %{customdata[2]}"),
            ))  # fmt: skip
        med = median_run(b["runs"])
        if med is not None:
            p = _front_only(_points(med.get("found_front")))
            if p["x"]:
                fig.add_trace(go.Scatter(
                    x=p["x"], y=p["y"], mode="lines+markers", legendgroup=label,
                    name=f"{label} (median seed {med.get('seed')})",
                    line=dict(color=color, width=2, shape="hv"),
                    marker=dict(color=color, size=7, line=dict(width=1, color="white")),
                    customdata=list(zip(p["arch"], p["index"], strict=True)),
                    hovertemplate=_hover(unit),
                ))  # fmt: skip
        chosen = [r for r in b["runs"]
                  if math.isfinite(_num(r.get("cost"))) and math.isfinite(_num(r.get("accuracy")))]
        if chosen:
            fig.add_trace(go.Scatter(
                x=[_num(r["cost"]) for r in chosen], y=[_num(r["accuracy"]) for r in chosen],
                mode="markers", name=f"{label} chosen", legendgroup=label, showlegend=False,
                marker=dict(color=color, size=14, symbol="star", line=dict(width=1, color="white")),
                customdata=[(str(r.get("arch") or "?"), r.get("index", "?"), r.get("seed"),
                             _fmt(r.get("regret"), "pp")) for r in chosen],
                hovertemplate=_hover(unit, "<br>chosen by seed %{customdata[2]}, "
                                           "regret %{customdata[3]}"),
            ))  # fmt: skip
        fl = _front_only(_points((b.get("floor") or {}).get("found_front")))
        if fl["x"] and not floor_done:
            floor_done = True
            fig.add_trace(go.Scatter(
                x=fl["x"], y=fl["y"], mode="lines", name="signal floor",
                line=dict(color=FLOOR_COLOR, width=1.5, dash="dot", shape="hv"),
                customdata=list(zip(fl["arch"], fl["index"], strict=True)),
                hovertemplate=_hover(unit),
            ))  # fmt: skip
    targets = sorted({t for t in (_num(b.get("target")) for b in benches) if math.isfinite(t)})
    for i, t in enumerate(targets):
        fig.add_vline(x=t, line=dict(color="#4a5261", dash="dash", width=1.2))
        fig.add_annotation(x=t, xref="x", y=1.0 - 0.065 * i, yref="paper", xanchor="left",
                           yanchor="top", text=f" target {_fmt(t, unit)}", showarrow=False,
                           font=dict(size=11, color="#4a5261"),
                           bgcolor="rgba(255,255,255,0.85)")
    if not fig.data:
        return None
    fig.update_layout(
        template=F.TEMPLATE, height=height, title=dict(text=title), hovermode="closest",
        xaxis_title=f"{_metric(b0)} ({unit})" if unit else _metric(b0),
        yaxis_title="accuracy (%)", margin=dict(t=48, b=110),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )  # fmt: skip
    return fig


def anytime_figure(benches, labels, colors, title: str = "",
                   height: int = 420) -> tuple[go.Figure | None, list[str]]:
    """HV gap against queries, per bench the mean over seeds (line) and ±1 std (band).

    Returns (figure or None, labels of the benches skipped for lack of anytime data).
    The query axis is logarithmic when the largest count exceeds 50.
    """
    fig = go.Figure()
    skipped, qmax = [], 0.0
    for b, label in zip(benches, labels, strict=True):
        q, mean, std = align_anytime(b["runs"])
        keep = np.isfinite(mean)
        q, mean, std = q[keep], mean[keep], std[keep]
        if q.size < MIN_ANYTIME_POINTS:
            skipped.append(label)
            continue
        qmax = max(qmax, float(q.max()))
        color = colors[label]
        x = q.tolist()
        std = np.nan_to_num(std)
        fig.add_trace(go.Scatter(x=x, y=(mean - std).tolist(), mode="lines", legendgroup=label,
                                 line=dict(width=0, color=color, shape="hv"), showlegend=False,
                                 hoverinfo="skip", name=f"{label} −1 std"))
        fig.add_trace(go.Scatter(x=x, y=(mean + std).tolist(), mode="lines", legendgroup=label,
                                 line=dict(width=0, color=color, shape="hv"), fill="tonexty",
                                 fillcolor=_rgba(color, 0.18), showlegend=False,
                                 hoverinfo="skip", name=f"{label} +1 std"))
        fig.add_trace(go.Scatter(
            x=x, y=mean.tolist(), mode="lines", name=label, legendgroup=label,
            line=dict(color=color, width=2, shape="hv"), customdata=std.tolist(),
            hovertemplate="%{x:.0f} queries<br>HV gap %{y:.4f} ± %{customdata:.4f}"
                          "<extra>%{fullData.name}</extra>",
        ))  # fmt: skip
    if not fig.data:
        return None, skipped
    fig.update_layout(
        template=F.TEMPLATE, height=height, title=dict(text=title), hovermode="x unified",
        xaxis=dict(title=dict(text="queries"), type="log" if qmax > 50 else "linear"),
        yaxis_title="HV gap (1 − HV found / HV true)", margin=dict(t=48, b=100),
        legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
    )  # fmt: skip
    return fig, skipped


# --------------------------------------------------------------------------- report


def _default_title(benches: Sequence[dict[str, Any]]) -> str:
    methods = ", ".join(dict.fromkeys(str(b["method"]) for b in benches))
    devices = ", ".join(dict.fromkeys(_device_label(b) for b in benches))
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
    colors = F.run_colors(list(dict.fromkeys(labels)))
    colkeys = _column_keys(benches)
    table = _summary_table(benches, labels, colkeys, colors)

    figures: list[dict[str, Any]] = []
    anytime_skipped: list[str] = []

    def add(section: str, fig: go.Figure | None, caption: str = "") -> None:
        if fig is not None:
            figures.append({"id": f"fig{len(figures)}", "section": section,
                            "json": _fig_json(fig), "caption": caption,
                            "height": fig.layout.height})

    groups: dict[tuple[str, str], list[int]] = {}
    for i, ck in enumerate(colkeys):
        groups.setdefault(ck, []).append(i)
    for ck, idx in groups.items():
        bs, ls = [benches[i] for i in idx], [labels[i] for i in idx]
        name = _device_label(bs[0]) + (f" · {ck[1]}" if ck[1] else "")
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
