"""Geometry of the NAS-Bench-201 networks (Dong & Yang, ICLR 2020) and their op instances.

A cell has 4 nodes; node j sums one op per earlier node i (edges ``i -> j``, 6 in all),
each op one of :data:`NB201_OPS`. The network around it (NAS-Bench-201's macro
skeleton): a 3x3 conv stem of C channels + BN; three stages of N cells at C, 2C, 4C
channels with a residual basic block of stride 2 between stages (ReLU-conv3x3-BN twice,
shortcut avg-pool 2x2 + 1x1 conv); BN + ReLU, global average pooling, linear. C=16, N=5
and 32x32 inputs (CIFAR; 16x16 for ImageNet16-120) are the benchmark's.

An architecture is written as NAS-Bench-201 writes it: node by node, each node's
incoming edges ``op~i`` (from node i) between bars, nodes joined by ``+``::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from nasbench.errors import UserError
from nasbench.spaces.base import OpInstance

SPACE = "nb201"
#: the candidate ops of every edge, in NAS-Bench-201's order
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: the edges (from node, to node), in the order of the architecture string
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NODES = 4


@dataclass(frozen=True)
class NB201Arch:
    """A NAS-Bench-201 cell: the op of each of the 6 edges, in :data:`EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        if len(self.ops) != len(EDGES):
            raise ValueError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got "
                             f"{len(self.ops)} ops")
        bad = [op for op in self.ops if op not in NB201_OPS]
        if bad:
            raise ValueError(f"unknown NAS-Bench-201 op(s) {', '.join(map(repr, bad))}; "
                             f"known: {', '.join(NB201_OPS)}")

    def to_str(self) -> str:
        """Returns the NAS-Bench-201 architecture string."""
        nodes = []
        for j in range(1, NODES):
            nodes.append("|" + "|".join(f"{op}~{i}" for op, (i, jj) in zip(
                self.ops, EDGES, strict=True) if jj == j) + "|")
        return "+".join(nodes)

    @classmethod
    def from_str(cls, text: str) -> NB201Arch:
        """Returns the cell of a NAS-Bench-201 string; raises ValueError naming what is
        wrong."""
        s = str(text).strip()
        nodes = s.split("+")
        if len(nodes) != NODES - 1:
            raise ValueError(f"not a NAS-Bench-201 cell string (3 nodes joined by '+'): "
                             f"{text!r}")
        ops: dict[tuple[int, int], str] = {}
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise ValueError(f"node {j} of {text!r} is not |op~i|...|")
            for part in node.strip("|").split("|"):
                op, _, src = part.partition("~")
                if not src.isdigit() or int(src) >= j:
                    raise ValueError(f"edge {part!r} of node {j} in {text!r}: need op~i "
                                     f"with i < {j}")
                ops[(int(src), j)] = op
        if set(ops) != set(EDGES):
            raise ValueError(f"{text!r} does not name each of the 6 edges once")
        return cls(tuple(ops[e] for e in EDGES))

    def summary(self) -> str:
        """Returns the architecture string (its one-line form)."""
        return self.to_str()

    def connected(self) -> bool:
        """Returns whether the cell's output depends on its input: a path of non-``none``
        edges from node 0 to node 3 (otherwise every cell outputs zeros, and a compiler
        may remove the whole network)."""
        reach = {0}
        for op, (i, j) in zip(self.ops, EDGES, strict=True):   # edges in node order
            if op != "none" and i in reach:
                reach.add(j)
        return NODES - 1 in reach


_ENUMERATION: tuple | None = None


def enumeration() -> tuple[list[NB201Arch], torch.Tensor, torch.Tensor]:
    """Returns every cell (first edge varying slowest), the column of each edge's op in
    :data:`NB201_OPS` (LongTensor [15625 x 6]) and the connected mask (BoolTensor): built
    once per process, so a constrained derivation is a few tensor operations."""
    global _ENUMERATION
    if _ENUMERATION is None:
        cols = list(itertools.product(range(len(NB201_OPS)), repeat=len(EDGES)))
        archs = [NB201Arch(tuple(NB201_OPS[c] for c in row)) for row in cols]
        _ENUMERATION = (archs, torch.tensor(cols, dtype=torch.long),
                        torch.tensor([a.connected() for a in archs]))
    return _ENUMERATION


def best_cell(scores: torch.Tensor, cost: torch.Tensor | None = None,
              budget: float | None = None) -> NB201Arch | None:
    """Returns the connected cell with the largest sum of ``scores`` [6 edges x 5 ops]
    (e.g. log-probabilities: the most likely connected cell), among those whose
    ``cost`` [15625] (a cost per cell of :func:`enumeration`) is at most ``budget``
    when both are given; None when no connected cell meets the budget."""
    archs, cols, ok = enumeration()
    total = scores.detach().double()[torch.arange(len(EDGES)), cols].sum(1)
    if cost is not None and budget is not None:
        ok = ok & (cost <= budget)
    if not bool(ok.any()):
        return None
    return archs[int(total.masked_fill(~ok, float("-inf")).argmax())]


@dataclass(frozen=True)
class NB201DeployConfig:
    """The NAS-Bench-201 network whose cost is measured and optimised: ``channels`` C of
    the first stage, ``cells`` N per stage, input size (32 for CIFAR, 16 for
    ImageNet16-120), classes."""

    channels: int = 16
    cells: int = 5
    input_size: int = 32
    in_channels: int = 3
    num_classes: int = 10
    batches: tuple[int, ...] = (1,)
    dtype: str = "float32"

    def validate(self) -> None:
        """Raises UserError (one line) for an impossible network."""
        for name in ("channels", "cells", "in_channels", "num_classes"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if self.input_size < 4:
            raise UserError(f"input size must be at least 4 pixels, got {self.input_size}")

    def describe(self) -> dict:
        """Returns the fields that identify the deploy network in a LUT's provenance."""
        return {"space": SPACE, "channels": self.channels, "cells": self.cells,
                "input_size": self.input_size, "in_channels": self.in_channels,
                "num_classes": self.num_classes}


@dataclass(frozen=True)
class StageGeometry:
    """One stage: its index, channels, input resolution (pixels) and cell count."""

    index: int
    c: int
    h: int
    cells: int


def stage_plan(cfg: NB201DeployConfig) -> list[StageGeometry]:
    """Returns the three stages (C, 2C, 4C channels; H, H/2, H/4 pixels)."""
    out, h = [], cfg.input_size
    for s in range(3):
        out.append(StageGeometry(s, cfg.channels * 2 ** s, h, cfg.cells))
        h = -(-h // 2)
    return out


def edge_instance(stage: StageGeometry, op: str) -> OpInstance:
    """Returns the op instance of one edge of a cell of ``stage``."""
    return OpInstance(op, stage.c, stage.c, stage.h, stage.h, 1)


def fixed_instances(cfg: NB201DeployConfig) -> list[OpInstance]:
    """Returns every architecture-independent op instance, with repetitions: the stem,
    the node sums of every cell (node 2 adds 2 edges, node 3 three: 3 two-operand sums),
    the two residual blocks, the last BN + ReLU and the classifier."""
    plan = stage_plan(cfg)
    out = [OpInstance("stem", cfg.in_channels, cfg.channels, cfg.input_size,
                      cfg.input_size)]
    for st in plan:
        if st.index:
            prev = plan[st.index - 1]
            out.append(OpInstance("resnet_block", prev.c, st.c, prev.h, prev.h, 2))
        out += [OpInstance("node_add", 2 * st.c, st.c, st.h, st.h)] * (3 * st.cells)
    last = plan[-1]
    out += [OpInstance("bn_relu", last.c, last.c, last.h, last.h),
            OpInstance("gap_linear", last.c, cfg.num_classes, last.h, last.h)]
    return out


def arch_instances(cfg: NB201DeployConfig, arch: NB201Arch) -> list[OpInstance]:
    """Returns the op instances of ``arch``'s network (fixed parts, then every cell's 6
    edges)."""
    out = list(fixed_instances(cfg))
    for st in stage_plan(cfg):
        out += [edge_instance(st, op) for _ in range(st.cells) for op in arch.ops]
    return out
