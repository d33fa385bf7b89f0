"""Peak-memory meter: the CPU method on this machine's real /proc, its arithmetic on a
fake procfs, and the paths that yield no figure (with a reason)."""

import os
from pathlib import Path

import pytest
import torch

from profilers.memory import (
    METHOD_CPU,
    METHOD_OPENCL,
    METHOD_TORCH,
    MemoryResult,
    measure_peak_memory,
    memory_method,
    read_proc_status_kib,
)

MiB = 1 << 20


def _clear_refs_writable() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _clear_refs_writable(), reason="/proc/self/clear_refs not writable")
def test_cpu_peak_of_a_64_mib_tensor_on_this_machine():
    # torch.ones touches every page (torch.empty would not make them resident)
    def fn():
        x = torch.ones(16 * MiB, dtype=torch.float32)  # 64 MiB
        return float(x[-1])

    r = measure_peak_memory("cpu", fn)
    assert r.method == METHOD_CPU and r.reason is None
    # the tensor itself plus small change (other threads, page tables, allocator rounding)
    assert 60 * MiB <= r.peak_bytes <= 96 * MiB


@pytest.mark.skipif(not _clear_refs_writable(), reason="/proc/self/clear_refs not writable")
def test_cpu_peak_of_a_tiny_op_is_small():
    r = measure_peak_memory("cpu", lambda: None)
    assert r.peak_bytes is not None and r.peak_bytes < 4 * MiB


def fake_procfs(root: Path, rss_kib: int, hwm_kib: int) -> Path:
    (root / "self").mkdir(parents=True, exist_ok=True)
    (root / "self" / "clear_refs").write_text("")
    write_status(root, rss_kib, hwm_kib)
    return root


def write_status(root: Path, rss_kib: int, hwm_kib: int) -> None:
    (root / "self" / "status").write_text(
        "Name:\tpython\nVmPeak:\t  900000 kB\n"
        f"VmHWM:\t{hwm_kib:>8} kB\nVmRSS:\t{rss_kib:>8} kB\nThreads:\t3\n")


def test_cpu_arithmetic_on_a_fake_procfs(tmp_path):
    root = fake_procfs(tmp_path, rss_kib=100_000, hwm_kib=100_000)
    calls = []

    def fn():  # the op peaks at +4096 KiB and ends with +200 KiB still resident
        calls.append(1)
        if len(calls) == 2:  # the measured (warm) call; the first one is the warm-up
            write_status(root, rss_kib=100_200, hwm_kib=104_096)

    trims = []
    r = measure_peak_memory("cpu", fn, procfs_root=root, trim=lambda: trims.append(1) or True)
    assert r == MemoryResult(4096 * 1024, METHOD_CPU, None)
    assert (root / "self" / "clear_refs").read_text() == "5"
    assert len(calls) == 2 and trims == [1]


def test_cpu_cold_call_when_asked(tmp_path):
    root = fake_procfs(tmp_path, rss_kib=10, hwm_kib=10)
    calls = []
    r = measure_peak_memory("cpu", lambda: calls.append(1), procfs_root=root, warmup=0,
                            trim=lambda: True)
    assert calls == [1] and r.peak_bytes == 0  # nothing new became resident


def test_cpu_unwritable_clear_refs_gives_none_and_reason(tmp_path):
    root = fake_procfs(tmp_path, rss_kib=10, hwm_kib=10)
    (root / "self" / "clear_refs").unlink()
    (root / "self" / "clear_refs").mkdir()  # unwritable as a file even for root
    r = measure_peak_memory("cpu", lambda: None, procfs_root=root, trim=lambda: True)
    assert r.peak_bytes is None and r.method == METHOD_CPU
    assert "clear_refs is not writable" in r.reason


def test_cpu_kernel_ignoring_the_reset_gives_none(tmp_path):
    # VmHWM far above VmRSS right after writing 5: the kernel did not reset it
    root = fake_procfs(tmp_path, rss_kib=100_000, hwm_kib=900_000)
    r = measure_peak_memory("cpu", lambda: None, procfs_root=root, trim=lambda: True)
    assert r.peak_bytes is None and "did not reset VmHWM" in r.reason


def test_cpu_missing_status_field(tmp_path):
    root = fake_procfs(tmp_path, rss_kib=1, hwm_kib=1)
    (root / "self" / "status").write_text("Name:\tpython\n")
    r = measure_peak_memory("cpu", lambda: None, procfs_root=root, trim=lambda: True)
    assert r.peak_bytes is None and "VmRSS" in r.reason


def test_read_proc_status_kib_real():
    v = read_proc_status_kib(Path("/proc/self/status"), "VmRSS", "VmHWM")
    assert 0 < v["VmRSS"] <= v["VmHWM"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA/ROCm device is present")
@pytest.mark.parametrize("kind", ["cuda", "rocm"])
def test_torch_kinds_without_a_device_give_a_reason(kind):
    calls = []
    r = measure_peak_memory(kind, lambda: calls.append(1))
    assert r.peak_bytes is None and r.method == METHOD_TORCH and kind in r.reason
    assert calls == []  # the op is not run on a device that is not there


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA/ROCm device")
def test_torch_peak_of_a_64_mib_tensor():
    def fn():
        return torch.ones(16 * MiB, device="cuda").sum()

    r = measure_peak_memory("cuda", fn, torch.cuda.synchronize)
    assert r.reason is None and 64 * MiB <= r.peak_bytes <= 66 * MiB


def test_opencl_is_a_pass_through_and_unknown_kinds_say_so():
    r = measure_peak_memory("opencl", lambda: None)
    assert (r.peak_bytes, r.method) == (None, METHOD_OPENCL) and "buffer accounting" in r.reason
    r = measure_peak_memory("tpu", lambda: None)
    assert r.peak_bytes is None and "tpu" in r.reason


def test_memory_method_lines():
    for kind, method in (("cpu", METHOD_CPU), ("cuda", METHOD_TORCH), ("rocm", METHOD_TORCH),
                         ("opencl", METHOD_OPENCL), ("opencl-amd", METHOD_OPENCL)):
        line = memory_method(kind)
        assert line.startswith(method + ": ") and os.linesep not in line
    assert memory_method("tpu").startswith("no memory meter")
