"""Single paths of the supernets (SPOS, ENAS): ``supernet(x, arch=...)`` equals the mixed
forward with one-hot weights on the same weights, unused ops get no gradient, and
``path_accuracy`` leaves the network as it was."""

import random

import pytest
import torch

from nasbench.genotypes import Genotype
from nasbench.oneshot.architect import weight_step
from nasbench.spaces.darts import cell_edges
from nasbench.spaces.darts_supernet import SearchNetwork
from nasbench.spaces.nb201 import NB201_OPS, NB201Arch
from nasbench.spaces.nb201_supernet import NB201SearchNetwork


def _darts(k=1):
    torch.manual_seed(0)
    return SearchNetwork(C=4, num_classes=5, layers=3, steps=2, multiplier=2, input_size=8,
                         partial_k=k).double()


def _nb201():
    torch.manual_seed(0)
    return NB201SearchNetwork(C=4, N=1, num_classes=5, input_size=8).double()


GENO = Genotype(normal=[("sep_conv_3x3", 0), ("skip_connect", 1),
                        ("max_pool_3x3", 2), ("dil_conv_5x5", 0)],
                normal_concat=[2, 3],
                reduce=[("avg_pool_3x3", 1), ("sep_conv_5x5", 0),
                        ("none", 1), ("skip_connect", 2)],
                reduce_concat=[2, 3])
CELL = NB201Arch(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none",
                  "nor_conv_1x1"))


def _one_hot(path: list[int], n: int, none: int = 0) -> torch.Tensor:
    """Alphas whose softmax is exactly one-hot (float64): the path's op, ``none`` where
    the edge is unused."""
    a = torch.full((len(path), n), -1e4, dtype=torch.float64)
    for e, i in enumerate(path):
        a[e, none if i < 0 else i] = 1e4
    return a


@pytest.mark.parametrize("train", [True, False])
def test_darts_path_equals_the_mixed_forward_with_one_hot_weights(train):
    net = _darts().train(train)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    path = net.path_of(GENO)
    assert sum(i >= 0 for i in path["normal"]) == 4      # two inputs per node
    with torch.no_grad():
        net.alphas_normal.copy_(_one_hot(path["normal"], len(net.primitives)))
        net.alphas_reduce.copy_(_one_hot(path["reduce"], len(net.primitives)))
    torch.testing.assert_close(net(x, arch=GENO), net(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(net.path_forward(x, GENO), net(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("train", [True, False])
def test_nb201_path_equals_the_mixed_forward_with_one_hot_weights(train):
    net = _nb201().train(train)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        net.alphas.copy_(_one_hot(net.path_of(CELL)["cell"], len(NB201_OPS)))
    torch.testing.assert_close(net(x, arch=CELL), net(x), rtol=0, atol=1e-12)
    # a cell whose output node no op feeds: zeros, as the mixed cell computes them
    dead = NB201Arch(("nor_conv_3x3", "none", "skip_connect", "none", "none", "none"))
    with torch.no_grad():
        net.alphas.copy_(_one_hot(net.path_of(dead)["cell"], len(NB201_OPS)))
    torch.testing.assert_close(net(x, arch=dead), net(x), rtol=0, atol=1e-12)


def _grads(net):
    return {n: p.grad for n, p in net.named_weights()}


def test_darts_unused_ops_get_no_gradient():
    net = _darts().float()
    opt = torch.optim.SGD(net.weights(), 0.1, momentum=0.9, weight_decay=3e-4)
    before = {n: p.detach().clone() for n, p in net.named_weights()}
    weight_step(net, opt, torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,)), arch=GENO)
    g = _grads(net)
    path = net.path_of(GENO)
    edges = cell_edges(2)
    for c, cell in enumerate(net.cells):
        kind = "reduce" if cell.reduction else "normal"
        for e, mixed in enumerate(cell._ops):
            for pos, i in enumerate(mixed._index):
                names = [n for n in g if n.startswith(f"cells.{c}._ops.{e}._ops.{pos}.")]
                used = path[kind][e] == i
                for n in names:
                    assert (g[n] is not None) == used, (n, edges[e], used)
                    # SGD (momentum, weight decay) leaves an unused op's weights alone
                    assert torch.equal(before[n], dict(net.named_weights())[n]) != used, n
    assert all(a.grad is None for a in net.arch_parameters())


def test_nb201_unused_ops_get_no_gradient():
    net = _nb201().float()
    out = net(torch.randn(2, 3, 8, 8), arch=CELL)
    out.sum().backward()
    g = _grads(net)
    path = net.path_of(CELL)["cell"]
    checked = 0
    for n, grad in g.items():
        if "._ops." not in n:
            continue
        e, pos = int(n.split(".edges.")[1].split(".")[0]), int(n.split("._ops.")[1][0])
        mixed = net.cells[0].edges[e]
        assert (grad is not None) == (mixed._index[pos] == path[e]), n
        checked += 1
    assert checked > 0


def test_paths_refuse_what_the_network_cannot_run():
    with pytest.raises(ValueError, match="partial_k 1"):
        _darts(k=2).path_of(GENO)
    twice = GENO._replace(normal=[("sep_conv_3x3", 0), ("skip_connect", 0)] +
                          GENO.normal[2:])
    with pytest.raises(ValueError, match="reads state 0 twice"):
        _darts().path_of(twice)
    with pytest.raises(ValueError, match="does not fit"):
        _darts().path_of(GENO._replace(normal_concat=[2, 3, 4]))


@pytest.mark.parametrize("calibrate", [False, True])
def test_path_accuracy_leaves_the_network_as_it_was(calibrate):
    net = _nb201().float().eval()
    rng = random.Random(0)
    batches = [(torch.randn(8, 3, 8, 8), torch.randint(0, 5, (8,))) for _ in range(2)]
    net.train()
    for _ in range(3):                          # move the running statistics
        net(torch.randn(8, 3, 8, 8) + 1.0, arch=CELL)
    net.eval()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    cell = NB201Arch(tuple(rng.choice(NB201_OPS) for _ in range(6)))
    acc = net.path_accuracy(cell, batches, calibrate=batches if calibrate else None)
    assert 0.0 <= acc <= 100.0
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    again = net.path_accuracy(cell, batches, calibrate=batches if calibrate else None)
    assert again == acc
