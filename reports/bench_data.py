"""Reading, checking and summarising NAS-Bench-201 bench result files (``bench.json``).

A bench file (schema: ``docs/bench-schema.md``) records one search method run over
several seeds against a ground-truth table: per seed the chosen cell (accuracy %, cost in
the file's ``unit``), its regret (percentage points), the hypervolume gap and the anytime
curves. :func:`load_bench` reads and checks one; :func:`mean_std`, :func:`median_run` and
:func:`align_anytime` summarise its seeds (population std, ddof 0, over finite values).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .loader import ReportError, _num, _read_json

__all__ = [
    "BENCH_KIND",
    "BENCH_VERSION",
    "load_bench",
    "mean_std",
    "median_run",
    "align_anytime",
    "bench_unit",
    "bench_metric",
    "device_label",
]

BENCH_KIND = "nasbench-bench"
BENCH_VERSION = 1


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


# --------------------------------------------------------------------------- fields


def bench_unit(b: dict[str, Any]) -> str:
    """Return the unit of the bench's cost (e.g. ``"ms"``), ``""`` when it has none."""
    return str(b.get("unit") or "")


def bench_metric(b: dict[str, Any]) -> str:
    """Return the name of the bench's cost (e.g. ``"latency"``), ``"cost"`` when unnamed."""
    return str(b.get("metric") or "cost")


def device_label(b: dict[str, Any]) -> str:
    """Return the bench's device name for display, else its device id."""
    return str(b.get("device_name") or b.get("device"))
