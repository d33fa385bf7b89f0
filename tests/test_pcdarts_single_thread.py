"""PC-DARTS supernets on one thread in channels_last (the CLI's CPU setting).

The reduction edges' ``skip_connect`` is a FactorizedReduce on C/K channels (4 here): a
stride-2 1x1 conv whose weight gradient, on a channels_last input of even size, went to
oneDNN's ``jit_1x1:avx2`` "reduce to unit stride" path, which writes past its scratch
buffer when C % 8 != 0: glibc aborted the process ("double free or corruption") on one
thread, and several threads got wrong weight gradients or hung. Each network runs in a
subprocess (a heap corruption kills the process, not pytest), with a timeout (a hang).
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from nasbench.ops import FactorizedReduce
from nasbench.spaces.darts_supernet import SearchNetwork

# the child: per network, a few channels_last steps on one thread, then the outputs and
# gradients of channels_last and NCHW copies of the fresh network; a line per network
CHILD = r"""
import copy, json, torch
torch.set_num_threads(1)
from nasbench.spaces.darts_supernet import SearchNetwork
from nasbench.spaces.nb201_supernet import NB201SearchNetwork

NETWORKS = {
    "nb201": lambda: NB201SearchNetwork(C=8, N=2, partial_k=4, input_size=8),
    "darts": lambda: SearchNetwork(C=8, layers=5, partial_k=4, input_size=8),
}

def out_and_grads(m, x):
    out = m(x)
    out.square().sum().backward()
    return [out] + [p.grad for p in m.parameters()]

for name, make in NETWORKS.items():
    torch.manual_seed(0)
    fresh = make()
    net = copy.deepcopy(fresh).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    for _ in range(3):
        net.zero_grad()
        net(x).sum().backward()
    x = torch.randn(4, 3, 8, 8)
    ref = out_and_grads(copy.deepcopy(fresh), x)
    got = out_and_grads(copy.deepcopy(fresh).to(memory_format=torch.channels_last),
                        x.contiguous(memory_format=torch.channels_last))
    err = max(float((a - b).abs().max() / (b.abs().max() + 1e-12))
              for a, b in zip(got, ref, strict=True))
    print(json.dumps({"network": name, "err": err}), flush=True)
"""


def test_pcdarts_supernets_channels_last_one_thread_train_and_match_nchw():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=120, env=env)
    done = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, (
        f"exit code {proc.returncode} (-6: SIGABRT, heap corruption) after {done}\n"
        f"{proc.stderr[-2000:]}")
    assert [d["network"] for d in done] == ["nb201", "darts"]
    for d in done:
        # float32 kernels in two layouts agree to ~1e-5 (the wrong gradients were O(1) off)
        assert d["err"] < 1e-3, d


def test_supernet_factorized_reduce_is_the_unit_stride_form_with_the_same_maths():
    torch.manual_seed(0)
    net = SearchNetwork(C=8, layers=5, partial_k=4, input_size=16)
    frs = [m for m in net.modules() if isinstance(m, FactorizedReduce)]
    assert frs and all(type(m) is not FactorizedReduce for m in frs)
    for m in frs[:3]:
        plain = FactorizedReduce(m.conv_1.in_channels, 2 * m.conv_1.out_channels,
                                 affine=m.bn.affine).double()
        plain.load_state_dict(m.state_dict())
        m = m.double()
        x = torch.randn(2, m.conv_1.in_channels, 8, 8, dtype=torch.float64,
                        requires_grad=True)
        x2 = x.detach().clone().requires_grad_(True)
        a, b = m(x), plain(x2)
        torch.testing.assert_close(a, b)
        a.square().sum().backward()
        b.square().sum().backward()
        torch.testing.assert_close(x.grad, x2.grad)
        for p, q in zip(m.parameters(), plain.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad)
        odd = torch.randn(2, m.conv_1.in_channels, 7, 7, dtype=torch.float64)
        for f in (m, plain):        # odd sizes: both fail alike (3x3 and 4x4 halves)
            with pytest.raises(RuntimeError):
                f(odd)
