"""The differentiable expected cost of the deploy network, and the cost objectives.

Expected cost (FBNet / ProxylessNAS style), for each metric m (latency ms, energy J,
memory bytes) of the LUT, of the network you will deploy (a :class:`DeployConfig`, not
the proxy search network)::

    E[m] = fixed_m + sum_{normal cells} sum_edges f_e * sum_ops p_{e,o} * LUT_m(o, cell, e)
                   + sum_{reduce cells} (same with the reduce weights)

* ``fixed_m`` is the architecture-independent part (stem, each cell's two input
  preprocessing ops, head), so E[m] is comparable with a whole-network prediction.
* ``p_{e,o}`` is softmax(alpha_e) over the non-``none`` ops: derivation never keeps
  ``none`` (it is excluded from the DARTS rule), so its zero cost must not be a way to
  lower E[m] without changing the derived network.
* ``f_e`` is the expected number of times the edge survives derivation, which keeps 2
  inputs per node: 2/(number of inputs of the node) for DARTS, 2 * softmax(beta)_e over
  the node's inputs for PC-DARTS. With it E[m] at a one-hot architecture with uniform
  edges equals the cost of a derived network, not of all 14 edges.

Cells of one type share their alphas, so the LUT costs are pre-summed over the cells of
each type into tensors [edges x ops]; E[m] is then two weighted sums.

Objectives (``acc`` plus any of ``latency``, ``energy``, ``memory``):

* penalty form: ``loss = CE + weight * sum_m E[m] / ref_m`` where ``ref_m`` is E[m]
  under uniform alphas (and uniform betas). The ratio has no unit and is about 1, so a
  weight means the same on every device: weight 0.1 trades 0.1 nats of validation
  cross-entropy for a network 100 % more expensive than the average one.
* target form (``latency_target_ms``): ``loss = CE + weight * max(0, E[lat]/target - 1)``
  (only the excess is penalised; other metrics keep the penalty form).
* hard target: after derivation, :func:`repair_to_target` swaps ops of the derived
  network for cheaper ones until the LUT latency meets the target, or says it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..genotypes import Genotype
from ..ops import OPS, PRIMITIVES
from ..spaces.darts import (
    DeployConfig,
    cell_plan,
    edge_instance,
    fused_node_adds,
    network_fixed_instances,
    network_instances,
    node_add_instance,
    node_add_rule,
    node_fuses,
)
from .supernet import node_softmax, num_edges

UNITS = {"latency": "ms", "energy": "J", "memory": "B"}


def deploy_plan(deploy: DeployConfig):
    """Returns the cell geometries of the deploy network."""
    return cell_plan(deploy.channels, deploy.layers, deploy.input_size, deploy.multiplier,
                     deploy.stem_multiplier)


def required_op_keys(deploy: DeployConfig, primitives=PRIMITIVES) -> list[str]:
    """Returns the LUT op keys the expected cost of ``deploy`` reads (no ``none``)."""
    keys = [i.key for i in network_fixed_instances(deploy)]
    for cell in deploy_plan(deploy):
        for node in range(deploy.steps):
            for j in range(node + 2):
                keys += [edge_instance(cell, op, j).key for op in primitives if op != "none"]
    return list(dict.fromkeys(keys))


@dataclass
class CostModel:
    """LUT costs of the deploy network arranged for the expected-cost term.

    ``tables[m]["normal"|"reduce"]``: tensor [edges x ops] (LUT units, summed over the
    cells of that type, 0 for ``none``); ``fixed[m]``: float; ``reference[m]``: E[m] under
    uniform alphas/betas."""

    deploy: DeployConfig
    metrics: list[str]
    batch: int
    primitives: list[str]
    tables: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    edge_factors: torch.Tensor | None = None
    # calibrated LUTs of a fusing backend: (fused_add scale - 1) x the node sums' LUT
    # cost per node [steps], summed over the cells of each type; and which ops end in
    # conv + BN (a node sum fed by one is fused)
    fused_extra: dict = field(default_factory=dict)
    epilogue: torch.Tensor | None = None

    @classmethod
    def from_lut(cls, lut, deploy: DeployConfig, metrics, batch: int | None = None,
                 primitives=PRIMITIVES) -> CostModel:
        """Returns the cost model of ``deploy`` read from ``lut``; raises KeyError listing
        the missing entries when the LUT does not cover the deploy network."""
        batch = batch or deploy.batches[0]
        cm = cls(deploy, list(metrics), batch, list(primitives))
        keys = required_op_keys(deploy, primitives)
        for m in cm.metrics:
            missing = lut.missing(keys, batch, m, deploy.dtype)
            if missing:
                raise KeyError(m, missing)
        E, O = num_edges(deploy.steps), len(cm.primitives)
        for m in cm.metrics:
            def val(key, m=m):
                return lut.value(key, batch, m, deploy.dtype)
            t = {"normal": torch.zeros(E, O, dtype=torch.float64),
                 "reduce": torch.zeros(E, O, dtype=torch.float64)}
            for cell in deploy_plan(deploy):
                kind = "reduce" if cell.reduction else "normal"
                e = 0
                for node in range(deploy.steps):
                    for j in range(node + 2):
                        for o, op in enumerate(cm.primitives):
                            if op != "none":
                                t[kind][e, o] += val(edge_instance(cell, op, j).key)
                        e += 1
            cm.tables[m] = t
            # a calibrated LUT view adds its per-network overhead (ms) to the fixed part
            cm.fixed[m] = (sum(val(i.key) for i in network_fixed_instances(deploy))
                           + node_sums(lut, deploy, val)
                           + getattr(lut, "intercept", {}).get(m, 0.0))
            scale = fused_add_scale(lut) if m == "latency" else None
            if scale is not None:
                x = {k: torch.zeros(deploy.steps, dtype=torch.float64)
                     for k in ("normal", "reduce")}
                for cell in deploy_plan(deploy):
                    x["reduce" if cell.reduction else "normal"] += \
                        (scale - 1.0) * (val(node_add_instance(cell).key) or 0.0)
                cm.fused_extra[m] = x
        cm.epilogue = torch.tensor([float(OPS[p].add_epilogue) if p != "none" else 0.0
                                    for p in cm.primitives], dtype=torch.float64)
        cm.edge_factors = torch.tensor(
            [2.0 / (node + 2) for node in range(deploy.steps) for _ in range(node + 2)],
            dtype=torch.float64)
        E_ = num_edges(deploy.steps)
        uniform = torch.zeros(E_, O)
        for m in cm.metrics:
            cm.reference[m] = float(cm.expected(uniform, uniform)[m])
        return cm

    def op_probs(self, alphas: torch.Tensor) -> torch.Tensor:
        """Returns softmax(alpha) over the non-``none`` ops ([edges x ops], 0 for none)."""
        mask = torch.tensor([p == "none" for p in self.primitives])
        return torch.softmax(alphas.masked_fill(mask, float("-inf")), dim=-1)

    def edge_weight(self, betas: torch.Tensor | None) -> torch.Tensor:
        """Returns f_e: the expected survivals of each edge (see the module doc)."""
        if betas is None:
            return self.edge_factors
        return 2.0 * node_softmax(betas.double(), self.deploy.steps)

    def expected(self, alphas_normal, alphas_reduce, betas_normal=None,
                 betas_reduce=None) -> dict[str, torch.Tensor]:
        """Returns {metric: E[metric]} (0-dim float64 tensors in LUT units: ms, J, B),
        differentiable in the alphas (and betas)."""
        pn = self.op_probs(alphas_normal.double())
        pr = self.op_probs(alphas_reduce.double())
        fn, fr = self.edge_weight(betas_normal), self.edge_weight(betas_reduce)
        out = {}
        for m in self.metrics:
            t = self.tables[m]
            out[m] = (self.fixed[m] + (fn * (pn * t["normal"]).sum(1)).sum()
                      + (fr * (pr * t["reduce"]).sum(1)).sum())
            if m in self.fused_extra:
                x = self.fused_extra[m]
                out[m] = out[m] + (x["normal"] * self.fused_share(pn, fn)).sum() \
                    + (x["reduce"] * self.fused_share(pr, fr)).sum()
        return out

    def fused_share(self, probs: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Returns, per node [steps], the probability that the derived network fuses its
        sum: 1 - (1 - q)^2 with q the survival-weighted chance that a kept input's op
        ends in conv + BN (two inputs are kept per node)."""
        q = (probs * self.epilogue).sum(1)
        out, e = [], 0
        for node in range(self.deploy.steps):
            n = node + 2
            qbar = (f[e:e + n] / 2.0 * q[e:e + n]).sum()
            out.append(1.0 - (1.0 - qbar) ** 2)
            e += n
        return torch.stack(out)

    def expected_of_model(self, model) -> dict[str, torch.Tensor]:
        """Returns :meth:`expected` for a SearchNetwork's current parameters."""
        return self.expected(model.alphas_normal, model.alphas_reduce,
                             getattr(model, "betas_normal", None),
                             getattr(model, "betas_reduce", None))

    # ---- discrete networks --------------------------------------------------------------

    def edge_costs(self, genotype: Genotype, metric: str) -> list[tuple[str, int, float]]:
        """Returns (cell kind, edge position in the genotype, LUT cost summed over the
        cells of that kind) for every edge of the derived network."""
        t = self.tables[metric]
        out = []
        for kind in ("normal", "reduce"):
            for k, (op, j) in enumerate(getattr(genotype, kind)):
                e = _edge_index(k // 2, j)
                out.append((kind, k, float(t[kind][e, self.primitives.index(op)])))
        return out

    def genotype_cost(self, genotype: Genotype) -> dict[str, float]:
        """Returns {metric: LUT cost of the derived deploy network} (ms, J, B)."""
        out = {m: self.fixed[m] + sum(c for _, _, c in self.edge_costs(genotype, m))
               for m in self.metrics}
        for m, x in self.fused_extra.items():
            for kind in ("normal", "reduce"):
                for node, fused in enumerate(node_fuses(getattr(genotype, kind))):
                    if fused:
                        out[m] += float(x[kind][node])
        return out


def _edge_index(node: int, input_index: int) -> int:
    """Returns the position of edge (node, input) in the [edges x ops] alpha matrix."""
    return sum(2 + i for i in range(node)) + input_index


def node_sums(lut, deploy: DeployConfig, val) -> float:
    """Returns the cost of the deploy network's node sums (0 for LUTs without them), each
    at its measured standalone cost, as the plain sum counts them on every backend."""
    adds, _ = node_add_rule(lut)
    if not adds:
        return 0.0
    total = 0.0
    for cell in deploy_plan(deploy):
        v = val(node_add_instance(cell).key)
        total += deploy.steps * (v or 0.0)
    return total


def fused_add_scale(lut) -> float | None:
    """Returns the calibrated scale of the node sums a fusing backend folds into a conv
    epilogue (the ``fused_add`` coefficient), or None when ``lut`` is not a calibrated
    view, its backend does not fuse, or it has no node sums: they then count at their
    standalone LUT cost."""
    calib = getattr(lut, "calib", None)
    adds, fused = node_add_rule(lut)
    if calib is None or not (adds and fused) or "fused_add" not in calib.coef:
        return None
    return float(calib.coef["fused_add"])


def genotype_lut_cost(lut, deploy: DeployConfig, genotype: Genotype, metric: str = "latency",
                      batch: int | None = None) -> float | None:
    """Returns the LUT cost (ms, J or B) of the deploy network of ``genotype``: the sum of
    ``lut.value`` over its op instances, fixed parts included; None when an entry has no
    value for ``metric``."""
    batch = batch or deploy.batches[0]
    adds, _ = node_add_rule(lut)
    insts = network_instances(deploy, genotype, node_adds=adds)
    total = getattr(lut, "intercept", {}).get(metric, 0.0)   # calibrated LUT views only
    for inst in insts:
        v = lut.value(inst.key, batch, metric, deploy.dtype)
        if v is None:
            return None
        total += v
    scale = fused_add_scale(lut) if metric == "latency" else None
    if scale is not None:      # the fused sums (in insts at scale 1) at their own scale
        for inst in fused_node_adds(deploy, genotype):
            total += (scale - 1.0) * (lut.value(inst.key, batch, metric, deploy.dtype) or 0.0)
    return total


class CostObjective:
    """The cost term added to the validation loss of the architecture step.

    ``__call__(model)`` returns ``(penalty tensor, info)`` where info holds the expected
    cost of every metric in LUT units (``expected_latency`` ms, ...)."""

    def __init__(self, cost_model: CostModel, weight: float,
                 latency_target_ms: float | None = None):
        self.cm = cost_model
        self.weight = float(weight)
        self.latency_target_ms = latency_target_ms

    def penalty(self, expected: dict[str, torch.Tensor]) -> torch.Tensor:
        """Returns the weighted, normalised cost penalty (no unit) of expected costs."""
        total = torch.zeros((), dtype=torch.float64)
        for m, e in expected.items():
            if m == "latency" and self.latency_target_ms is not None:
                total = total + torch.relu(e / self.latency_target_ms - 1.0)
            else:
                total = total + e / self.cm.reference[m]
        return self.weight * total

    def __call__(self, model) -> tuple[torch.Tensor, dict]:
        exp = self.cm.expected_of_model(model)
        pen = self.penalty(exp).float()
        return pen, {f"expected_{m}": float(v.detach()) for m, v in exp.items()}


@dataclass
class RepairResult:
    """Outcome of :func:`repair_to_target`: the (possibly changed) genotype, its LUT
    latency in ms before and after, the swaps made, whether it meets the target, and the
    cheapest latency the space allows (ms)."""

    genotype: Genotype
    before_ms: float
    after_ms: float
    target_ms: float
    met: bool
    swaps: list[dict]
    lower_bound_ms: float
    message: str


def repair_to_target(genotype: Genotype, cost_model: CostModel, target_ms: float,
                     weights_normal: torch.Tensor, weights_reduce: torch.Tensor,
                     metric: str = "latency") -> RepairResult:
    """Returns the derived genotype made to meet a hard LUT-latency target, if possible.

    Greedy: while over target, take the chosen edge with the highest LUT cost (summed
    over the cells of its kind) that has a cheaper non-``none`` op, and replace its op
    by the cheaper op with the largest architecture weight; edges keep their inputs.
    Stops when the target is met or no edge can be made cheaper."""
    weights = {"normal": weights_normal.detach().double(),
               "reduce": weights_reduce.detach().double()}
    t = cost_model.tables[metric]
    edges = {"normal": list(genotype.normal), "reduce": list(genotype.reduce)}
    prims = cost_model.primitives
    cand_ops = [o for o, p in enumerate(prims) if p != "none"]

    def total():
        g = genotype._replace(normal=edges["normal"], reduce=edges["reduce"])
        return cost_model.genotype_cost(g)[metric]

    before = total()
    lower = cost_model.fixed[metric]
    for kind in ("normal", "reduce"):
        for k, (_, j) in enumerate(edges[kind]):
            e = _edge_index(k // 2, j)
            lower += min(float(t[kind][e, o]) for o in cand_ops)
    swaps = []
    cost = before
    while cost > target_ms:
        best = None
        for kind in ("normal", "reduce"):
            for k, (op, j) in enumerate(edges[kind]):
                e = _edge_index(k // 2, j)
                cur = float(t[kind][e, prims.index(op)])
                cheaper = [o for o in cand_ops if float(t[kind][e, o]) < cur]
                if cheaper and (best is None or cur > best[0]):
                    o = max(cheaper, key=lambda o: (float(weights[kind][e, o]), -o))
                    best = (cur, kind, k, o)
        if best is None:
            break
        cur, kind, k, o = best
        op, j = edges[kind][k]
        edges[kind][k] = (prims[o], j)
        cost = total()
        swaps.append({"cell": kind, "edge": k, "input": j, "from": op, "to": prims[o],
                      "saved": cur - float(t[kind][_edge_index(k // 2, j), o]),
                      "cost_after": cost})
    met = cost <= target_ms
    g = genotype._replace(normal=edges["normal"], reduce=edges["reduce"])
    unit = UNITS[metric]
    if met and not swaps:
        msg = f"derived network meets the target: {before:.3f} {unit} <= {target_ms:.3f} {unit}"
    elif met:
        msg = (f"derived network missed the target ({before:.3f} {unit} > {target_ms:.3f} "
               f"{unit}); repaired with {len(swaps)} op swap(s) to {cost:.3f} {unit}")
    else:
        msg = (f"could not meet the target {target_ms:.3f} {unit}: the derived network "
               f"costs {before:.3f} {unit}, the cheapest op on each of its edges gives "
               f"{cost:.3f} {unit} (lower bound with these edges {lower:.3f} {unit})")
    return RepairResult(g, before, cost, target_ms, met, swaps, lower, msg)
