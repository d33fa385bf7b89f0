"""Geometry of the DARTS CIFAR networks and enumeration of their op instances.

:func:`cell_plan` is the single description of how cells are stacked (channels,
resolution, reduction positions). The search network, the evaluation network, the
LUT enumerator and the differentiable cost model all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasbench.ops import OPS, PRIMITIVES
from nasbench.spaces.base import OpInstance  # noqa: F401 - the instance type, re-exported


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
        for _, j in cell_edges(cfg.steps):
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


def cell_edges(steps: int) -> list[tuple[int, int]]:
    """Returns the (node, input state) of every edge of a cell with ``steps`` nodes, in
    the order of the alpha rows: node i reads the two cell inputs and nodes 0..i-1."""
    return [(node, j) for node in range(steps) for j in range(node + 2)]


def num_edges(steps: int) -> int:
    """Returns the number of edges of a cell with ``steps`` intermediate nodes."""
    return len(cell_edges(steps))
