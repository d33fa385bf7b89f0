"""Reading and validating run directories, LUT files and validation files.

A run directory (written by ``nasbench search``) holds ``result.json`` (required),
and optionally ``config.json``, ``history.json`` and ``genotype.json``. Optional
files and optional fields may be missing; a missing or corrupt required file raises
:class:`ReportError` with a one-line message naming the path.

This module imports nothing from the rest of nasbench.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "ReportError",
    "Run",
    "Metric",
    "METRICS",
    "load_run",
    "load_runs",
    "load_lut",
    "load_validation",
    "points_frame",
]


class ReportError(Exception):
    """A report input is missing or corrupt; ``str(err)`` is one line fit for the user."""


@dataclass(frozen=True)
class Metric:
    """One column of the points table: ``key`` in ``unit``; ``sense`` is min or max."""

    key: str
    label: str
    unit: str
    sense: str
    estimate: bool = False  # a predicted value (labelled as an estimate in figures)

    @property
    def axis_title(self) -> str:
        """Axis title with unit, e.g. ``"Latency, measured median (ms)"``."""
        return f"{self.label} ({self.unit})"


#: Every metric a report knows, in display order. Costs are everything but accuracy.
METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "Top-1 accuracy", "%", "max"),
    Metric("latency_ms", "Latency, measured median", "ms", "min"),
    Metric("latency_pred_ms", "Latency, LUT-predicted", "ms", "min", estimate=True),
    Metric("energy_mj", "Energy per inference, measured", "mJ", "min"),
    Metric("energy_pred_mj", "Energy per inference, predicted", "mJ", "min", estimate=True),
    Metric("memory_mib", "Peak memory, measured", "MiB", "min"),
    # a sum of per-op peaks: an upper bound on the network's peak, not an estimate of it
    Metric("memory_pred_mib", "Peak memory, predicted upper bound", "MiB", "min", estimate=True),
    Metric("params_m", "Parameters", "M", "min"),
    Metric("macs_m", "MACs", "M", "min"),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}


@dataclass
class Run:
    """One loaded run directory. ``label`` is unique among the runs of one report."""

    path: Path
    result: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    genotype: dict[str, Any] | None = None
    label: str = ""

    @property
    def run_id(self) -> str:
        """The run id from result.json, else the directory name."""
        return str(self.result.get("run_id") or self.path.name)

    @property
    def method(self) -> str:
        """Search method name (e.g. ``darts``), ``"?"`` when unrecorded."""
        return str(self.result.get("method") or self.config.get("method") or "?")

    @property
    def candidates(self) -> list[dict[str, Any]]:
        """The candidate architectures (list of dicts, possibly empty)."""
        return self.result.get("candidates") or []

    @property
    def derived(self) -> dict[str, Any] | None:
        """The candidate with role ``derived``, if any."""
        for c in self.candidates:
            if c.get("role") == "derived":
                return c
        return None

    @property
    def target(self) -> dict[str, Any] | None:
        """The cost target ``{"metric", "value", "unit", "met"}`` or None."""
        t = self.result.get("target")
        return t if isinstance(t, dict) and t.get("value") is not None else None


def _read_json(path: Path, what: str, required: bool) -> Any:
    if not path.is_file():
        if required:
            raise ReportError(f"{what}: {path} is missing")
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReportError(f"{what}: {path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{what}: {path} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None


def load_run(path: Path | str) -> Run:
    """Load and validate one run directory; return a :class:`Run`.

    Raises :class:`ReportError` (one line) when the directory or its ``result.json`` is
    missing or corrupt, or when a present optional file has the wrong shape.
    """
    path = Path(path)
    if not path.exists():
        raise ReportError(f"run directory {path} does not exist")
    if not path.is_dir():
        raise ReportError(f"{path} is not a run directory (expected a folder with result.json)")
    result = _read_json(path / "result.json", "run", required=True)
    if not isinstance(result, dict):
        raise ReportError(f"run: {path / 'result.json'} must hold a JSON object")
    cands = result.get("candidates", [])
    if cands is None:
        cands = []
    if not isinstance(cands, list) or not all(isinstance(c, dict) for c in cands):
        raise ReportError(f"run: {path / 'result.json'}: 'candidates' must be a list of objects")
    result["candidates"] = cands
    config = _read_json(path / "config.json", "run", required=False) or {}
    if not isinstance(config, dict):
        raise ReportError(f"run: {path / 'config.json'} must hold a JSON object")
    history = _read_json(path / "history.json", "run", required=False) or []
    if isinstance(history, dict) and isinstance(history.get("epochs"), list):
        history = history["epochs"]
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise ReportError(f"run: {path / 'history.json'} must hold a list of per-epoch objects")
    genotype = _read_json(path / "genotype.json", "run", required=False)
    if genotype is not None and not isinstance(genotype, dict):
        raise ReportError(f"run: {path / 'genotype.json'} must hold a JSON object")
    if genotype is not None and isinstance(genotype.get("genotype"), dict):
        # nasbench search writes {"genotype": {...}, "derived": {...}, "summary": ...}
        genotype = genotype["genotype"]
    if genotype is None:
        d = next((c for c in cands if c.get("role") == "derived"), None)
        genotype = d.get("genotype") if d and isinstance(d.get("genotype"), dict) else None
    return Run(path=path, result=result, config=config, history=history, genotype=genotype)


def load_runs(paths: list[Path | str]) -> list[Run]:
    """Load several run directories; give each a unique ``label`` (run id, de-duplicated)."""
    if not paths:
        raise ReportError("no run directories given")
    runs = [load_run(p) for p in paths]
    seen: dict[str, int] = {}
    for r in runs:
        base = r.run_id
        n = seen.get(base, 0)
        seen[base] = n + 1
        r.label = base if n == 0 else f"{base} ({n + 1})"
    return runs


def load_lut(path: Path | str) -> dict[str, Any]:
    """Load a LUT JSON file; return the dict (``entries`` guaranteed to be a dict)."""
    path = Path(path)
    lut = _read_json(path, "LUT", required=True)
    if not isinstance(lut, dict) or not isinstance(lut.get("entries"), dict):
        raise ReportError(f"LUT: {path} has no 'entries' object; is it a nasbench LUT?")
    return lut


def load_validation(path: Path | str) -> dict[str, Any]:
    """Load a predicted-vs-measured validation JSON; return it (``points`` is a list)."""
    path = Path(path)
    val = _read_json(path, "validation", required=True)
    if not isinstance(val, dict) or not isinstance(val.get("points"), list):
        raise ReportError(f"validation: {path} has no 'points' list")
    return val


def _num(v: Any) -> float:
    """Return v as a finite float, or NaN for None / non-numbers / inf."""
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def _measured(v: Any, key: str = "measured") -> Any:
    """Pull the measured (or predicted) value out of ``{"measured": .., "predicted": ..}``."""
    if isinstance(v, dict):
        return v.get(key)
    return v if key == "measured" else None


def _latency_stats(v: Any) -> dict[str, float]:
    m = _measured(v)
    if isinstance(m, dict):
        return {k: _num(m.get(k)) for k in ("median", "p5", "p95", "cv")}
    return {"median": _num(m), "p5": math.nan, "p95": math.nan, "cv": math.nan}


def _accuracy_ci(c: dict[str, Any]) -> dict[str, Any]:
    """The accuracy's uncertainty of one candidate record: ``accuracy_lo`` and
    ``accuracy_hi`` (% , the 95 % interval; NaN when absent or malformed), ``accuracy_n``
    (test images), ``chance`` (%) and ``at_chance`` (True, False or None = unknown).

    Records written before these keys existed have none of them (all unknown). A missing
    ``at_chance`` is derived from the interval and ``chance`` when both are present.
    """
    ci = c.get("accuracy_ci")
    lo = hi = math.nan
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        lo, hi = _num(ci[0]), _num(ci[1])
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            lo = hi = math.nan
    chance = _num(c.get("chance"))
    at = c.get("at_chance")
    if not isinstance(at, bool):
        # as nasbench.stats: not above chance (an interval wholly below chance counts too)
        at = None if math.isnan(lo) or math.isnan(chance) else bool(lo <= chance)
    return {"accuracy_lo": lo, "accuracy_hi": hi, "accuracy_n": _num(c.get("accuracy_n")),
            "chance": chance, "at_chance": at}


POINT_COLUMNS = [
    "run", "run_id", "method", "name", "role", "space", "genotype_summary", "accuracy_kind",
    *[m.key for m in METRICS],
    "accuracy_lo", "accuracy_hi", "accuracy_n", "chance", "at_chance",
    "latency_p5_ms", "latency_p95_ms", "latency_cv", "energy_reason", "train_epochs",
]  # fmt: skip


def points_frame(runs: list[Run]) -> pd.DataFrame:
    """Flatten every candidate of every run into one table, one row per point.

    Units: accuracy in %, latency in ms, energy in mJ, memory in MiB, params and MACs
    in millions. Missing values are NaN. Columns are :data:`POINT_COLUMNS`; the
    accuracy's 95 % interval is ``accuracy_lo`` / ``accuracy_hi`` (%), ``at_chance`` is
    True, False or None (see :func:`_accuracy_ci`).
    """
    rows = []
    for r in runs:
        for i, c in enumerate(r.candidates):
            lat = _latency_stats(c.get("latency_ms"))
            energy = c.get("energy_j")
            mem = c.get("memory_bytes")
            reason = energy.get("reason") if isinstance(energy, dict) else None
            rows.append(
                {
                    "run": r.label,
                    "run_id": r.run_id,
                    "method": r.method,
                    "name": str(c.get("name") or f"candidate-{i}"),
                    "role": str(c.get("role") or "visited"),
                    "space": str(c.get("space") or ""),
                    "genotype_summary": str(c.get("genotype_summary") or ""),
                    "accuracy_kind": str(c.get("accuracy_kind") or "test"),
                    "accuracy": _num(c.get("accuracy")),
                    **_accuracy_ci(c),
                    "latency_ms": lat["median"],
                    "latency_pred_ms": _num(_measured(c.get("latency_ms"), "predicted")),
                    "energy_mj": _num(_measured(energy)) * 1e3,
                    "energy_pred_mj": _num(_measured(energy, "predicted")) * 1e3,
                    "memory_mib": _num(_measured(mem)) / 2**20,
                    "memory_pred_mib": _num(_measured(mem, "predicted")) / 2**20,
                    "params_m": _num(c.get("params")) / 1e6,
                    "macs_m": _num(c.get("macs")) / 1e6,
                    "latency_p5_ms": lat["p5"],
                    "latency_p95_ms": lat["p95"],
                    "latency_cv": lat["cv"],
                    "energy_reason": str(reason or ""),
                    "train_epochs": _num(c.get("train_epochs")),
                }
            )
    df = pd.DataFrame(rows, columns=POINT_COLUMNS)
    # True / False / None (unknown) as Python objects, whatever mix the runs hold
    df["at_chance"] = pd.Series([r["at_chance"] for r in rows], index=df.index, dtype=object)
    return df
