"""Benchmarks: each OpenCL kernel kind against torch's CPU implementation of the same op
at representative DARTS shapes, and DARTS_V2 (C=36, 20 cells) end to end.

Run: ``pytest tests/bench --benchmark-enable`` (groups pair "opencl" and "torch" rows of
the same op). The OpenCL rows store in ``extra_info`` the kernel time from profiling
events, the op's GFLOP/s and its fraction of the device's measured roofline.

Note: run nothing else on the machine meanwhile; torch's OpenMP threads and PoCL's
worker threads compete for the same cores, so concurrent load distorts both columns.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("pyopencl")

from nasbench.genotypes import DARTS_V2  # noqa: E402
from nasbench.ops import build_op  # noqa: E402
from nasbench.spaces.darts_network import build_network_from_genotype  # noqa: E402
from profilers.opencl_backend import OpenCLBackend  # noqa: E402


class _Halves(nn.Module):
    """``x[:, :C/2] + x[:, C/2:]`` (the add kernel) or their concat (the copy path)."""

    def __init__(self, c: int, cat: bool):
        super().__init__()
        self.c, self.cat = c, cat

    def forward(self, x):
        a, b = x[:, : self.c], x[:, self.c :]
        return torch.cat([b, a], dim=1) if self.cat else a + b


def _dw(c, k, s, d):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, s, d * (k - 1) // 2, dilation=d,
                                              groups=c, bias=False))


CASES = {  # name -> (module factory, input shape)
    "pointwise/c144-36/h32": (lambda: build_op("relu_conv_bn_1x1", 144, 36), (1, 144, 32, 32)),
    "pointwise/c576-144/h8": (lambda: build_op("relu_conv_bn_1x1", 576, 144), (1, 576, 8, 8)),
    "depthwise/c36/k3s1/h32": (lambda: _dw(36, 3, 1, 1), (1, 36, 32, 32)),
    "depthwise/c72/k5s2/h32": (lambda: _dw(72, 5, 2, 1), (1, 72, 32, 32)),
    "depthwise/c144/k5d2/h8": (lambda: _dw(144, 5, 1, 2), (1, 144, 8, 8)),
    "general/stem/c3-108/h32": (lambda: build_op("stem", 3, 108), (1, 3, 32, 32)),
    "maxpool/c36/s1/h32": (lambda: build_op("max_pool_3x3", 36, 36, 1), (1, 36, 32, 32)),
    "avgpool/c72/s2/h32": (lambda: build_op("avg_pool_3x3", 72, 72, 2), (1, 72, 32, 32)),
    "add/c36/h32": (lambda: _Halves(36, cat=False), (1, 72, 32, 32)),
    "concat/c72/h32": (lambda: _Halves(36, cat=True), (1, 72, 32, 32)),
    "gap_linear/c576-10/h8": (lambda: build_op("gap_linear", 576, 10), (1, 576, 8, 8)),
    "sep_conv_3x3/c36/h32": (lambda: build_op("sep_conv_3x3", 36, 36, 1), (1, 36, 32, 32)),
    "dil_conv_5x5/c72/h16": (lambda: build_op("dil_conv_5x5", 72, 72, 1), (1, 72, 16, 16)),
    "factorized_reduce/c144-72/h32": (lambda: build_op("factorized_reduce", 144, 72, 2),
                                      (1, 144, 32, 32)),
}


@pytest.fixture(scope="module")
def backend():
    return OpenCLBackend(0, 0)


@pytest.fixture(scope="module")
def roofline(backend):
    from kernels.roofline import measure_roofline
    return measure_roofline(backend.runtime)


def _bench_opencl(benchmark, backend, roofline, module, shape):
    prepared = backend.prepare(module, shape)
    kernel_s = []
    benchmark(lambda: kernel_s.append(prepared.run()))
    t = sorted(kernel_s)[len(kernel_s) // 2]
    benchmark.extra_info.update(kernel_ms=t * 1e3, launches=prepared.kernel_launches,
                                device_bytes=prepared.peak_bytes)
    if prepared.flops and t > 0:
        gflops = prepared.flops / t / 1e9
        benchmark.extra_info.update(gflops=gflops, roofline_gflops=roofline["gflops"],
                                    roofline_fraction=gflops / roofline["gflops"],
                                    roofline_gbps=roofline["gbps"])
    prepared.release()


def _bench_torch(benchmark, module, shape):
    module.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        benchmark(module, x)


@pytest.mark.parametrize("impl", ["opencl", "torch"])
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_vs_torch(benchmark, backend, roofline, case, impl):
    factory, shape = CASES[case]
    benchmark.group = case
    if impl == "opencl":
        _bench_opencl(benchmark, backend, roofline, factory(), shape)
    else:
        _bench_torch(benchmark, factory(), shape)


@pytest.mark.parametrize("impl", ["opencl", "torch"])
@pytest.mark.parametrize("batch", [1, pytest.param(32, marks=pytest.mark.slow)])
def test_darts_v2_end_to_end(benchmark, backend, roofline, batch, impl):
    net = build_network_from_genotype(DARTS_V2, C=36, num_cells=20)
    benchmark.group = f"darts_v2/C36-20cells/b{batch}"
    shape = (batch, 3, 32, 32)
    if impl == "opencl":
        _bench_opencl(benchmark, backend, roofline, net, shape)
    else:
        _bench_torch(benchmark, net, shape)
