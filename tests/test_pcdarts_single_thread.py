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

# run in the child: a few channels_last steps on one thread, then the outputs and
# gradients of a channels_last and an NCHW copy of the fresh network, compared
CHILD = r"""
import copy, json, sys, torch
torch.set_num_threads(1)
{build}
torch.manual_seed(0)
net = make()
fresh = copy.deepcopy(net)
cl = net.to(memory_format=torch.channels_last)
x = torch.randn(8, 3, {size}, {size}).contiguous(memory_format=torch.channels_last)
for i in range(3):
    cl.zero_grad()
    cl(x).sum().backward()

def out_and_grads(m, x):
    out = m(x)
    out.square().sum().backward()
    return [out] + [p.grad for p in m.parameters()]

torch.manual_seed(1)
x = torch.randn(4, 3, {size}, {size})
ref = out_and_grads(copy.deepcopy(fresh), x)
got = out_and_grads(copy.deepcopy(fresh).to(memory_format=torch.channels_last),
                    x.contiguous(memory_format=torch.channels_last))
err = max(float((a - b).abs().max() / (b.abs().max() + 1e-12)) for a, b in zip(got, ref))
print(json.dumps({{"err": err}}))
"""

NETWORKS = {
    "darts": ("from nasbench.spaces.darts_supernet import SearchNetwork\n"
              "make = lambda: SearchNetwork(C=8, layers=5, partial_k=4, input_size=16)", 16),
    "nb201": ("from nasbench.spaces.nb201_supernet import NB201SearchNetwork\n"
              "make = lambda: NB201SearchNetwork(C=8, N=2, partial_k=4, input_size=16)", 16),
}


@pytest.mark.parametrize("space", sorted(NETWORKS))
def test_pcdarts_channels_last_one_thread_trains_and_matches_nchw(space):
    build, size = NETWORKS[space]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD.format(build=build, size=size)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, (
        f"exit code {proc.returncode} (-6: SIGABRT, heap corruption)\n{proc.stderr[-2000:]}")
    err = json.loads(proc.stdout.strip().splitlines()[-1])["err"]
    # float32 kernels in two layouts: a few 1e-6 apart (wrong gradients were O(1) off)
    assert err < 1e-3, err


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
