"""The predictor of a space's deploy network: where a LUT, its calibration and the
backend's fusion rule meet, for any space.

:class:`Predictor` holds the LUT (and, when ``nasbench lut calibrate`` fitted one for
this very file, the calibrated view of it) and the :class:`~nasbench.predict.table.
CostTable` of the objective's metrics; it answers the expected cost under slot
probabilities (differentiable), the exact cost of a discrete architecture, bounds, the
shared hard-target repair, and the whole-network prediction a run records.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nasbench.errors import UserError
from nasbench.predict.calibration import CalibratedLUT, fused_add_scale, load_calibration
from nasbench.predict.learned import LearnedCost, load_learned
from nasbench.predict.memory import MemoryPlanner
from nasbench.predict.table import CostTable, RepairResult


def lut_cost(space, lut, arch, metric: str = "latency", batch: int | None = None
             ) -> float | None:
    """Returns the LUT cost (ms, J or B) of ``arch``'s deploy network: the sum of
    ``lut.value`` over its op instances (fixed parts included; a calibrated view's
    intercept and fused node sums at their calibrated scale); None when an entry has no
    value for ``metric``."""
    deploy = space.deploy
    batch = batch or deploy.batches[0]
    insts, fused = space.prediction_instances(arch, lut)
    total = getattr(lut, "intercept", {}).get(metric, 0.0)   # calibrated LUT views only
    for inst in insts:
        v = lut.value(inst.key, batch, metric, deploy.dtype)
        if v is None:
            return None
        total += v
    scale = fused_add_scale(lut) if metric == "latency" else None
    scale = 1.0 if scale is None else scale      # (a fitted scale may be 0)
    for inst in fused:
        total += scale * (lut.value(inst.key, batch, metric, deploy.dtype) or 0.0)
    return total


class Predictor:
    """Cost prediction of ``space``'s deploy network from ``lut`` (see the module doc).
    ``view`` is the calibrated LUT view when a calibration was fitted for this LUT file
    at the deploy batch, else the LUT; ``table`` the cost table of ``metrics`` read
    from ``view``."""

    def __init__(self, space, lut, metrics, path: Path | None = None,
                 device: str | None = None):
        self.space, self.lut, self.path = space, lut, Path(path or lut.path or "LUT")
        #: the device the LUT describes (a spec; default: the LUT's own)
        self.device = device or ((lut.provenance.get("device") or {}).get("spec")
                                 if isinstance(lut.provenance, dict) else None)
        self._memory = _UNSET
        #: give a discrete architecture's ``memory`` cost (the buffer plan's peak) even
        #: when the objective has no memory term (a --memory-target filters by it)
        self.plan_memory = "memory" in metrics
        self.calibration = load_calibration(lut, space.deploy.batches[0]) \
            if lut.path else None
        self.view = CalibratedLUT(lut, self.calibration) if self.calibration else lut
        self.metrics = list(metrics)
        self.table = CostTable.from_lut(space, self.view, self.metrics)
        #: the learned model of each metric fitted for this LUT file (``lut calibrate
        #: --model learned``): a discrete architecture's cost is its prediction
        self.learned = learned_costs(space, lut, self.metrics)
        #: an architecture's measured latency (ms; None: unmeasured) where measuring is a
        #: table lookup (HW-NAS-Bench's devices): the hard-target repair meets the target
        #: by it, not by the LUT's fit of it
        self.exact = None

    @classmethod
    def from_lut(cls, space, lut, metrics, device: str, path: Path | None = None
                 ) -> Predictor:
        """Returns the predictor of ``metrics``; raises UserError naming the missing
        entries and the profile command that fills them."""
        path = Path(path or lut.path or "LUT")
        try:
            return cls(space, lut, metrics, path, device)
        except KeyError as e:
            metric, missing = e.args
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more"
                                              if len(missing) > 3 else "")
            what = f"the {space.name} deploy network"
            if metric != "latency" and len(missing) >= len(lut.entries) // 2:
                raise UserError(f"LUT {path} has no {metric} measurements for {what} "
                                f"({len(missing)} entries lack it, e.g. {shown}); this "
                                f"device may have no {metric} meter, use another "
                                f"objective") from None
            raise UserError(f"LUT {path} lacks {len(missing)} {metric} entries for "
                            f"{what}: {shown}; fill them with: "
                            f"{space.profile_command(device, path)}") from None

    # ---- the cost table -----------------------------------------------------------------

    @property
    def reference(self) -> dict[str, float]:
        """Returns E[m] under uniform logits (LUT units), each metric's natural scale."""
        return self.table.reference

    def expected(self, logits: torch.Tensor, weights: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
        """Returns {metric: E[metric]} under slot logits/weights (see CostTable)."""
        return self.table.expected(logits, weights)

    def cost(self, arch) -> dict[str, float]:
        """Returns {metric: predicted cost of ``arch``} (ms, J, B): the learned model's
        where one is fitted for the metric, else the table's sum."""
        c = self.table.cost(arch)
        for m, f in self.learned.items():
            c[m] = f(arch)
        if self.plan_memory and self.memory is not None:
            c["memory"] = self.memory(arch)
        return c

    @property
    def memory(self) -> MemoryPlanner | None:
        """Returns the buffer plan of the device's peak memory (made on first use), None
        for a device nasbench cannot plan (a table device: HW-NAS-Bench)."""
        if self._memory is _UNSET:
            try:
                self._memory = MemoryPlanner(self.space, self.device or "cpu")
            except UserError:
                self._memory = None
        return self._memory

    def bounds(self, metric: str = "latency") -> tuple[float, float]:
        """Returns (cheapest, dearest) table cost, every slot used once."""
        return self.table.bounds(metric)

    def repair(self, arch, target: float, scores: torch.Tensor, metric: str = "latency"
               ) -> RepairResult:
        """Returns ``arch`` repaired toward a hard target (see CostTable.repair; by
        :attr:`exact` where the device has it)."""
        exact = self.exact if metric == "latency" else None
        return self.table.repair(arch, target, scores, metric,
                                 exact or self.learned.get(metric))

    # ---- whole-network prediction -------------------------------------------------------

    def predict(self, arch) -> dict:
        """Returns the LUT prediction of ``arch``'s deploy network: ``{"latency_ms",
        "latency_plain_ms", "energy_j", "memory_bytes", "source"}`` (None where the LUT
        has no value). ``latency_ms`` is the calibrated predictor's when one is fitted
        for this LUT, else the plain sum over the op instances. Energy is a sum; memory
        the buffer plan's peak of the whole network (``memory_source`` says so; the
        sum of per-op peaks, an upper-bound-style estimate, where the device cannot be
        planned)."""
        out = predict_costs(self.space, self.lut, arch, self.calibration,
                            self.learned.get("latency"))
        if self.memory is not None:
            out["memory_sum_bytes"] = out["memory_bytes"]
            out["memory_bytes"] = self.memory(arch)
            out["memory_source"] = f"buffer plan ({self.memory.model} allocator)"
        return out


_UNSET = object()


def learned_costs(space, lut, metrics) -> dict[str, LearnedCost]:
    """Returns {metric: the learned model fitted beside ``lut`` for it} (none: {})."""
    if lut.path is None:
        return {}
    out = {}
    for m in metrics:
        model = load_learned(lut, space.deploy.batches[0], m)
        if model is not None:
            out[m] = LearnedCost(model, space, lut)
    return out


_LOAD = object()


def predict_costs(space, lut, arch, calib=_LOAD, learned=_LOAD) -> dict:
    """Returns :meth:`Predictor.predict` for any LUT: the learned model's latency when
    one is fitted (``learned``, by default the one stored beside this LUT file), else
    calibrated with ``calib`` (by default the calibration fitted for this LUT file),
    else the plain sum; ``latency_sd_ms`` is the learned model's uncertainty."""
    plain = lut_cost(space, lut, arch, "latency")
    if calib is _LOAD:
        calib = load_calibration(lut, space.deploy.batches[0]) if lut.path else None
    if learned is _LOAD:
        learned = learned_costs(space, lut, ["latency"]).get("latency")
    latency, source, sd = plain, "LUT (sum over op instances; an estimate)", None
    if learned is not None and plain is not None:
        mean, std = learned.predict([arch])
        latency, sd = float(mean[0]), float(std[0])
        source = "LUT + learned model (lut calibrate --model learned; an estimate)"
    elif calib is not None and plain is not None:
        latency = lut_cost(space, CalibratedLUT(lut, calib), arch, "latency")
        source = "LUT, calibrated predictor (lut calibrate; an estimate)"
    return {"latency_ms": latency, "latency_plain_ms": plain, "latency_sd_ms": sd,
            "energy_j": lut_cost(space, lut, arch, "energy"),
            "memory_bytes": lut_cost(space, lut, arch, "memory"),
            "source": source}
