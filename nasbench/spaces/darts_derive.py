"""Genotype derivation by the DARTS rule.

Each intermediate node keeps its two incoming edges with the largest non-``none``
weight, and each kept edge takes its strongest non-``none`` op. For PC-DARTS the op
weights of an edge are first multiplied by the edge's normalised beta, as in the
PC-DARTS code.
"""

from __future__ import annotations

import torch

from nasbench.genotypes import Genotype
from nasbench.ops import PRIMITIVES


def derive_cell(weights: torch.Tensor, steps: int = 4, edge_weights: torch.Tensor | None = None,
                primitives=PRIMITIVES) -> list[tuple[str, int]]:
    """Returns the ``(op, input_index)`` pairs (two per node) of one cell.

    ``weights`` is [edges x ops] (softmaxed), ``edge_weights`` optional [edges]."""
    w = weights.detach().double().cpu()
    if edge_weights is not None:
        w = w * edge_weights.detach().double().cpu().unsqueeze(1)
    keep_ops = [k for k, p in enumerate(primitives) if p != "none"]
    if not keep_ops:
        raise ValueError("cannot derive a cell when every candidate op is 'none'")
    gene, start = [], 0
    for i in range(steps):
        n = 2 + i
        rows = w[start:start + n]
        strength = [float(rows[j, keep_ops].max()) for j in range(n)]
        # top-2 inputs by strength, strongest first as in the DARTS code; ties go to the
        # lower input index (stable sort)
        inputs = sorted(range(n), key=lambda j: -strength[j])[:2]
        for j in inputs:
            best = max(keep_ops, key=lambda k: (float(rows[j, k]), -k))
            gene.append((primitives[best], j))
        start += n
    return gene


def derive_genotype(weights_normal, weights_reduce, steps: int = 4, multiplier: int = 4,
                    edge_normal=None, edge_reduce=None, primitives=PRIMITIVES) -> Genotype:
    """Returns the Genotype of a search network's softmaxed architecture weights."""
    concat = list(range(2 + steps - multiplier, steps + 2))
    return Genotype(normal=derive_cell(weights_normal, steps, edge_normal, primitives),
                    normal_concat=concat,
                    reduce=derive_cell(weights_reduce, steps, edge_reduce, primitives),
                    reduce_concat=concat)
