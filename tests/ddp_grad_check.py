"""One step's gradients in float64, for tests/test_distributed.py: ProxylessNAS's weight
step, binary-gate alpha gradient and REINFORCE reward, and DARTS's weight step and
first- and second-order alpha gradients (whole-batch BatchNorm). Run it as one process
and under ``torchrun --nproc-per-node 2``; rank 0 (or the single process) saves what it
computed to ``OUT`` (argv[1]). float64 takes the rounding out: a data-parallel step must
give the single process's numbers to ~1e-12 (in float32, rounding, amplified by Adam's
first steps where alpha gradients are tiny, blurs the comparison of whole runs)."""

import sys

import torch
import torch.nn.functional as F

from nasbench import distributed
from nasbench.oneshot.architect import Architect
from nasbench.oneshot.proxyless import (
    ProxylessObjective,
    ProxylessSupernet,
    frozen,
    reinforce_arch_step,
)
from nasbench.searchers.proxyless_config import ProxylessConfig
from tests.test_proxyless_runner import TINY


def main(out: str) -> None:
    distributed.setup()
    cfg = ProxylessConfig.from_preset("quick", **TINY)
    torch.manual_seed(0)
    net = ProxylessSupernet(cfg.deploy()).double()
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))
    fwd = distributed.data_parallel(net, find_unused=True, sync_bn=True)
    xs, ys = distributed.shard(x, y)
    reduce = distributed.grad_reducer()
    torch.manual_seed(1)
    net.train()
    net.sample_single()                                # the weight step, through DDP
    F.cross_entropy(fwd(xs), ys).backward()
    weights = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    net.sample_two()                                   # the binary-gate alpha gradient
    with frozen(net.weights()):
        F.cross_entropy(net(xs), ys).backward()
    net.set_binary_gate_grad()
    alphas = net.alphas.grad if reduce is None else reduce([net.alphas.grad], len(ys))[0]
    opt = torch.optim.Adam([net.alphas], 1e-3)
    info = reinforce_arch_step(net, ProxylessObjective(None), opt, xs, ys, 3,
                               {"value": None}, reduce=reduce)
    darts = darts_grads(reduce)
    if distributed.is_main():
        torch.save({"weights": weights, "alphas": alphas.clone(),
                    "reward": info["reward"], "after": net.alphas.detach().clone(),
                    "darts": darts}, out)
    distributed.teardown()


def darts_grads(reduce) -> dict:
    """Returns a tiny DARTS supernet's weight-step gradients (through DDP) and its first-
    and second-order alpha gradients (float64, whole-batch BatchNorm)."""
    from nasbench.spaces.darts_supernet import SearchNetwork
    torch.manual_seed(2)
    net = SearchNetwork(C=4, layers=3, input_size=8).double()
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))
    xv = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    yv = torch.randint(0, 10, (8,))
    fwd = distributed.data_parallel(net, sync_bn=True)
    x, y, xv, yv = distributed.shard(x, y, xv, yv)
    for a in net.arch_parameters():
        a.requires_grad_(False)
    F.cross_entropy(fwd(x), y).backward()
    for a in net.arch_parameters():
        a.requires_grad_(True)
    out = {"weights": {n: p.grad.clone() for n, p in net.named_weights()}}
    opt = torch.optim.SGD(net.weights(), 0.025, momentum=0.9)
    opt.step()                                    # momentum buffers for the unrolled step
    arch = Architect(net, order="second", reduce=reduce)
    out["first"] = arch.first_order_grads(xv, yv)[0]
    out["second"] = arch.second_order_grads(x, y, xv, yv, 0.025, opt)[0]
    return out


if __name__ == "__main__":
    main(sys.argv[1])
