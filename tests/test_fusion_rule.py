"""Fusion-aware prediction: the node-sum rule the predictors apply is the one the
OpenCL executor implements, and an eager backend pays every sum."""

import pytest
import torch
from torch import nn

from nasbench.genotypes import Genotype
from nasbench.ops import OPS, build_op
from nasbench.spaces.darts import (
    DeployConfig,
    fused_node_adds,
    network_instances,
    node_add_rule,
)

DEPLOY = DeployConfig(channels=4, layers=3, input_size=8)


def _genotype(pairs):
    """Every node of both cell types gets the same (op_a, op_b) on inputs 0 and 1."""
    edges = [e for a, b in pairs for e in ((a, 0), (b, 1))]
    return Genotype(edges, [2, 3, 4, 5], edges, [2, 3, 4, 5])


def test_fused_backend_drops_sums_fed_by_a_conv():
    g = _genotype([("sep_conv_3x3", "max_pool_3x3"), ("max_pool_3x3", "skip_connect"),
                   ("avg_pool_3x3", "dil_conv_5x5"), ("skip_connect", "avg_pool_3x3")])

    def adds(**kw):
        return sum(i.op == "node_add" for i in network_instances(DEPLOY, g, **kw))

    cells = DEPLOY.layers
    assert adds(node_adds=False) == 0
    assert adds() == 4 * cells                        # eager: every node's sum runs
    assert adds(fused_adds=True) == 2 * cells         # only the pool/skip-only nodes
    assert len(fused_node_adds(DEPLOY, g)) == 2 * cells
    # the rule reads the registry: exactly the ops ending in conv + BN absorb a sum
    assert {n for n, s in OPS.items() if s.add_epilogue} == {
        "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"}


def test_node_add_rule_reads_the_lut():
    class L:
        provenance = {"backend_details": {"fuses": ["bn_fold", "add_epilogue"]}}
        entries = {"k": {"op": "node_add"}}
    assert node_add_rule(L()) == (True, True)
    L.provenance, L.entries = {}, {"k": {"op": "sep_conv_3x3"}}
    assert node_add_rule(L()) == (False, False)


class Node(nn.Module):
    """One cell node: two edge ops on two states, summed."""

    def __init__(self, a: str, b: str, c: int = 8):
        super().__init__()
        self.a, self.b = build_op(a, c, c, 1), build_op(b, c, c, 1)
        self.pre = nn.Conv2d(c, 2 * c, 1)

    def forward(self, x):
        s = self.pre(x)
        return self.a(s[:, :8]) + self.b(s[:, 8:])


@pytest.mark.parametrize("a,b,fused", [("sep_conv_3x3", "max_pool_3x3", True),
                                        ("max_pool_3x3", "dil_conv_3x3", True),
                                        ("max_pool_3x3", "avg_pool_3x3", False)])
def test_executor_fuses_exactly_where_the_rule_says(a, b, fused):
    pytest.importorskip("pyopencl")
    from kernels import runtime as R
    from kernels.executor import compile_module
    try:
        rt = R.Runtime(0, 0)
    except R.OpenCLUnavailableError:
        pytest.skip("no OpenCL device")
    m = Node(a, b).eval()
    cm = compile_module(m, (1, 8, 8, 8), rt)
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        assert torch.allclose(torch.as_tensor(cm.forward(x)), m(x), atol=1e-4)
    standalone = [s for s in cm.steps if "add" in s.kernel_name]
    assert (not standalone) == fused == (OPS[a].add_epilogue or OPS[b].add_epilogue)
