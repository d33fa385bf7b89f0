"""Candidate records: the per-architecture rows of ``result.json`` that reports plot.

Every searcher and the reference networks describe an architecture the same way (the
space's JSON of an :class:`~nasbench.spaces.Arch`), so a report treats them alike::

    {"name", "role": "derived" | "reference", "space", "genotype", "arch_id",
     "genotype_summary",
     "accuracy": % top-1, "accuracy_kind": "test", "accuracy_ci": [low, high] % (95 %
     Wilson, from "accuracy_n" test images), "chance": %, "at_chance": bool,
     "train_epochs", "train_steps",
     "latency_ms": {"measured": {median, p5, p95, cv, ...} | None, "predicted": ms | None},
     "energy_j": {"measured": J | None, "predicted": J | None, "reason": str | None},
     "memory_bytes": {"measured": B | None, "predicted": B | None, "method": str | None},
     "params": int, "macs": int (conv + linear multiply-accumulates per forward)}

Predicted values are LUT sums (estimates); measured values come from the same meters
as the LUT. A missing value is None, never 0.
"""

from __future__ import annotations

from typing import Any

from nasbench.spaces.base import Arch
from nasbench.stats import accuracy_interval


def arch_dict(arch: Any, space: str | None = None) -> dict | None:
    """Returns the JSON form of an architecture (an :class:`~nasbench.spaces.Arch` or a
    registered space's value); None for None; a dict is returned as is."""
    if arch is None or isinstance(arch, dict):
        return arch
    return Arch.of(arch, space).to_dict()


def arch_summary(arch: Any) -> str:
    """Returns a one-line text of an architecture ('' for None)."""
    if arch is None:
        return ""
    if isinstance(arch, dict):
        return str(arch.get("summary", ""))
    return Arch.of(arch).summary()


def arch_space(arch: Any) -> str:
    """Returns the search space name of an architecture."""
    if isinstance(arch, dict):
        return str(arch.get("space") or ("proxyless" if "blocks" in arch else ""))
    return Arch.of(arch).space


def candidate(name: str, role: str, *, arch: Any = None, space: str | None = None,
              summary: str | None = None, test_acc: float | None = None,
              predicted: dict | None = None, measured: dict | None = None,
              params: dict | int | None = None, macs: dict | int | None = None,
              train: dict | None = None, test_n: int | None = None,
              classes: int | None = None) -> dict:
    """Returns one candidate record (see the module doc; accuracy in %, latency in ms,
    energy in J, memory in bytes). ``test_acc`` is a fraction; ``predicted`` is
    :func:`nasbench.api.predict_costs`'s dict, ``measured`` is
    :func:`nasbench.luts.measure_network`'s dict (or {"error": ...})."""
    predicted = predicted or {}
    measured = measured if measured and "latency_ms" in measured else None
    p = params.get("torch") if isinstance(params, dict) else params
    m = macs.get("conv_linear") if isinstance(macs, dict) else macs
    return {
        "name": name, "role": role,
        "space": space or (arch_space(arch) if arch is not None else ""),
        "genotype": arch_dict(arch),
        # the space's stable id of the architecture (None for hand-designed networks)
        "arch_id": Arch.of(arch).id if arch is not None and not isinstance(arch, dict)
        else None,
        "genotype_summary": summary if summary is not None else arch_summary(arch),
        "accuracy": None if test_acc is None else 100.0 * test_acc,
        "accuracy_kind": "test",
        # 95 % Wilson interval from the test split's size; at_chance: it includes 1/classes
        "accuracy_ci": (iv := accuracy_interval(test_acc, test_n, classes))["ci_pct"],
        "accuracy_n": iv["n"], "chance": iv["chance_pct"], "at_chance": iv["at_chance"],
        "train_epochs": (train or {}).get("epochs"),
        "train_steps": (train or {}).get("steps"),
        "latency_ms": {"measured": measured["latency_ms"] if measured else None,
                       "predicted": predicted.get("latency_ms"),
                       # the measured median in the LUT's time base (drift anchor)
                       "corrected": measured.get("latency_corrected_ms") if measured
                       else None},
        "energy_j": {"measured": measured.get("energy_j") if measured else None,
                     "predicted": predicted.get("energy_j"),
                     "reason": measured.get("energy_reason") if measured else
                     "not measured"},
        "memory_bytes": {"measured": measured.get("memory_bytes") if measured else None,
                         "predicted": predicted.get("memory_bytes"),
                         "method": measured.get("memory_method") if measured else None},
        "params": p, "macs": m,
    }  # fmt: skip


def score_text(value: float, kind: str) -> str:
    """Returns a search signal in words: "accuracy 91.20 %" or, for a zero-cost score
    (``kind`` "zero-cost"), "zero-cost score 63.1 (0-100)"."""
    if kind == "zero-cost":
        return f"zero-cost score {value:.1f} (0-100)"
    return f"accuracy {value:.2f} %"
