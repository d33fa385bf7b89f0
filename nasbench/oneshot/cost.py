"""The differentiable expected cost of the deploy network, and the cost objectives.

Expected cost (FBNet / ProxylessNAS style), for each metric m (latency ms, energy J,
memory bytes) of the LUT, of the network you will deploy (a :class:`DeployConfig`, not
the proxy search network)::

    E[m] = fixed_m + sum_{normal cells} sum_edges f_e * sum_ops p_{e,o} * LUT_m(o, cell, e)
                   + sum_{reduce cells} (same with the reduce weights)

* ``fixed_m`` is the architecture-independent part (stem, each cell's two input
  preprocessing ops, head), so E[m] is comparable with a whole-network prediction.
* ``p_{e,o}`` is softmax(alpha_e) over the ops the derivation can keep: in the DARTS
  space ``none`` is masked in both (the DARTS rule never keeps it, so its zero cost must
  not lower E[m] without changing the derived network); on nb201 the derivation keeps
  ``none`` (within a connected cell), so it is a candidate of E[m] at its own cost.
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
* target forms (``latency_target_ms``, :data:`TARGET_FORMS`): the hinge
  ``CE + weight * max(0, E[lat]/target - 1)`` (only the excess), TuNAS's absolute
  ``CE + weight * |E[lat]/target - 1|`` (undershoot costs too) or ProxylessNAS/FBNet's
  multiplicative ``CE * (E[lat]/target)^weight``; other metrics keep the penalty form.
* hard target: after derivation, :func:`repair_to_target` swaps ops of the derived
  network for cheaper ones until the LUT latency meets the target, or says it cannot.
"""

from __future__ import annotations

import torch

from nasbench.genotypes import Genotype
from nasbench.ops import PRIMITIVES
from nasbench.predict.calibration import fused_add_scale  # noqa: F401 - re-exported
from nasbench.predict.predictor import lut_cost
from nasbench.predict.table import UNITS, CostTable, RepairResult  # noqa: F401 - re-exported
from nasbench.spaces.darts import DartsSpace, DeployConfig, node_fuses  # noqa: F401
from nasbench.spaces.darts_supernet import node_softmax


class CostModel:
    """The DARTS view of the space's :class:`~nasbench.predict.table.CostTable`: the
    normal and reduce alphas [edges x ops] are the table's slot logits, the edge factors
    (or PC-DARTS's 2 x softmax(beta) per node) its slot weights.

    ``fixed[m]``: float; ``reference[m]``: E[m] under uniform alphas/betas. ``metrics``
    (default: the table's) are those :meth:`expected` returns."""

    def __init__(self, table: CostTable, metrics: list[str] | None = None):
        self.table, self.space = table, table.space
        self.deploy, self.batch = self.space.deploy, table.batch
        self.metrics = list(table.metrics if metrics is None else metrics)
        self.primitives = list(table.candidates)
        self.fixed, self.reference = table.fixed, table.reference
        self.edges = len(table.weights) // 2
        # node sums a fusing backend folds into a conv epilogue (calibrated LUTs only)
        self.fused_extra = table.extra

    @classmethod
    def from_lut(cls, lut, deploy: DeployConfig, metrics, batch: int | None = None,
                 primitives=PRIMITIVES) -> CostModel:
        """Returns the cost model of ``deploy`` read from ``lut``; raises KeyError listing
        the missing entries when the LUT does not cover the deploy network."""
        return cls(CostTable.from_lut(DartsSpace(deploy), lut, metrics, batch))

    def weights(self, betas_normal=None, betas_reduce=None) -> torch.Tensor | None:
        """Returns the slot weights of PC-DARTS's betas (None: the space's factors)."""
        if betas_normal is None:
            return None
        steps = self.deploy.steps
        return 2.0 * torch.cat([node_softmax(betas_normal.double(), steps),
                                node_softmax(betas_reduce.double(), steps)])

    def expected(self, alphas_normal, alphas_reduce, betas_normal=None,
                 betas_reduce=None) -> dict[str, torch.Tensor]:
        """Returns {metric: E[metric]} (0-dim float64 tensors in LUT units: ms, J, B),
        differentiable in the alphas (and betas)."""
        exp = self.table.expected(torch.cat([alphas_normal, alphas_reduce]),
                                  self.weights(betas_normal, betas_reduce))
        return {m: exp[m] for m in self.metrics}

    def expected_of_model(self, model) -> dict[str, torch.Tensor]:
        """Returns :meth:`expected` for a supernet's current parameters (any space's:
        its ``slot_logits()`` and ``slot_weights()``)."""
        w = model.slot_weights()
        exp = self.table.expected(model.slot_logits(), None if w is None else w.double())
        return {m: exp[m] for m in self.metrics}

    def edge_costs(self, genotype: Genotype, metric: str) -> list[tuple[str, int, float]]:
        """Returns (cell kind, edge position in the genotype, LUT cost summed over the
        cells of that kind) for every edge of the derived network."""
        costs = self.table.pick_costs(self.space.picks(genotype), metric)
        n = len(genotype.normal)
        return [("normal" if i < n else "reduce", i % n, c) for i, c in enumerate(costs)]

    def genotype_cost(self, genotype: Genotype) -> dict[str, float]:
        """Returns {metric: LUT cost of the derived deploy network} (ms, J, B)."""
        return self.table.cost(genotype)


def genotype_lut_cost(lut, deploy: DeployConfig, genotype: Genotype, metric: str = "latency",
                      batch: int | None = None) -> float | None:
    """Returns the LUT cost (ms, J or B) of the deploy network of ``genotype`` (see
    :func:`nasbench.predict.predictor.lut_cost`); None when an entry lacks ``metric``."""
    return lut_cost(DartsSpace(deploy), lut, genotype, metric, batch)


#: the forms of the latency-target term (``target_form``; ``cost_weight`` is w / beta):
#: ``hinge``    CE + w * max(0, E[lat]/T - 1)       (only the excess; the default before)
#: ``absolute`` CE + w * |E[lat]/T - 1|             (TuNAS: undershooting costs too)
#: ``multiplicative`` CE * (E[lat]/T)^w             (ProxylessNAS / FBNet: scales CE)
TARGET_FORMS = ("hinge", "absolute", "multiplicative")


class CostObjective:
    """The cost term added to the validation loss of the architecture step.

    Without a latency target every metric m adds ``weight * E[m] / ref_m`` (the penalty
    form: a weight of 1 trades one nat of validation cross-entropy for a network twice
    as expensive as the average one of the space). With a target T, latency's term is
    the chosen ``form`` of :data:`TARGET_FORMS` in r = E[lat]/T: with ``hinge`` or
    ``absolute`` a weight of 1 costs one nat per 100 % of T off the target; with
    ``multiplicative`` the cross-entropy is multiplied by r^weight (a network 10 % over
    the target at weight 0.6 raises CE by 6 %).

    ``__call__(model, ce)`` returns ``(penalty tensor, info)``: the penalty is
    differentiable in the architecture parameters; info holds the expected cost of every
    metric in LUT units (``expected_latency`` ms, ...) and ``ce_factor``, the factor by
    which the cross-entropy's own gradient is scaled (1 except for ``multiplicative``)."""

    def __init__(self, cost_model: CostModel, weight: float,
                 latency_target_ms: float | None = None, form: str = "hinge"):
        if form not in TARGET_FORMS:
            raise ValueError(f"target form must be one of {', '.join(TARGET_FORMS)}, "
                             f"not {form!r}")
        self.cm = cost_model
        self.weight = float(weight)
        self.latency_target_ms = latency_target_ms
        self.form = form

    def terms(self, expected: dict[str, torch.Tensor], ce: float = 0.0
              ) -> tuple[torch.Tensor, float]:
        """Returns (the weighted cost term (no unit, differentiable), the factor on the
        cross-entropy ``ce`` (nats) of the step)."""
        total = torch.zeros((), dtype=torch.float64)
        factor = 1.0
        for m, e in expected.items():
            if m == "latency" and self.latency_target_ms is not None:
                r = e / self.latency_target_ms
                if self.form == "multiplicative":
                    f = r ** self.weight
                    # CE * f = CE + CE * (f - 1): CE's gradient scaled by f, plus this
                    total = total + float(ce) * (f - 1.0)
                    factor *= float(f.detach())
                elif self.form == "absolute":
                    total = total + self.weight * torch.abs(r - 1.0)
                else:
                    total = total + self.weight * torch.relu(r - 1.0)
            else:
                total = total + self.weight * e / self.cm.reference[m]
        return total, factor

    def penalty(self, expected: dict[str, torch.Tensor], ce: float = 0.0) -> torch.Tensor:
        """Returns the weighted, normalised cost term (no unit) of expected costs."""
        return self.terms(expected, ce)[0]

    def costs(self, model) -> tuple[dict[str, torch.Tensor], dict]:
        """Returns (the costs the term is computed on, info). Without a target: the
        expected costs of the mixture. With a latency target, latency is the cost of
        the architecture the derivation keeps now (``model.genotype()``), with the
        mixture's gradient (straight-through): the target is judged on what will be
        deployed, so a mixture that sits at the target while its argmax is far below it
        (or above) is not mistaken for a network that meets it. Info:
        ``expected_<m>`` (the mixture's, LUT units) and ``derived_latency`` (ms)."""
        exp = self.cm.expected_of_model(model)
        info = {f"expected_{m}": float(v.detach()) for m, v in exp.items()}
        if self.latency_target_ms is None or "latency" not in exp:
            return exp, info
        with torch.no_grad():
            derived = self.cm.genotype_cost(model.genotype())["latency"]
        soft = exp["latency"]
        info["derived_latency"] = float(derived)
        return {**exp, "latency": soft + (derived - soft.detach())}, info

    def __call__(self, model, ce: float = 0.0) -> tuple[torch.Tensor, dict]:
        costs, info = self.costs(model)
        pen, factor = self.terms(costs, ce)
        return pen.float(), {**info, "ce_factor": factor}


def beta_regulariser(model) -> torch.Tensor:
    """Returns beta-DARTS's regulariser of a supernet's architecture parameters (Ye et
    al., CVPR 2022): the mean over slots of logsumexp(alpha) (no unit). Its gradient is
    softmax(alpha): it lowers every alpha in proportion to its weight, so no op's logit
    runs away (the parameter-free collapse), while the ranking inside an edge is left to
    the data."""
    a = model.slot_logits()
    return torch.logsumexp(a, -1).mean()


def repair_to_target(genotype: Genotype, cost_model: CostModel, target_ms: float,
                     weights_normal: torch.Tensor, weights_reduce: torch.Tensor,
                     metric: str = "latency") -> RepairResult:
    """Returns the derived genotype made to meet a hard LUT-latency target, if possible
    (the shared greedy :meth:`~nasbench.predict.table.CostTable.repair`; edges keep
    their inputs; ``.genotype`` is the result)."""
    scores = torch.cat([weights_normal.detach(), weights_reduce.detach()])
    return cost_model.table.repair(genotype, target_ms, scores, metric)


def required_op_keys(deploy: DeployConfig) -> list[str]:
    """Returns the LUT op keys the expected cost of ``deploy`` reads (no ``none``)."""
    space = DartsSpace(deploy)
    keys = [i.key for i in space.fixed_instances()]
    for s, slot in enumerate(space.slots()):
        for op in slot.candidates:
            keys += [i.key for i in space.slot_instances(s, op)]
    return list(dict.fromkeys(keys))


#: MnasNet's soft-target exponent w in acc x (cost/target)^w (Tan et al., CVPR 2019)
SOFT_EXPONENT = -0.07


def mnasnet_reward(accuracy: float, cost: float | None, target: float | None,
                   hard: bool, exponent: float = SOFT_EXPONENT) -> float:
    """Returns MnasNet's reward ``accuracy x (cost/target)^w`` (the accuracy's unit):
    w = ``exponent`` (soft target), or 0 when ``cost <= target`` and -1 over it (hard
    target); the accuracy alone without a target or a cost."""
    if target is None or cost is None:
        return accuracy
    w = (0.0 if cost <= target else -1.0) if hard else exponent
    return accuracy * (cost / target) ** w
