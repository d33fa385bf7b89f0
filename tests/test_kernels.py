"""Correctness of every OpenCL kernel against torch, plus the runtime's program cache,
device listing, tuning cache and roofline helpers. Runs for real on PoCL's CPU device."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("pyopencl")

from kernels import runtime as R  # noqa: E402
from kernels.executor import compile_module  # noqa: E402
from kernels.tuning import Tuner  # noqa: E402

TOL = 1e-4  # max abs error / max abs value (float32)


@pytest.fixture(scope="module")
def rt():
    return R.Runtime(0, 0)


def randomize_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Gives every BatchNorm2d non-trivial running statistics and affine parameters, so
    that folding is actually tested; returns the module in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            if m.weight is not None:
                m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(c, generator=g) - 0.5)
    return module.eval()


def check(module: nn.Module, shape, rt, seed: int = 0):
    """Runs ``module`` through the executor and torch on the same random input; asserts
    the relative error is below TOL; returns the compiled module."""
    torch.manual_seed(seed)
    module = randomize_bn(module)
    x = torch.randn(shape)
    cm = compile_module(module, shape, rt)
    y = cm.forward(x)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a multi-threaded reference crawls on a busy 2-core machine
    try:
        with torch.no_grad():
            ref = module(x).numpy()
    finally:
        torch.set_num_threads(threads)
    assert y.shape == ref.shape
    scale = max(float(np.abs(ref).max()), 1e-12)
    err = float(np.abs(y - ref).max()) / scale
    assert err < TOL, f"relative error {err:.2e}"
    return cm


def kernel_names(cm) -> list[str]:
    return [s.kernel_name for s in cm.steps]


class ReluConvBNRelu(nn.Module):
    def __init__(self, c_in, c_out, k, stride=1, padding=0, dilation=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, padding, dilation, groups, bias=True)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(torch.relu(x))))


# ---- convolutions ---------------------------------------------------------------------

@pytest.mark.parametrize("c_in,c_out,hw,stride", [(36, 36, 32, 1), (144, 72, 16, 1),
                                                  (20, 10, 7, 1), (16, 24, 9, 2)])
def test_pointwise(rt, c_in, c_out, hw, stride):
    cm = check(ReluConvBNRelu(c_in, c_out, 1, stride), (1, c_in, hw, hw), rt)
    assert kernel_names(cm) == ["conv_pw"]


def test_pointwise_batch(rt):
    cm = check(nn.Conv2d(12, 8, 1), (3, 12, 5, 6), rt)
    assert kernel_names(cm) == ["conv_pw"]


@pytest.mark.parametrize("c,hw,k,stride,dil", [(36, 32, 3, 1, 1), (36, 32, 5, 1, 1),
                                               (72, 32, 3, 2, 1), (72, 16, 5, 2, 2),
                                               (16, 8, 3, 1, 2), (8, 11, 5, 1, 1),
                                               (8, 13, 3, 2, 1)])
def test_depthwise(rt, c, hw, k, stride, dil):
    pad = dil * (k - 1) // 2
    cm = check(ReluConvBNRelu(c, c, k, stride, pad, dil, groups=c), (2, c, hw, hw), rt)
    assert kernel_names(cm) == ["conv_dw"]


@pytest.mark.parametrize("c_in,c_out,k,stride,pad,dil,groups,hw", [
    (3, 108, 3, 1, 1, 1, 1, 32),   # the DARTS stem
    (8, 12, 3, 2, 1, 1, 2, 9),     # grouped, strided
    (6, 4, (3, 1), (1, 2), (1, 0), 1, 1, 10),  # non-square
    (4, 8, 3, 1, 2, 2, 1, 7),      # dilated
    (4, 8, 2, 1, 0, 1, 4, 6),      # depthwise multiplier 2 (general path)
])
def test_general_conv(rt, c_in, c_out, k, stride, pad, dil, groups, hw):
    cm = check(ReluConvBNRelu(c_in, c_out, k, stride, pad, dil, groups), (1, c_in, hw, hw), rt)
    assert kernel_names(cm) == ["conv_direct"]


class ColumnStrided(nn.Module):
    """Feeds ``op`` a view with column stride 2 (x[..., ::2]): the scalar kernel paths."""

    def __init__(self, op):
        super().__init__()
        self.op = op

    def forward(self, x):
        v = x[:, :, :, ::2]
        return self.op(v)


def test_general_conv_strided_view(rt):
    cm = check(ColumnStrided(nn.Conv2d(4, 8, 3, 1, 1, groups=2)), (2, 4, 6, 12), rt)
    assert kernel_names(cm) == ["conv_general"]


def test_eltwise_strided_views(rt):
    class AddStrided(nn.Module):
        def forward(self, x):
            v = x[:, :, :, ::2]
            return torch.relu(v) + v

    cm = check(AddStrided(), (2, 3, 5, 14), rt)
    assert set(kernel_names(cm)) == {"affine", "add2"}


# ---- pooling, element-wise, linear ------------------------------------------------------

@pytest.mark.parametrize("pool", [
    nn.MaxPool2d(3, 1, 1), nn.MaxPool2d(3, 2, 1), nn.MaxPool2d(2), nn.MaxPool2d(3, 2, 1,
                                                                                ceil_mode=True),
    nn.MaxPool2d(3, 1, 1, dilation=2),
    nn.AvgPool2d(3, 1, 1, count_include_pad=False), nn.AvgPool2d(3, 2, 1, count_include_pad=False),
    nn.AvgPool2d(3, 2, 1), nn.AvgPool2d(5, 3, 0, count_include_pad=False), nn.AvgPool2d(2),
])
def test_pool(rt, pool):
    cm = check(pool, (2, 5, 11, 11), rt)
    assert kernel_names(cm) == ["pool2d_vec" if pool.stride in (1, 2) else "pool2d"]


@pytest.mark.parametrize("hw", [32, 8, 5])
def test_pool_dart_shapes_and_strided_views(rt, hw):
    class Strided(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
            self.conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)

        def forward(self, x):  # x[..., ::2] has column stride 2: the scalar paths
            v = x[:, :, :, ::2]
            return self.pool(v) + self.conv(torch.relu(v))

    check(nn.MaxPool2d(3, 2, 1), (1, 8, hw, hw), rt)
    check(nn.AvgPool2d(3, 1, 1, count_include_pad=False), (1, 8, hw, hw), rt)
    # count_include_pad at 16 lanes (hw 32) and 8 lanes: the padded-count arithmetic
    check(nn.AvgPool2d(3, 2, 1), (1, 8, hw, hw), rt)
    check(nn.AvgPool2d(3, 1, 1), (1, 8, hw, hw), rt)
    cm = check(Strided(), (1, 4, hw, 2 * hw), rt)
    assert set(kernel_names(cm)) == {"pool2d", "conv_dw"}


@pytest.mark.parametrize("out_size,hw", [(1, 8), (1, 7), (2, 8), (3, 7)])
def test_adaptive_avg(rt, out_size, hw):
    cm = check(nn.AdaptiveAvgPool2d(out_size), (2, 6, hw, hw), rt)
    assert kernel_names(cm) == ["adaptive_avg"]


class Eltwise(nn.Module):
    def forward(self, x):
        a = torch.relu(x)
        b = x * 0.5
        return torch.cat([a + b, a, x.mul(0.0), 2.0 * x], dim=1)


def test_add_cat_scale_relu(rt):
    cm = check(Eltwise(), (2, 3, 5, 7), rt)
    assert set(kernel_names(cm)) <= {"add2_vec", "affine_vec"}


def test_linear_head(rt):
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10), nn.ReLU())
    cm = check(head, (3, 24, 4, 4), rt)
    assert "linear" in kernel_names(cm)


def test_standalone_bn(rt):
    cm = check(nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.BatchNorm2d(4)), (1, 4, 6, 6), rt)
    assert kernel_names(cm) == ["pool2d_vec", "affine_vec"]


# ---- runtime ------------------------------------------------------------------------------

def test_list_devices():
    devs = R.list_devices()
    assert devs, "PoCL should provide at least one device"
    keys = {"platform_index", "platform_name", "device_index", "name", "vendor", "version",
            "driver_version", "compute_units", "max_clock_mhz", "global_mem_bytes",
            "local_mem_bytes", "is_cpu", "fp16"}
    assert keys <= set(devs[0])
    assert devs[0]["compute_units"] >= 1 and devs[0]["global_mem_bytes"] > 0


def test_unknown_device_message():
    with pytest.raises(R.OpenCLUnavailableError, match="found"):
        R.get_device(99, 0)


def test_program_cache_hits(rt):
    src = "__kernel void k(__global float *y) { y[get_global_id(0)] = VALUE; }"
    before = R.cache_stats()
    rt.program(src, "-DVALUE=3.0f")
    mid = R.cache_stats()
    assert mid["builds"] == before["builds"] + 1
    R.Runtime(0, 0).program(src, "-DVALUE=3.0f")  # another runtime, same device
    after = R.cache_stats()
    assert after["builds"] == mid["builds"] and after["hits"] == mid["hits"] + 1


def test_tuning_cache_reused_across_runtimes(tmp_path):
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    rt1 = R.Runtime(0, 0)
    t1 = Tuner(rt1, tmp_path)
    cm1 = compile_module(conv, (1, 8, 16, 16), rt1, t1)
    assert t1.tuned == len(cm1.steps) == 1 and t1.reused == 0
    data = json.loads(t1.path.read_text())
    assert data["entries"] and not list(tmp_path.glob("*.tmp"))
    t2 = Tuner(R.Runtime(0, 0), tmp_path)
    compile_module(conv, (1, 8, 16, 16), t2.runtime, t2)
    assert t2.tuned == 0 and t2.reused == 1


def test_buffer_pool_reuses(rt):
    pool = R.BufferPool(rt.context)
    a = pool.acquire(1000)
    pool.release(a)
    assert pool.acquire(1000) is a and pool.held_bytes == a.size


def test_roofline(rt):
    from kernels.roofline import measure_copy_gbps, measure_gemm_gflops
    assert measure_gemm_gflops(rt, 64, 64, 1024, repeats=1) > 0
    assert measure_copy_gbps(rt, 1 << 20, repeats=1) > 0


def test_missing_kernel_is_named(rt):
    # a program that builds but lacks the kernel (what PoCL 3.0's cache returned for a
    # 16-wide pool on an AVX-512 host) must say which kernel and why, not INVALID_KERNEL_NAME
    with pytest.raises(R.KernelBuildError, match="no kernel 'no_such_kernel'"):
        rt.kernel("pool.cl", "no_such_kernel",
                  {"IS_MAX": 0, "KH": 3, "KW": 3, "SW": 2, "DW": 1, "VW": 16})
