"""Shapes and gradients of every op, of the search cells and of the evaluation cells."""

import pytest
import torch

from nasbench.genotypes import DARTS_V2, PC_DARTS
from nasbench.ops import OPS, PRIMITIVES
from nasbench.spaces.darts_network import Cell
from nasbench.spaces.darts_supernet import MixedOp, SearchCell, num_edges

B, C, H = 2, 8, 8


@pytest.mark.parametrize("affine", [False, True], ids=["search", "eval"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_shape_and_gradient(name, stride, affine):
    torch.manual_seed(0)
    op = OPS[name].build(C, C, stride, affine=affine)
    x = torch.randn(B, C, H, H, requires_grad=True)
    y = op(x)
    assert y.shape == (B, *OPS[name].shape(C, C, H, H, stride))
    y.square().sum().backward()
    if name == "none":
        assert torch.count_nonzero(x.grad) == 0
    else:
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        for p in op.parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", ["stem", "relu_conv_bn_1x1", "factorized_reduce"])
def test_fixed_op_shape_and_gradient(name):
    c_in = 3 if name == "stem" else C
    stride = 2 if name == "factorized_reduce" else 1
    op = OPS[name].build(c_in, 2 * C, stride)
    x = torch.randn(B, c_in, H, H, requires_grad=True)
    y = op(x)
    assert y.shape == (B, *OPS[name].shape(c_in, 2 * C, H, H, stride))
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_op_shape_and_gradient(stride, k):
    op = MixedOp(C, stride, partial_k=k)
    x = torch.randn(B, C // k, H, H, requires_grad=True)
    w = torch.softmax(torch.randn(len(PRIMITIVES), requires_grad=True), 0)
    y = op(x, torch.relu(x), w)
    assert y.shape == (B, C // k, H // stride, H // stride)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    if k > 1:
        assert op.passthrough(torch.randn(B, C, H, H)).shape == (B, C - C // k, H // stride,
                                                                 H // stride)


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("reduction,reduction_prev", [(False, False), (True, False),
                                                       (False, True)])
def test_search_cell_shape_and_gradient(reduction, reduction_prev, k):
    torch.manual_seed(0)
    cell = SearchCell(4, 4, 3 * C, 2 * C, C, reduction, reduction_prev, partial_k=k)
    h_pp = 2 * H if reduction_prev else H
    s0 = torch.randn(B, 3 * C, h_pp, h_pp, requires_grad=True)
    s1 = torch.randn(B, 2 * C, H, H, requires_grad=True)
    alphas = torch.randn(num_edges(4), len(PRIMITIVES), requires_grad=True)
    betas = torch.randn(num_edges(4), requires_grad=True) if k > 1 else None
    out = cell(s0, s1, torch.softmax(alphas, -1), None if betas is None else betas.exp())
    h_out = H // 2 if reduction else H
    assert out.shape == (B, 4 * C, h_out, h_out)
    out.square().mean().backward()
    for t in (s0, s1, alphas) + ((betas,) if betas is not None else ()):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


@pytest.mark.parametrize("genotype", [DARTS_V2, PC_DARTS], ids=["darts_v2", "pc_darts"])
@pytest.mark.parametrize("reduction,reduction_prev", [(False, False), (True, False),
                                                       (False, True)])
def test_eval_cell_shape_and_gradient(genotype, reduction, reduction_prev):
    cell = Cell(genotype, 3 * C, 2 * C, C, reduction, reduction_prev)
    h_pp = 2 * H if reduction_prev else H
    s0 = torch.randn(B, 3 * C, h_pp, h_pp, requires_grad=True)
    s1 = torch.randn(B, 2 * C, H, H, requires_grad=True)
    out = cell(s0, s1, drop_prob=0.2)
    h_out = H // 2 if reduction else H
    assert out.shape == (B, 4 * C, h_out, h_out)
    out.sum().backward()
    assert torch.isfinite(s0.grad).all() and torch.isfinite(s1.grad).all()
