"""ProxylessNAS search: binary-gate supernet, expected cost, latency losses, derivation.

The supernet is the deploy network itself (no proxy): the fixed stem, first block and
head of :mod:`nasbench.spaces.proxyless`, and one :class:`BinaryGateBlock` per
searchable block holding every candidate module of the op registry. The architecture
is one matrix ``alphas`` [blocks x candidates] (``zero`` masked out where a block has no
identity shortcut); p = softmax over the allowed candidates of a row.

* **Weight step** (:func:`weight_step`): one path per block is sampled from p and only
  that path runs, so activations and weight gradients are those of a single network.
* **Architecture step, binary gates** (:func:`binary_arch_step`, the paper's two-path
  mode): per block two paths are sampled from p without replacement, one is made
  active with the probabilities renormalised over the two; the block's output is
  ``g_a * op_a(x) + g_b * op_b(x)`` with binary gates g (1 for the active path, 0 for
  the other, whose output is computed without a graph). The gradient of the loss with
  respect to the gates gives the architecture gradient of the two involved alphas::

      dL/d alpha_i = sum_j dL/dg_j * p~_j * (delta_ij - p~_i),   p~ = softmax(alpha_a, alpha_b)

  then, after the Adam step, the two alphas are shifted together so that their
  softmax mass among all candidates is unchanged (``rescale_updated_arch_param`` of
  the ProxylessNAS code): only their relative weight moves. Weights are frozen in this
  step (no weight gradients are computed at all).
* **Architecture step, REINFORCE** (:func:`reinforce_arch_step`): ``rl_samples``
  networks are sampled and evaluated on the validation batch (no graph), reward
  ``acc x prod_m (ref_m / cost_m)^tradeoff`` with the LUT cost of each sampled network,
  gradient ``-(R - baseline) * sum_blocks log p(sample)``.

The expected cost (:class:`ProxylessCostModel`) is, for each LUT metric m,
``E[m] = fixed_m + sum_blocks sum_candidates p * LUT_m(candidate at block)`` with the
stem, first block and head as ``fixed_m``; it is differentiable in alphas and uses the
full softmax p (as the code's ``full``/``full_v2`` modes; two-path renormalisation
applies to the cross-entropy path only). ``zero`` contributes its measured LUT cost
(the identity pass-through, a few microseconds).

Losses (:class:`ProxylessObjective`), as ``add_regularization_loss`` of the code:

* ``mul#log``: ``alpha * CE * prod_m (log E[m] / log ref_m)^beta`` with latency in ms
  (the paper's unit), energy in mJ and memory in KiB, so that ``log ref > 0``;
* ``add#linear``: ``CE + lambda * sum_m (E[m] - ref_m) / ref_m``.

``ref`` of latency is ``--latency-target`` when given; otherwise, and for energy and
memory, it is E[m] under uniform alphas (so the loss has a scale without a target).
Note that in ``mul#log`` the reference is the constant factor ``(log ref)^-beta`` of the
whole loss: with Adam (invariant to the loss's scale) it does not change the search at
all, only the hard-target repair uses it. In ``add#linear`` it sets the strength of the
latency gradient (``lambda / ref``) against the cross-entropy's.

Derivation takes the argmax candidate of every block (:meth:`ProxylessSupernet.derive`);
:func:`repair_arch_to_target` makes it meet a hard LUT-latency target by greedy swaps.
A deliberate difference from the code: when ``zero`` is the active path its gate still
gets a gradient (the block outputs its input), where the code skips the update.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.ops import OPS, PROXYLESS_PRIMITIVES
from nasbench.predict.predictor import lut_cost
from nasbench.predict.table import CostTable, RepairResult
from nasbench.spaces.proxyless import (  # noqa: F401 - ProxylessArch, short_name re-exported
    ProxylessArch,
    ProxylessDeployConfig,
    ProxylessSpace,
    arch_instances,
    block_instance,
    block_plan,
    head_instances,
    network_fixed_instances,
    short_name,
    stem_instances,
)

UNITS = {"latency": "ms", "energy": "J", "memory": "B"}
#: mul#log evaluates log(E / scale): latency in ms (the paper), energy in mJ, memory KiB
LOG_SCALE = {"latency": 1.0, "energy": 1e-3, "memory": 1024.0}
LOG_UNITS = {"latency": "ms", "energy": "mJ", "memory": "KiB"}

# --------------------------------------------------------------------------------------
# supernet
# --------------------------------------------------------------------------------------


class BinaryGateBlock(nn.Module):
    """A searchable block: every candidate module (registry-built) and the path(s) the
    current binarisation selected. ``mode`` is ``"single"`` (only ``active`` runs) or
    ``"two"`` (active and inactive run, output gated by ``gates``)."""

    def __init__(self, candidates: list[str], c_in: int, c_out: int, stride: int):
        super().__init__()
        self.names = list(candidates)
        self.ops = nn.ModuleDict({n: OPS[n].build(c_in, c_out, stride, affine=True)
                                  for n in self.names})
        self.mode = "single"
        self.active = self.names[0]
        self.inactive: str | None = None
        self.gate_active: torch.Tensor | None = None
        self.gate_inactive: torch.Tensor | None = None

    def forward(self, x):
        if self.mode == "single":
            return self.ops[self.active](x)
        y = self.gate_active * self.ops[self.active](x)
        with torch.no_grad():
            other = self.ops[self.inactive](x)
        return y + self.gate_inactive * other


class ProxylessSupernet(nn.Module):
    """The over-parameterised ProxylessNAS network of ``deploy`` with binary gates.

    ``alphas`` [blocks x len(PROXYLESS_PRIMITIVES)] holds the architecture parameters;
    ``allowed`` (buffer, bool) masks ``zero`` where a block has no shortcut."""

    def __init__(self, deploy: ProxylessDeployConfig, arch_init_std: float = 1e-3):
        super().__init__()
        self.deploy = deploy
        self.primitives = list(PROXYLESS_PRIMITIVES)
        self.plan = block_plan(deploy)
        stem, first = stem_instances(deploy)
        mix, cls = head_instances(deploy)
        self.stem = stem.build()
        self.first = first.build()
        self.blocks = nn.ModuleList(BinaryGateBlock(g.candidates, g.c_in, g.c_out, g.stride)
                                    for g in self.plan)
        self.feature_mix = mix.build()
        self.classifier = cls.build()
        allowed = torch.tensor([[op in g.candidates for op in self.primitives]
                                for g in self.plan])
        self.register_buffer("allowed", allowed)
        self.alphas = nn.Parameter(torch.randn(len(self.plan), len(self.primitives))
                                   * arch_init_std)
        self._gates: torch.Tensor | None = None
        self._involved: torch.Tensor | None = None

    # ---- parameters ---------------------------------------------------------------------

    def weights(self) -> list[nn.Parameter]:
        """Returns the weight parameters (everything but ``alphas``)."""
        return [p for n, p in self.named_parameters() if n != "alphas"]

    def arch_parameters(self) -> list[nn.Parameter]:
        """Returns ``[alphas]``."""
        return [self.alphas]

    def probs(self, alphas: torch.Tensor | None = None) -> torch.Tensor:
        """Returns p = softmax(alpha) over each block's allowed candidates [blocks x ops]
        (0 where not allowed); differentiable."""
        a = self.alphas if alphas is None else alphas
        return torch.softmax(a.masked_fill(~self.allowed, float("-inf")), dim=-1)

    # ---- binarisation -------------------------------------------------------------------

    def sample_single(self) -> list[int]:
        """Samples one path per block from p (torch's global RNG) and makes it the only
        one that runs; returns the sampled candidate indices."""
        with torch.no_grad():
            idx = torch.multinomial(self.probs(), 1).squeeze(1).tolist()
        for blk, i in zip(self.blocks, idx, strict=True):
            blk.mode, blk.active, blk.inactive = "single", self.primitives[i], None
        self._gates = self._involved = None
        return idx

    def set_path(self, indices: list[int]) -> None:
        """Makes candidate ``indices[b]`` the only path of block b."""
        for blk, i in zip(self.blocks, indices, strict=True):
            blk.mode, blk.active, blk.inactive = "single", self.primitives[i], None

    def sample_two(self) -> torch.Tensor:
        """Samples two paths per block from p without replacement, picks the active one
        with the probabilities renormalised over the two, and sets binary gates (a
        leaf tensor [blocks x ops] requiring grad: 1 at the active path, 0 elsewhere);
        returns the involved indices [blocks x 2] (active first)."""
        with torch.no_grad():
            p = self.probs()
            pair = torch.multinomial(p, 2, replacement=False)          # [B, 2]
            slice_p = torch.softmax(self.alphas.gather(1, pair), dim=1)
            first = torch.multinomial(slice_p, 1).squeeze(1)           # 0 or 1
            active = pair.gather(1, first.unsqueeze(1)).squeeze(1)
            inactive = pair.gather(1, (1 - first).unsqueeze(1)).squeeze(1)
            involved = torch.stack([active, inactive], dim=1)
            gates = torch.zeros_like(self.alphas)
            gates.scatter_(1, active.unsqueeze(1), 1.0)
        gates.requires_grad_(True)
        for b, blk in enumerate(self.blocks):
            a, i = int(involved[b, 0]), int(involved[b, 1])
            blk.mode, blk.active, blk.inactive = "two", self.primitives[a], self.primitives[i]
            blk.gate_active, blk.gate_inactive = gates[b, a], gates[b, i]
        self._gates, self._involved = gates, involved
        return involved

    def set_binary_gate_grad(self) -> None:
        """Adds the binary-gate estimate of dL/d alpha (two-path mode, see the module
        doc) to ``alphas.grad``; call after ``backward`` of a :meth:`sample_two` pass."""
        if self._gates is None or self._gates.grad is None:
            raise RuntimeError("no binary-gate gradient: run sample_two, forward, backward")
        inv = self._involved
        g = self._gates.grad.gather(1, inv)                             # dL/dg  [B, 2]
        with torch.no_grad():
            ps = torch.softmax(self.alphas.gather(1, inv), dim=1)       # p~     [B, 2]
            grad_inv = ps * (g - (g * ps).sum(1, keepdim=True))         # [B, 2]
            if self.alphas.grad is None:
                self.alphas.grad = torch.zeros_like(self.alphas)
            self.alphas.grad.scatter_add_(1, inv, grad_inv.to(self.alphas.grad.dtype))
        self._old_involved_alphas = self.alphas.detach().gather(1, inv).clone()

    def rescale_involved(self) -> None:
        """Shifts the two involved alphas of every block by one offset so that their
        total softmax mass (sum of exp) equals that before the update."""
        inv = self._involved
        with torch.no_grad():
            new = self.alphas.gather(1, inv)
            offset = torch.logsumexp(new, 1) - torch.logsumexp(self._old_involved_alphas, 1)
            self.alphas.scatter_(1, inv, new - offset.unsqueeze(1))

    # ---- forward / derivation -----------------------------------------------------------

    def forward(self, x):
        x = self.first(self.stem(x))
        for blk in self.blocks:
            x = blk(x)
        return self.classifier(self.feature_mix(x))

    def active_indices(self) -> list[int]:
        """Returns the index of the active path of every block."""
        return [self.primitives.index(b.active) for b in self.blocks]

    def derive(self) -> ProxylessArch:
        """Returns the argmax candidate of every block (``zero`` only where allowed)."""
        with torch.no_grad():
            idx = self.probs().argmax(1).tolist()
        return ProxylessArch(tuple(self.primitives[i] for i in idx), self.deploy.layout)

    def entropy(self) -> float:
        """Returns the mean entropy of the blocks' distributions (nats)."""
        with torch.no_grad():
            p = self.probs()
            return float(-(p * torch.log(p.clamp_min(1e-12))).sum(1).mean())


@contextlib.contextmanager
def frozen(params):
    """Temporarily sets ``requires_grad=False`` on ``params`` (architecture steps)."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# --------------------------------------------------------------------------------------
# expected cost
# --------------------------------------------------------------------------------------


class ProxylessCostModel:
    """The ProxylessNAS view of the space's :class:`~nasbench.predict.table.CostTable`:
    ``tables[m]`` [blocks x ops] float64 in LUT units (0 where a candidate is not
    allowed), ``allowed``, ``fixed[m]`` stem + first block + head, ``reference[m]`` E[m]
    under uniform alphas."""

    def __init__(self, table: CostTable):
        self.table, self.space = table, table.space
        self.deploy, self.metrics, self.batch = self.space.deploy, table.metrics, table.batch
        self.primitives, self.allowed = list(table.candidates), table.allowed
        self.tables, self.fixed, self.reference = table.tables, table.fixed, table.reference

    @classmethod
    def from_lut(cls, lut, deploy: ProxylessDeployConfig, metrics,
                 batch: int | None = None) -> ProxylessCostModel:
        """Returns the cost model of ``deploy`` read from ``lut``; raises
        ``KeyError(metric, missing full keys)`` when the LUT does not cover it."""
        return cls(CostTable.from_lut(ProxylessSpace(deploy), lut, metrics, batch))

    def probs(self, alphas: torch.Tensor) -> torch.Tensor:
        """Returns softmax(alpha) over each block's allowed candidates (float64)."""
        return self.table.probs(alphas)

    def expected(self, alphas: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {metric: E[metric]} (0-dim float64 tensors in LUT units: ms, J, B),
        differentiable in ``alphas``."""
        return self.table.expected(alphas)

    def index_cost(self, indices: list[int]) -> dict[str, float]:
        """Returns {metric: LUT cost} of the network with candidate ``indices[b]`` at
        block b (ms, J, B)."""
        return self.table.picks_cost([(b, self.primitives[i]) for b, i in enumerate(indices)])

    def arch_cost(self, arch: ProxylessArch) -> dict[str, float]:
        """Returns {metric: LUT cost of ``arch``'s network} (ms, J, B)."""
        return self.table.cost(arch)

    def block_costs(self, arch: ProxylessArch, metric: str = "latency") -> list[float]:
        """Returns the LUT cost of every block of ``arch`` (LUT units)."""
        return self.table.pick_costs(self.space.picks(arch), metric)

    def bounds(self, metric: str = "latency") -> tuple[float, float]:
        """Returns (cheapest, dearest) LUT cost of any network of the space."""
        return self.table.bounds(metric)


def arch_lut_cost(lut, deploy: ProxylessDeployConfig, arch: ProxylessArch,
                  metric: str = "latency", batch: int | None = None) -> float | None:
    """Returns the LUT cost (ms, J or B) of ``arch``'s network: the sum of ``lut.value``
    over its op instances, fixed parts included; None when an entry lacks ``metric``."""
    return lut_cost(ProxylessSpace(deploy), lut, arch, metric, batch)


# --------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------


class ProxylessObjective:
    """The ProxylessNAS loss of the architecture step (see the module doc) and the
    REINFORCE reward. ``refs[m]`` is the reference of each cost metric in LUT units."""

    def __init__(self, cost_model: ProxylessCostModel | None, form: str = "mul#log",
                 alpha: float = 0.2, beta: float = 0.3, lam: float = 0.1,
                 latency_target_ms: float | None = None, tradeoff: float = 0.1,
                 metrics: list[str] | None = None):
        """``metrics``: the cost metrics the loss uses (default: all of the cost model's;
        the others are only reported). Raises ValueError for an unknown form or, with
        mul#log, a reference not above 1 in the log unit (1 ms, 1 mJ, 1 KiB)."""
        if form not in ("mul#log", "add#linear"):
            raise ValueError(f"unknown latency loss form {form!r}")
        self.cm, self.form = cost_model, form
        self.alpha, self.beta, self.lam, self.tradeoff = alpha, beta, lam, tradeoff
        self.refs: dict[str, float] = {}
        if cost_model is not None:
            for m in (cost_model.metrics if metrics is None else metrics):
                self.refs[m] = (latency_target_ms if m == "latency" and latency_target_ms
                                else cost_model.reference[m])
        if form == "mul#log":
            for m, r in self.refs.items():
                if not r / LOG_SCALE[m] > 1.0:
                    raise ValueError(f"mul#log needs a {m} reference above 1 "
                                     f"{LOG_UNITS[m]} (log ref > 0), got {r:.4g} "
                                     f"{UNITS[m]}; use add#linear")
                lo = cost_model.bounds(m)[0]
                if not lo / LOG_SCALE[m] > 1.0:
                    raise ValueError(f"mul#log needs E[{m}] above 1 {LOG_UNITS[m]} (log E "
                                     f"> 0), but the cheapest network of the space costs "
                                     f"{lo:.4g} {UNITS[m]}; use add#linear")

    @property
    def metrics(self) -> list[str]:
        return list(self.refs)

    def loss(self, ce: torch.Tensor, expected: dict[str, torch.Tensor]) -> torch.Tensor:
        """Returns the loss of cross-entropy ``ce`` and expected costs (LUT units)."""
        if not self.refs:
            return ce
        if self.form == "mul#log":
            factor = torch.ones((), dtype=torch.float64)
            for m, r in self.refs.items():
                s = LOG_SCALE[m]
                factor = factor * (torch.log(expected[m] / s) / math.log(r / s)) ** self.beta
            return self.alpha * ce * factor.to(ce.dtype)
        reg = torch.zeros((), dtype=torch.float64)
        for m, r in self.refs.items():
            reg = reg + (expected[m] - r) / r
        return ce + (self.lam * reg).to(ce.dtype)

    def reward(self, acc: float, costs: dict[str, float]) -> float:
        """Returns the REINFORCE reward ``acc x prod_m (ref_m / cost_m)^tradeoff``
        (``acc`` a fraction)."""
        r = acc
        for m, ref in self.refs.items():
            r *= (ref / costs[m]) ** self.tradeoff
        return r


# --------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------


def weight_step(net: ProxylessSupernet, opt: torch.optim.Optimizer, x, y,
                grad_clip: float | None = None, label_smoothing: float = 0.0,
                forward: nn.Module | None = None):
    """One weight step on a sampled single path; returns (loss, logits). Unused paths
    keep ``grad=None``, so the optimiser neither decays nor moves them. ``forward``: the
    module the forward runs through when it is not ``net`` (its data-parallel wrapper,
    :func:`nasbench.distributed.data_parallel`)."""
    net.train()
    net.sample_single()
    opt.zero_grad(set_to_none=True)
    logits = (forward or net)(x)
    loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_([p for p in net.weights() if p.grad is not None], grad_clip)
    opt.step()
    return float(loss.detach()), logits.detach()


def binary_arch_step(net: ProxylessSupernet, objective: ProxylessObjective,
                     arch_opt: torch.optim.Optimizer, xv, yv, reduce=None) -> dict:
    """One architecture step with two-path binary gates on a validation batch; returns
    {"loss", "val_loss" (CE), "val_correct", "expected_<metric>"}. ``reduce``
    (data-parallel runs, :func:`nasbench.distributed.average_grads`) turns the
    alpha gradient of this batch slice into the whole batch's."""
    net.train()
    arch_opt.zero_grad(set_to_none=True)
    net.sample_two()
    with frozen(net.weights()):
        logits = net(xv)
        ce = F.cross_entropy(logits, yv)
        exp = objective.cm.expected(net.alphas) if objective.cm else {}
        loss = objective.loss(ce, exp)
        loss.backward()
    net.set_binary_gate_grad()
    if reduce is not None:
        net.alphas.grad = reduce([net.alphas.grad], yv.shape[0])[0]
    arch_opt.step()
    net.rescale_involved()
    net._gates = None
    info = {"loss": float(loss.detach()), "val_loss": float(ce.detach()),
            "val_correct": int((logits.detach().argmax(1) == yv).sum())}
    info.update({f"expected_{m}": float(v.detach()) for m, v in exp.items()})
    return info


def reinforce_arch_step(net: ProxylessSupernet, objective: ProxylessObjective,
                        arch_opt: torch.optim.Optimizer, xv, yv, samples: int,
                        baseline: dict, baseline_decay: float = 0.99,
                        reduce=None) -> dict:
    """One REINFORCE architecture step: ``samples`` sampled networks evaluated on the
    validation batch, reward :meth:`ProxylessObjective.reward` with their LUT cost;
    ``baseline`` ({"value": float | None}) is updated in place as the code does
    (``b += decay * (mean reward - b)``). Returns {"loss", "val_loss", "val_correct",
    "reward", "baseline"} (val figures of the last sample). ``reduce`` (data-parallel
    runs, :func:`nasbench.distributed.average_grads`) makes each sample's accuracy
    that of the whole batch from this rank's slice."""
    net.train()
    rewards, logps = [], []
    ce = correct = 0.0
    logp_all = torch.log(net.probs().clamp_min(1e-30))
    for _ in range(samples):
        idx = net.sample_single()
        with torch.no_grad():
            logits = net(xv)
        ce = float(F.cross_entropy(logits, yv))
        correct = int((logits.argmax(1) == yv).sum())
        acc = correct / yv.shape[0]
        if reduce is not None:
            acc = float(reduce([torch.tensor([acc], dtype=torch.float64)], yv.shape[0])[0])
        costs = objective.cm.index_cost(idx) if objective.cm else {}
        rewards.append(objective.reward(acc, costs))
        logps.append(logp_all[torch.arange(len(idx)), torch.tensor(idx)].sum())
    mean = sum(rewards) / samples
    b = baseline.get("value")
    baseline["value"] = mean if b is None else b + baseline_decay * (mean - b)
    arch_opt.zero_grad(set_to_none=True)
    loss = -sum((r - baseline["value"]) * lp for r, lp in zip(rewards, logps,
                                                              strict=True)) / samples
    loss.backward()
    arch_opt.step()
    return {"loss": float(loss.detach()), "val_loss": ce, "val_correct": correct,
            "reward": mean, "baseline": baseline["value"]}


# --------------------------------------------------------------------------------------
# hard target
# --------------------------------------------------------------------------------------


#: the outcome of :func:`repair_arch_to_target` (``.arch`` is the result)
ArchRepair = RepairResult


def repair_arch_to_target(arch: ProxylessArch, cost_model: ProxylessCostModel,
                          target: float, probs: torch.Tensor,
                          metric: str = "latency") -> RepairResult:
    """Returns ``arch`` made to meet a hard LUT ``metric`` target, if the space allows
    (the shared greedy :meth:`~nasbench.predict.table.CostTable.repair`)."""
    return cost_model.table.repair(arch, target, probs, metric)


__all__ = ["ProxylessArch", "ProxylessSupernet", "BinaryGateBlock", "ProxylessCostModel",
           "ProxylessObjective", "ArchRepair", "weight_step", "binary_arch_step",
           "reinforce_arch_step", "repair_arch_to_target", "arch_lut_cost", "frozen",
           "short_name"]
