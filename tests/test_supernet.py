"""The search network: shapes, parameters, and the exactness of its speed-ups."""

import pytest
import torch
import torch.nn.functional as F

from nasbench.oneshot.architect import weight_step
from nasbench.ops import OPS, PRIMITIVES
from nasbench.spaces.darts_supernet import (
    MixedOp,
    SearchNetwork,
    channel_shuffle,
    node_softmax,
    num_edges,
)


def tiny(k=1, **kw):
    torch.manual_seed(0)
    return SearchNetwork(C=8, num_classes=5, layers=3, steps=2, multiplier=2, input_size=8,
                         partial_k=k, **kw).double()


@pytest.mark.parametrize("k", [1, 4])
def test_forward_shape_and_parameters(k):
    net = tiny(k)
    out = net(torch.randn(3, 3, 8, 8, dtype=torch.float64))
    assert out.shape == (3, 5)
    arch = net.arch_parameters()
    assert len(arch) == (4 if k > 1 else 2)
    assert arch[0].shape == (num_edges(2), len(PRIMITIVES)) == (5, 8)
    n_all = sum(p.numel() for p in net.parameters())
    assert n_all == sum(p.numel() for p in net.weights()) + sum(a.numel() for a in arch)
    out.sum().backward()
    assert all(a.grad is not None for a in arch)


def test_mixed_op_equals_naive_weighted_sum_with_none():
    """Skipping `none` and sharing the ReLU give exactly the DARTS sum over all ops."""
    torch.manual_seed(1)
    for stride in (1, 2):
        op = MixedOp(6, stride).double()
        x = torch.randn(2, 6, 8, 8, dtype=torch.float64)
        w = torch.softmax(torch.randn(len(PRIMITIVES), dtype=torch.float64), 0)
        fast = op(x, F.relu(x), w)
        built = iter(op._ops)
        naive = 0
        for i, name in enumerate(PRIMITIVES):
            m = OPS["none"].build(6, 6, stride) if name == "none" else next(built)
            naive = naive + w[i] * m(x)
        torch.testing.assert_close(fast, naive)


def test_pcdarts_node_fold_equals_per_edge_formulation():
    net = tiny(4)
    cell = net.cells[0]
    torch.manual_seed(2)
    s0 = torch.randn(2, 24, 8, 8, dtype=torch.float64)
    s1 = torch.randn(2, 24, 8, 8, dtype=torch.float64)
    w = torch.softmax(torch.randn(5, 8, dtype=torch.float64), -1)
    ew = node_softmax(torch.randn(5, dtype=torch.float64), 2)
    fast = cell(s0, s1, w, ew)
    # per-edge PC-DARTS as in the paper's code: op on C/K channels, cat, shuffle, beta
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    offset = 0
    for _ in range(2):
        s = 0
        for j, h in enumerate(states):
            op = cell._ops[offset + j]
            dim = h.shape[1] // 4
            part = op(h[:, :dim], F.relu(h[:, :dim]), w[offset + j])
            y = channel_shuffle(torch.cat([part, op.passthrough(h)], 1), 4)
            s = s + ew[offset + j] * y
        offset += len(states)
        states.append(s)
    torch.testing.assert_close(fast, torch.cat(states[-2:], 1))


def test_channel_shuffle_is_a_permutation():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    y = channel_shuffle(x, 4).flatten().tolist()
    assert y == [0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]


def test_weight_step_leaves_alphas_alone():
    net = tiny(1).float()
    before = [a.detach().clone() for a in net.arch_parameters()]
    opt = torch.optim.SGD(net.weights(), 0.1, momentum=0.9)
    w0 = [p.detach().clone() for p in net.weights()]
    loss, logits = weight_step(net, opt, torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,)))
    assert logits.shape == (4, 5) and loss > 0
    for a, b in zip(net.arch_parameters(), before, strict=True):
        assert torch.equal(a, b) and a.grad is None and a.requires_grad
    assert any(not torch.equal(p, q) for p, q in zip(net.weights(), w0, strict=True))


def test_channels_last_matches_contiguous():
    net = tiny(1).float().eval()
    x = torch.randn(2, 3, 8, 8)
    ref = net(x)
    cl = net.to(memory_format=torch.channels_last)
    out = cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_genotype_and_new():
    net = tiny(4)
    g = net.genotype()
    assert len(g.normal) == 4 and g.normal_concat == [2, 3]
    other = net.new()
    assert torch.equal(other.alphas_normal, net.alphas_normal.float())
    assert torch.equal(other.betas_reduce, net.betas_reduce.float())
