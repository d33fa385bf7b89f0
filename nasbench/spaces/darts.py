"""Geometry of the DARTS CIFAR networks and enumeration of their op instances.

:func:`cell_plan` is the single description of how cells are stacked (channels,
resolution, reduction positions). The search network, the evaluation network, the
LUT enumerator and the differentiable cost model all read it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from ..genotypes import Genotype, validate_genotype
from ..ops import OPS, PRIMITIVES
from .base import SearchSpace, Slot, register_space


@dataclass(frozen=True)
class DeployConfig:
    """The network whose cost is measured and optimised (defaults: the DARTS evaluation
    network on CIFAR-10: C=36, 20 cells, 32x32 input)."""

    channels: int = 36
    layers: int = 20
    input_size: int = 32
    in_channels: int = 3
    num_classes: int = 10
    steps: int = 4          # intermediate nodes per cell
    multiplier: int = 4     # states concatenated into the cell output
    stem_multiplier: int = 3
    batches: tuple[int, ...] = (1,)
    dtype: str = "float32"

    def describe(self) -> dict:
        """Returns the fields that identify the deploy network in a LUT's provenance."""
        return {"space": "darts", "channels": self.channels, "layers": self.layers,
                "input_size": self.input_size, "in_channels": self.in_channels,
                "num_classes": self.num_classes, "steps": self.steps,
                "multiplier": self.multiplier, "stem_multiplier": self.stem_multiplier}


@dataclass(frozen=True)
class CellGeometry:
    """One cell of a DARTS network: input channels of its two inputs, its own width C,
    the resolution of its inputs (h) and whether it and its predecessor reduce."""

    index: int
    c_prev_prev: int
    c_prev: int
    c: int
    h_prev_prev: int
    h_in: int
    reduction: bool
    reduction_prev: bool

    @property
    def h_out(self) -> int:
        return -(-self.h_in // 2) if self.reduction else self.h_in


def reduction_layers(layers: int) -> tuple[int, int]:
    """Returns the indices of the two reduction cells (at 1/3 and 2/3 of the depth)."""
    return layers // 3, 2 * layers // 3


def cell_plan(channels: int, layers: int, input_size: int, multiplier: int = 4,
              stem_multiplier: int = 3) -> list[CellGeometry]:
    """Returns the geometry of every cell of a DARTS CIFAR network, in order."""
    c_curr = stem_multiplier * channels
    c_pp, c_p, c_curr = c_curr, c_curr, channels
    h_pp = h_p = input_size
    reduction_prev = False
    plan = []
    for i in range(layers):
        reduction = i in reduction_layers(layers)
        if reduction:
            c_curr *= 2
        g = CellGeometry(i, c_pp, c_p, c_curr, h_pp, h_p, reduction, reduction_prev)
        plan.append(g)
        reduction_prev = reduction
        c_pp, c_p = c_p, multiplier * c_curr
        h_pp, h_p = h_p, g.h_out
    return plan


@dataclass(frozen=True)
class OpInstance:
    """One distinct operation placement: op name, input (c_in, h, w), c_out, stride.

    ``attrs`` carries extra key fields for spaces that need them (e.g. expansion).
    """

    op: str
    c_in: int
    c_out: int
    h: int
    w: int
    stride: int = 1
    attrs: tuple = field(default=())

    @property
    def key(self) -> str:
        """Returns the LUT key of this instance without batch and dtype."""
        extra = "".join(f"/{k}{v}" for k, v in self.attrs)
        return f"{self.op}/c{self.c_in}-{self.c_out}/h{self.h}w{self.w}/s{self.stride}{extra}"

    def output_shape(self) -> tuple[int, int, int]:
        """Returns (C, H, W) of the op's output, by the registry's shape rule."""
        return OPS[self.op].shape(self.c_in, self.c_out, self.h, self.w, self.stride)

    def build(self):
        """Returns a fresh module of this instance (registry constructor)."""
        return OPS[self.op].build(self.c_in, self.c_out, self.stride, affine=True)


def edge_stride(cell: CellGeometry, input_index: int) -> int:
    """Returns the stride of an edge reading state ``input_index`` of ``cell``."""
    return 2 if cell.reduction and input_index < 2 else 1


def edge_instance(cell: CellGeometry, op: str, input_index: int) -> OpInstance:
    """Returns the op instance an edge of ``cell`` reading ``input_index`` places."""
    stride = edge_stride(cell, input_index)
    # inputs 0 and 1 are at the cell's input resolution; intermediate states of a
    # reduction cell are already reduced
    h = cell.h_in if input_index < 2 else cell.h_out
    return OpInstance(op, cell.c, cell.c, h, h, stride)


def cell_fixed_instances(cell: CellGeometry) -> list[OpInstance]:
    """Returns the two preprocessing ops of a cell (independent of the architecture)."""
    if cell.reduction_prev:
        pre0 = OpInstance("factorized_reduce", cell.c_prev_prev, cell.c,
                          cell.h_prev_prev, cell.h_prev_prev, 2)
    else:
        pre0 = OpInstance("relu_conv_bn_1x1", cell.c_prev_prev, cell.c,
                          cell.h_prev_prev, cell.h_prev_prev, 1)
    pre1 = OpInstance("relu_conv_bn_1x1", cell.c_prev, cell.c, cell.h_in, cell.h_in, 1)
    return [pre0, pre1]


def node_add_instance(cell: CellGeometry) -> OpInstance:
    """Returns the sum of a node of ``cell`` (both operands at the cell's output size)."""
    return OpInstance("node_add", 2 * cell.c, cell.c, cell.h_out, cell.h_out, 1)


def network_fixed_instances(cfg: DeployConfig) -> list[OpInstance]:
    """Returns every architecture-independent op instance of the deploy network, with
    repetitions (stem, each cell's preprocessing, head)."""
    plan = cell_plan(cfg.channels, cfg.layers, cfg.input_size, cfg.multiplier,
                     cfg.stem_multiplier)
    out = [OpInstance("stem", cfg.in_channels, cfg.stem_multiplier * cfg.channels,
                      cfg.input_size, cfg.input_size, 1)]
    for cell in plan:
        out += cell_fixed_instances(cell)
    last = plan[-1]
    out.append(OpInstance("gap_linear", cfg.multiplier * last.c, cfg.num_classes,
                          last.h_out, last.h_out, 1))
    return out


def network_edge_instances(cfg: DeployConfig, ops: list[str] | None = None) -> list[OpInstance]:
    """Returns every (cell, edge, candidate op) instance of the deploy network, with
    repetitions, in cell / edge / op order."""
    ops = ops or PRIMITIVES
    out = []
    for cell in cell_plan(cfg.channels, cfg.layers, cfg.input_size, cfg.multiplier,
                          cfg.stem_multiplier):
        for node in range(cfg.steps):
            for j in range(node + 2):
                out += [edge_instance(cell, op, j) for op in ops]
    return out


def enumerate_instances(cfg: DeployConfig) -> list[OpInstance]:
    """Returns the distinct op instances the DARTS space can place in the deploy network
    (every primitive at every edge shape, plus the fixed parts), in first-use order."""
    seen: dict[str, OpInstance] = {}
    adds = [node_add_instance(c) for c in cell_plan(cfg.channels, cfg.layers, cfg.input_size,
                                                     cfg.multiplier, cfg.stem_multiplier)]
    for inst in network_fixed_instances(cfg) + network_edge_instances(cfg) + adds:
        seen.setdefault(inst.key, inst)
    return list(seen.values())


def anchor_instance(cfg: DeployConfig) -> OpInstance:
    """Returns the drift anchor of this deploy network: the first cell's sep_conv_3x3,
    measured at batch 1 beside every LUT entry and every end-to-end network (see
    ``LatencySettings.anchor``). A real op of the network, so it slows down with the
    machine the way the network's ops do."""
    first = cell_plan(cfg.channels, cfg.layers, cfg.input_size, cfg.multiplier,
                      cfg.stem_multiplier)[0]
    return edge_instance(first, "sep_conv_3x3", 0)


def node_add_rule(lut) -> tuple[bool, bool]:
    """Returns ``(node_adds, fused_adds)`` for predicting from ``lut``: whether it holds
    node sums (LUTs profiled before they were measured do not) and whether its backend
    folds a sum into the epilogue of the convolution feeding it (``"add_epilogue"`` in
    the backend's ``fuses``, e.g. the OpenCL executor)."""
    entries = getattr(lut, "entries", {})
    node_adds = any(e.get("op") == "node_add" for e in entries.values())
    fuses = lut.provenance.get("backend_details", {}).get("fuses", [])
    return node_adds, "add_epilogue" in fuses


def node_fuses(edges) -> list[bool]:
    """Returns, per node of a cell's genotype edges, whether a fusing backend computes
    its sum in a conv epilogue (one of its two ops ends in conv + BN: ``add_epilogue``
    in the registry)."""
    return [OPS[a].add_epilogue or OPS[b].add_epilogue
            for (a, _), (b, _) in zip(edges[::2], edges[1::2], strict=True)]


def _node_sums(cfg: DeployConfig, genotype, fused: bool) -> list[OpInstance]:
    """Returns the node sums of the deploy network of ``genotype`` that a fusing backend
    folds into a conv epilogue (``fused``) or runs as kernels of their own (not)."""
    out = []
    for cell in cell_plan(cfg.channels, cfg.layers, cfg.input_size, cfg.multiplier,
                          cfg.stem_multiplier):
        edges = genotype.reduce if cell.reduction else genotype.normal
        out += [node_add_instance(cell) for f in node_fuses(edges) if f == fused]
    return out


def fused_node_adds(cfg: DeployConfig, genotype) -> list[OpInstance]:
    """Returns the node sums a fusing backend computes in the epilogue of a conv: those
    with an op ending in conv + BN (``add_epilogue`` in the registry)."""
    return _node_sums(cfg, genotype, fused=True)


def network_instances(cfg: DeployConfig, genotype, *, node_adds: bool = True,
                      fused_adds: bool = False) -> list[OpInstance]:
    """Returns every op instance the deploy network of ``genotype`` runs, with
    repetitions: the fixed parts, the cells' edges and, with ``node_adds``, each node's
    sum; with ``fused_adds`` without the sums of :func:`fused_node_adds`. The one rule
    the predictors (validate, the search's cost) share."""
    out = list(network_fixed_instances(cfg))
    for cell in cell_plan(cfg.channels, cfg.layers, cfg.input_size, cfg.multiplier,
                          cfg.stem_multiplier):
        edges = genotype.reduce if cell.reduction else genotype.normal
        out += [edge_instance(cell, op, j) for op, j in edges]
    if node_adds:
        out += _node_sums(cfg, genotype, fused=False)
        if not fused_adds:
            out += fused_node_adds(cfg, genotype)
    return out


# --------------------------------------------------------------------------------------
# the registered space
# --------------------------------------------------------------------------------------


def genotype_space_dict(g) -> dict:
    """Returns the JSON form of a DARTS genotype (the genotype's fields only)."""
    from ..genotypes import genotype_to_dict
    return genotype_to_dict(g)


@register_space("darts")
class DartsSpace(SearchSpace):
    """The DARTS CIFAR space (Liu et al., ICLR 2019) on a deploy network: a normal and a
    reduction cell of ``steps`` nodes, each node summing two of its predecessors through
    one op each. Slots are the cells' edges, ``normal/<node>/<input>`` then
    ``reduce/<node>/<input>``, each with the 7 non-``none`` ops (derivation never keeps
    ``none``) and weight 2/(inputs of the node), the expected survival of the edge; a
    slot's instances are that edge in every cell of its kind. Encoding: per cell and node,
    the pair of inputs (one categorical) and the op of each of the two edges."""

    candidate_ops = tuple(PRIMITIVES)
    arch_type = Genotype

    # ---- topology -----------------------------------------------------------------------

    def plan(self) -> list[CellGeometry]:
        """Returns the deploy network's cell geometries."""
        d = self.deploy
        return cell_plan(d.channels, d.layers, d.input_size, d.multiplier, d.stem_multiplier)

    def edges(self) -> list[tuple[str, int, int]]:
        """Returns (cell kind, node, input) of every slot, in slot order."""
        return [(kind, node, j) for kind in ("normal", "reduce")
                for node in range(self.deploy.steps) for j in range(node + 2)]

    def slots(self) -> list[Slot]:
        ops = tuple(p for p in self.candidate_ops if p != "none")
        return [Slot(f"{kind}/{node}/{j}", ops, 2.0 / (node + 2))
                for kind, node, j in self.edges()]

    def slot_instances(self, slot: int, op: str) -> list[OpInstance]:
        kind, _, j = self.edges()[slot]
        return [edge_instance(c, op, j) for c in self.plan()
                if c.reduction == (kind == "reduce")]

    def fixed_instances(self) -> list[OpInstance]:
        return network_fixed_instances(self.deploy)

    def slot_index(self, kind: str, node: int, j: int) -> int:
        """Returns the slot index of edge (node, input j) of a cell kind."""
        per_kind = num_edges(self.deploy.steps)
        return (per_kind if kind == "reduce" else 0) + sum(2 + i for i in range(node)) + j

    def picks(self, arch) -> list[tuple[int, str]]:
        return [(self.slot_index(kind, k // 2, j), op) for kind in ("normal", "reduce")
                for k, (op, j) in enumerate(getattr(arch, kind))]

    def with_picks(self, arch, picks):
        n = len(arch.normal)
        ops = [op for _, op in picks]
        return arch._replace(
            normal=[(o, j) for o, (_, j) in zip(ops[:n], arch.normal, strict=True)],
            reduce=[(o, j) for o, (_, j) in zip(ops[n:], arch.reduce, strict=True)])

    def swap_where(self, pick: int, slot: int) -> dict:
        """Returns where a hard-target swap happened: cell kind, edge position, input."""
        kind, _, j = self.edges()[slot]
        n = 2 * self.deploy.steps
        return {"cell": kind, "edge": pick % n, "input": j}

    def instances(self, arch, *, node_adds: bool = True,
                  fused_adds: bool = False) -> list[OpInstance]:
        """Returns the deploy network's op instances (see :func:`network_instances`)."""
        return network_instances(self.deploy, arch, node_adds=node_adds,
                                 fused_adds=fused_adds)

    def prediction_instances(self, arch, lut) -> tuple[list[OpInstance], list[OpInstance]]:
        """Returns (instances a prediction from ``lut`` sums at their LUT value, node sums
        a fusing backend folds into a conv epilogue: the ``fused_add`` feature)."""
        adds, fused = node_add_rule(lut)
        insts = self.instances(arch, node_adds=adds, fused_adds=fused)
        return insts, (fused_node_adds(self.deploy, arch) if adds and fused else [])

    def enumerate_instances(self) -> list[OpInstance]:
        return enumerate_instances(self.deploy)

    def anchor_instance(self) -> OpInstance:
        return anchor_instance(self.deploy)

    def build(self, arch, **size):
        """Returns the deploy network of ``arch`` (``size``: ``C``/``num_cells`` override
        the deploy network's, e.g. for the smaller retrain copy), eval mode."""
        from ..models.network import build_network_from_genotype
        d = self.deploy
        kw = {"C": d.channels, "num_cells": d.layers, "num_classes": d.num_classes,
              "in_channels": d.in_channels, "input_size": d.input_size, **size}
        return build_network_from_genotype(arch, **kw).eval()

    # ---- cost extras of a LUT (node sums) -----------------------------------------------

    def fixed_extra(self, lut, val) -> float:
        """Returns the cost of the deploy network's node sums from ``lut`` (0 for LUTs
        without them), each at its standalone LUT value, as the plain sum counts them."""
        adds, _ = node_add_rule(lut)
        if not adds:
            return 0.0
        return sum(self.deploy.steps * (val(node_add_instance(c).key) or 0.0)
                   for c in self.plan())

    def cost_extra(self, scale: float | None, val):
        """Returns the fused node-sum term of a calibrated, fusing LUT (see
        :class:`FusedAdds`), or None without a ``fused_add`` scale."""
        if scale is None:
            return None
        x = {k: torch.zeros(self.deploy.steps, dtype=torch.float64)
             for k in ("normal", "reduce")}
        for c in self.plan():
            x["reduce" if c.reduction else "normal"] += \
                (scale - 1.0) * (val(node_add_instance(c).key) or 0.0)
        return FusedAdds(self, x)

    # ---- sampling and encoding ------------------------------------------------------------

    def sample(self, rng: random.Random):
        ops = [p for p in self.candidate_ops if p != "none"]
        steps = self.deploy.steps

        def cell():
            edges = []
            for node in range(steps):
                for j in sorted(rng.sample(range(node + 2), 2)):
                    edges.append((rng.choice(ops), j))
            return edges

        concat = list(range(2, 2 + steps))
        return Genotype(cell(), concat, cell(), concat)

    def choices(self) -> dict[str, list]:
        ops = [p for p in self.candidate_ops if p != "none"]
        out: dict[str, list] = {}
        for kind in ("normal", "reduce"):
            for node in range(self.deploy.steps):
                out[f"{kind}/{node}/inputs"] = [f"{a},{b}" for a in range(node + 2)
                                                for b in range(a + 1, node + 2)]
                out[f"{kind}/{node}/op0"] = list(ops)
                out[f"{kind}/{node}/op1"] = list(ops)
        return out

    def encode(self, arch) -> dict:
        out = {}
        for kind in ("normal", "reduce"):
            edges = getattr(arch, kind)
            for node in range(self.deploy.steps):
                (o0, a), (o1, b) = sorted(edges[2 * node:2 * node + 2], key=lambda e: e[1])
                if a == b:
                    raise ValueError(f"{kind} node {node} reads state {a} twice; the "
                                     f"encoding needs two distinct inputs")
                out[f"{kind}/{node}/inputs"] = f"{a},{b}"
                out[f"{kind}/{node}/op0"], out[f"{kind}/{node}/op1"] = o0, o1
        return out

    def decode(self, values: dict):
        cells = {}
        for kind in ("normal", "reduce"):
            edges = []
            for node in range(self.deploy.steps):
                a, b = (int(x) for x in str(values[f"{kind}/{node}/inputs"]).split(","))
                edges += [(values[f"{kind}/{node}/op0"], a), (values[f"{kind}/{node}/op1"], b)]
            cells[kind] = edges
        concat = list(range(2, 2 + self.deploy.steps))
        g = Genotype(cells["normal"], concat, cells["reduce"], concat)
        validate_genotype(g)
        return g

    @classmethod
    def arch_to_dict(cls, arch) -> dict:
        return genotype_space_dict(arch)

    @classmethod
    def arch_from_dict(cls, d: dict):
        from ..genotypes import genotype_from_dict
        return genotype_from_dict(d.get("genotype", d) if isinstance(d, dict) else d)

    @classmethod
    def summary(cls, arch) -> str:
        from ..genotypes import summarize
        return summarize(arch)

    # ---- LUT ------------------------------------------------------------------------------

    def describe(self) -> dict:
        return self.deploy.describe()

    def deploy_text(self) -> str:
        d = self.deploy
        return f"C={d.channels}, {d.layers} cells, {d.input_size}x{d.input_size}"

    def profile_command(self, device: str, out=None) -> str:
        d = self.deploy
        cmd = (f"nasbench profile --device {device} --channels {d.channels} "
               f"--layers {d.layers} --input {d.input_size} "
               f"--classes {d.num_classes} --batch {d.batches[0]}")
        return cmd + (f" --out {out} --resume" if out else "")

    @classmethod
    def deploy_from_lut(cls, lut, batch: int | None = None) -> DeployConfig:
        d = lut.provenance.get("deploy") or {}
        keys = ("channels", "layers", "input_size", "in_channels", "num_classes", "steps",
                "multiplier", "stem_multiplier")
        return DeployConfig(**{k: d[k] for k in keys if k in d}, batches=(batch or 1,),
                            dtype=lut.provenance.get("dtype", "float32"))


class FusedAdds:
    """The node sums a fusing backend folds into a conv epilogue, at their calibrated
    scale: ``x[kind][node]`` is (scale - 1) x the node's LUT sum cost over the cells of
    that kind, added when the node is fused (one of its two ops ends in conv + BN)."""

    def __init__(self, space: DartsSpace, x: dict):
        self.space, self.x = space, x
        self.epilogue = torch.tensor([float(OPS[p].add_epilogue) if p != "none" else 0.0
                                      for p in space.candidate_ops], dtype=torch.float64)

    def expected(self, probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Returns the expected extra cost under slot probabilities and weights."""
        n = num_edges(self.space.deploy.steps)
        out = torch.zeros((), dtype=torch.float64)
        for i, kind in enumerate(("normal", "reduce")):
            rows = slice(i * n, (i + 1) * n)
            out = out + (self.x[kind] * self.fused_share(probs[rows], weights[rows])).sum()
        return out

    def fused_share(self, probs: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Returns, per node [steps], the probability that the derived network fuses its
        sum: 1 - (1 - q)^2 with q the survival-weighted chance that a kept input's op
        ends in conv + BN (two inputs are kept per node)."""
        q = (probs * self.epilogue).sum(1)
        out, e = [], 0
        for node in range(self.space.deploy.steps):
            n = node + 2
            qbar = (f[e:e + n] / 2.0 * q[e:e + n]).sum()
            out.append(1.0 - (1.0 - qbar) ** 2)
            e += n
        return torch.stack(out)

    def exact(self, picks: list[tuple[int, str]]) -> float:
        """Returns the extra cost of a discrete architecture's picks."""
        total = 0.0
        n = 2 * self.space.deploy.steps
        for i, kind in enumerate(("normal", "reduce")):
            ops = [op for _, op in picks[i * n:(i + 1) * n]]
            for node, fused in enumerate(node_fuses([(o, 0) for o in ops])):
                if fused:
                    total += float(self.x[kind][node])
        return total


def num_edges(steps: int) -> int:
    """Returns the number of edges of a cell with ``steps`` intermediate nodes."""
    return sum(2 + i for i in range(steps))
