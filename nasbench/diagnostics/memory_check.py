"""``nasbench memory``: the buffer plan's peak memory (:mod:`nasbench.predict.memory`)
against the measured peak of the same networks on a device, for N sampled networks of a
space: the within-10 % share, MAPE and rank correlation of the whole network (activations
and weights) and of its activations alone, beside the sum of per-op peaks a LUT gives."""

from __future__ import annotations

import random
from collections.abc import Callable

from nasbench.errors import UserError
from nasbench.luts import measure_network_memory
from nasbench.predict.calibration import error_metrics
from nasbench.predict.memory import MemoryPlanner
from nasbench.spaces.base import get_space

#: the summary's figures of one comparison
_KEEP = ("n", "within_5pct", "within_10pct", "mape_pct", "bias_pct", "spearman")


def memory_check(space_name: str, samples: int, device: str = "cpu", seed: int = 0,
                 batch: int | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Plans and measures ``samples`` distinct valid networks of ``space_name`` (its
    default deploy network, at ``batch`` when given) on ``device``; returns ``{"space",
    "device", "model", "note", "networks": [{"arch", "predicted", "measured"}...],
    "peak": metrics, "activations": metrics}`` (bytes; metrics as
    :func:`~nasbench.predict.calibration.error_metrics`)."""
    if samples < 3:
        raise UserError(f"--samples must be at least 3 (a rank needs them), got {samples}")
    cls = get_space(space_name)
    deploy = cls.default_deploy()
    if batch is not None:
        if batch < 1:
            raise UserError(f"--batch must be positive, got {batch}")
        deploy = cls.deploy_from_options(batches=(batch,))
    space = cls(deploy)
    planner = MemoryPlanner(space, device)
    archs = space.sample_distinct(random.Random(seed), samples, valid=True)
    d = space.deploy
    shape = (d.batches[0], d.in_channels, d.input_size, d.input_size)
    rows = []
    for i, arch in enumerate(archs):
        if progress:
            progress(i, len(archs), space.summary(arch))
        plan = planner.plan(arch)
        m = measure_network_memory(space.build(arch), shape, device)
        rows.append({"arch": space.summary(arch),
                     "predicted": {"peak_bytes": plan.peak,
                                   "activation_bytes": plan.activation_peak,
                                   "weight_bytes": plan.weights, "at": plan.at},
                     "measured": m})
    if progress:
        progress(len(archs), len(archs), "")

    def metrics(key: str) -> dict:
        e = error_metrics([r["predicted"][key] for r in rows],
                          [r["measured"][key] for r in rows])
        return {k: e[k] for k in _KEEP}
    return {"space": space.name, "device": device, "batch": d.batches[0],
            "model": planner.model, "note": planner.note,
            "method": rows[0]["measured"]["method"] if rows else None,
            "workspaces_measured": planner.workspaces.measured if planner.workspaces else 0,
            "networks": rows, "peak": metrics("peak_bytes"),
            "activations": metrics("activation_bytes")}

