"""Genotype derivation: the DARTS rule (top-2 inputs per node by strongest non-none op)."""

import torch

from nasbench.genotypes import validate_genotype
from nasbench.ops import PRIMITIVES
from nasbench.spaces.darts_derive import derive_cell, derive_genotype

P = {p: i for i, p in enumerate(PRIMITIVES)}


def weights(entries, edges=14):
    w = torch.full((edges, len(PRIMITIVES)), 0.01)
    for (e, op), v in entries.items():
        w[e, P[op]] = v
    return w


def test_top2_inputs_and_none_excluded():
    # node 0: edges 0,1; node 1: edges 2,3,4
    w = weights({(0, "none"): 0.9, (0, "sep_conv_3x3"): 0.05,
                 (1, "skip_connect"): 0.3,
                 (2, "none"): 0.99, (2, "max_pool_3x3"): 0.02,
                 (3, "dil_conv_5x5"): 0.4, (4, "avg_pool_3x3"): 0.5}, edges=5)
    gene = derive_cell(w, steps=2)
    # node 0 keeps both inputs, the stronger first; `none` never chosen
    assert gene[:2] == [("skip_connect", 1), ("sep_conv_3x3", 0)]
    # node 1: edge 2 is strong only through `none`, so inputs 2 (0.5) and 1 (0.4) win
    assert gene[2:] == [("avg_pool_3x3", 2), ("dil_conv_5x5", 1)]


def test_edge_weights_rescale_edges():
    w = weights({(0, "sep_conv_3x3"): 0.5, (1, "sep_conv_5x5"): 0.4,
                 (2, "skip_connect"): 0.3}, edges=5)
    ew = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0])
    gene = derive_cell(w, steps=2, edge_weights=ew)
    assert ("skip_connect", 0) not in gene[2:]


def test_full_genotype_is_valid():
    torch.manual_seed(0)
    g = derive_genotype(torch.softmax(torch.randn(14, 8), -1),
                        torch.softmax(torch.randn(14, 8), -1))
    validate_genotype(g)
    assert len(g.normal) == len(g.reduce) == 8
    assert g.normal_concat == g.reduce_concat == [2, 3, 4, 5]
    for k in range(4):
        ins = {g.normal[2 * k][1], g.normal[2 * k + 1][1]}
        assert len(ins) == 2 and max(ins) < k + 2
    assert all(op != "none" for op, _ in g.normal + g.reduce)
