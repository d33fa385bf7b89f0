"""The architecture step: first-order gradient, and the second-order (unrolled,
finite-difference Hessian-vector product) gradient against a numerical derivative."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from nasbench.oneshot.architect import Architect, weight_step
from nasbench.spaces.darts_supernet import SearchNetwork


def tiny(k=1):
    torch.manual_seed(0)
    net = SearchNetwork(C=4, num_classes=3, layers=3, steps=2, multiplier=2, input_size=8,
                        partial_k=k).double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0, 0.5)
    return net


def batch(seed, n=4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, 8, 8, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (n,), generator=g))


def unrolled_val_loss(net, arch_values, xt, yt, xv, yv, eta, wd, opt, momentum):
    """L_val(w - eta * (m + dL_train/dw + wd w), alpha) computed exactly (autograd)."""
    names = [n for n, _ in net.named_weights()]
    weights = [p for _, p in net.named_weights()]
    arch_names = [n for n, p in net.named_parameters() if any(p is a for a in
                                                              net.arch_parameters())]
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    arch = dict(zip(arch_names, arch_values, strict=True))
    params = {**dict(zip(names, weights, strict=True)), **arch, **buffers}
    loss = F.cross_entropy(functional_call(net, params, (xt,)), yt)
    grads = torch.autograd.grad(loss, weights, create_graph=True)
    new = []
    for p, g in zip(weights, grads, strict=True):
        step = g + wd * p.detach()
        buf = opt.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            step = step + momentum * buf
        new.append(p.detach() - eta * step)
    params = {**dict(zip(names, new, strict=True)), **arch, **buffers}
    return F.cross_entropy(functional_call(net, params, (xv,)), yv)


@pytest.mark.parametrize("k", [1, 2])
def test_second_order_gradient_matches_finite_difference(k):
    net = tiny(k)
    opt = torch.optim.SGD(net.weights(), 0.05, momentum=0.9, weight_decay=3e-4)
    xt, yt = batch(1)
    xv, yv = batch(2)
    weight_step(net, opt, xt, yt, grad_clip=None)     # non-zero momentum buffers
    eta, wd = 0.05, 3e-4
    # the DARTS radius r=0.01 is a coarse approximation on such a tiny, very curved
    # net; in float64 a small radius makes the finite difference converge to the truth
    arch = Architect(net, order="second", momentum=0.9, network_weight_decay=wd,
                     fd_radius=1e-5)
    grads, _ = arch.second_order_grads(xt, yt, xv, yv, eta, opt)

    # exact unrolled gradient (double backprop), and a numerical derivative of it
    values = [a.detach().clone().requires_grad_(True) for a in net.arch_parameters()]
    exact = torch.autograd.grad(
        unrolled_val_loss(net, values, xt, yt, xv, yv, eta, wd, opt, 0.9), values)
    for g, e in zip(grads, exact, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-7)

    h = 1e-5
    a0 = net.arch_parameters()[0]
    for idx in [(0, 1), (2, 4), (4, 7)]:
        vals_p = [a.detach().clone() for a in net.arch_parameters()]
        vals_m = [a.detach().clone() for a in net.arch_parameters()]
        vals_p[0][idx] += h
        vals_m[0][idx] -= h
        lp = unrolled_val_loss(net, vals_p, xt, yt, xv, yv, eta, wd, opt, 0.9)
        lm = unrolled_val_loss(net, vals_m, xt, yt, xv, yv, eta, wd, opt, 0.9)
        num = float((lp - lm).detach() / (2 * h))
        assert abs(float(grads[0][idx]) - num) <= 1e-6 + 1e-4 * abs(num), (idx, num)
    assert a0.grad is None       # the gradient was returned, not accumulated


def test_first_order_gradient_is_plain_autograd():
    net = tiny()
    xv, yv = batch(3)
    arch = Architect(net, order="first")
    grads, loss = arch.first_order_grads(xv, yv)
    ref = torch.autograd.grad(F.cross_entropy(net(xv), yv), net.arch_parameters())
    for g, r in zip(grads, ref, strict=True):
        torch.testing.assert_close(g, r)


def test_step_moves_alphas_and_adds_penalty_gradient():
    net = tiny()
    xt, yt = batch(1)
    xv, yv = batch(2)

    def penalty(model, ce=0.0):
        return 10.0 * torch.softmax(model.alphas_normal, -1)[:, 4].sum(), {"expected_x": 1.0}

    arch = Architect(net, order="first", lr=0.1, penalty=penalty)
    before = torch.softmax(net.alphas_normal, -1)[:, 4].sum().item()
    opt = torch.optim.SGD(net.weights(), 0.01)
    for _ in range(3):
        info = arch.step(xt, yt, xv, yv, 0.01, opt)
    after = torch.softmax(net.alphas_normal, -1)[:, 4].sum().item()
    assert after < before
    assert info["expected_x"] == 1.0 and info["penalty"] > 0 and "val_loss" in info


def test_second_order_leaves_weights_and_bn_stats_alone():
    net = tiny()
    opt = torch.optim.SGD(net.weights(), 0.05, momentum=0.9)
    xt, yt = batch(1)
    xv, yv = batch(2)
    state = {k: v.clone() for k, v in net.state_dict().items() if "alphas" not in k}
    Architect(net, order="second").step(xt, yt, xv, yv, 0.05, opt)
    for k, v in net.state_dict().items():
        if "alphas" not in k:
            assert torch.equal(v, state[k]), k
