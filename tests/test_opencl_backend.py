"""The profiler's OpenCL backend adapter."""

from __future__ import annotations

import pytest
from torch import nn

pytest.importorskip("pyopencl")

from profilers.opencl_backend import OpenCLBackend, Prepared  # noqa: E402


@pytest.fixture(scope="module")
def backend():
    return OpenCLBackend(0, 0)


def test_describe(backend):
    d = backend.describe()
    assert d["backend"] == "opencl" and OpenCLBackend.name == "opencl"
    for key in ("name", "vendor", "driver_version", "compute_units", "max_clock_mhz",
                "global_mem_bytes", "local_mem_bytes", "is_cpu", "platform_name"):
        assert key in d


def test_prepare_run_release(backend):
    from nasbench.ops import build_op

    p = backend.prepare(build_op("sep_conv_3x3", 16, 16, 1), (1, 16, 16, 16))
    assert isinstance(p, Prepared)
    t = p.run()
    assert t is not None and 0 < t < 1.0
    p.sync()
    assert p.peak_bytes == p.activation_bytes + p.weight_bytes
    assert p.activation_bytes >= 2 * 16 * 16 * 16 * 4  # input + output at least
    assert p.kernel_launches == 4 and p.flops > 0
    p.release()


def test_identity_costs_nothing(backend):
    p = backend.prepare(nn.Identity(), (1, 4, 8, 8))
    assert p.run() == 0.0 and p.kernel_launches == 0
    p.release()


def test_float16_rejected(backend):
    with pytest.raises(ValueError, match="float32"):
        backend.prepare(nn.ReLU(), (1, 4, 8, 8), dtype="float16")


def test_tuning_dir_persists(tmp_path):
    b1 = OpenCLBackend(0, 0, tuning_dir=tmp_path)
    b1.prepare(nn.MaxPool2d(3, 1, 1), (1, 8, 16, 16)).release()
    assert b1.tuner.tuned == 1 and list(tmp_path.glob("opencl-tuning-*.json"))
    b2 = OpenCLBackend(0, 0, tuning_dir=tmp_path)
    b2.prepare(nn.MaxPool2d(3, 1, 1), (1, 8, 16, 16)).release()
    assert b2.tuner.tuned == 0 and b2.tuner.reused == 1
