"""Peak device memory of one operation call, in bytes.

Methods, by device kind:

* ``cuda`` / ``rocm`` (``"torch-cuda-peak-allocated"``): ``torch.cuda.reset_peak_memory_stats``,
  run the op, ``torch.cuda.max_memory_allocated`` minus ``torch.cuda.memory_allocated``
  before the op. This counts tensor bytes handed out by torch's caching allocator
  (outputs, temporaries, library workspaces allocated through torch), rounded to its
  512-byte blocks; memory reserved but not allocated by the cache, and memory that
  cuDNN/cuBLAS/MIOpen allocate behind torch's back, are not included. Inputs and
  weights already allocated before the call are in the baseline, so not counted.
* ``cpu`` (``"cpu-rss-hwm"``): the process's peak resident set. Writing ``5`` to
  ``/proc/self/clear_refs`` resets ``VmHWM`` (the high-water mark of the resident set)
  to the current ``VmRSS``; after the op, ``VmHWM`` minus that baseline ``VmRSS`` is
  the peak of *newly resident* memory during the call. Limits:

  - page granularity (4 KiB): allocations smaller than a page may read as 0; and the
    kernel keeps RSS in per-CPU batched counters, so figures are exact only to within
    a few hundred KiB (a 64 MiB tensor reads as ~63.8-64.2 MiB);
  - allocator caching: memory the allocator already holds (freed by an earlier call
    but kept resident) is reused without raising the resident set, so it is
    invisible. To limit this the measured call is a *warm* one (one warm-up call
    first, so one-time costs such as lazy initialisation, oneDNN primitive caches and
    thread-pool stacks are not charged to the op), and just before it glibc is asked
    to return its free memory to the kernel (``malloc_trim(0)``) so that the op's
    allocations have to fault their pages in again. Where there is no glibc (musl)
    the trim is skipped and the figure can read low;
  - the resident set is the whole process's: other threads allocating at the same
    time add to it, and pages of the op's input that were swapped out count when
    touched;
  - when ``clear_refs`` cannot be written (old kernel, restricted /proc) there is no
    figure: ``peak_bytes`` is None with the reason.

* ``opencl`` / ``opencl-amd`` (``"opencl-buffers"``): the OpenCL backend does its own
  buffer accounting (the sum of the buffers it allocates for the op) and the caller
  passes that figure through; this module has nothing to measure there.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryResult", "measure_peak_memory", "memory_method", "read_proc_status_kib"]

METHOD_CPU = "cpu-rss-hwm"
METHOD_TORCH = "torch-cuda-peak-allocated"
METHOD_OPENCL = "opencl-buffers"

_METHODS = {
    "cpu": (METHOD_CPU, "peak resident set (VmHWM after resetting it via "
            "/proc/self/clear_refs) minus VmRSS before the op, on a warm call after "
            "malloc_trim; page granularity, allocator caches invisible"),
    "cuda": (METHOD_TORCH, "torch.cuda.max_memory_allocated after reset_peak_memory_stats, "
             "minus memory_allocated before the op (torch allocator bytes)"),
    "rocm": (METHOD_TORCH, "torch.cuda (HIP) max_memory_allocated after "
             "reset_peak_memory_stats, minus memory_allocated before the op"),
    "opencl": (METHOD_OPENCL, "sum of the OpenCL buffers the backend allocates for the op"),
    "opencl-amd": (METHOD_OPENCL, "sum of the OpenCL buffers the backend allocates for "
                   "the op"),
}

# VmHWM may exceed VmRSS right after the reset by what other threads fault in meanwhile;
# beyond this slack the reset evidently did not happen (kernel ignores "5").
_RESET_SLACK_BYTES = 8 << 20


@dataclass(frozen=True)
class MemoryResult:
    """Peak memory of one call: ``peak_bytes`` (bytes, or None with ``reason``) and the
    ``method`` used."""

    peak_bytes: int | None
    method: str
    reason: str | None = None


def memory_method(kind: str) -> str:
    """Returns a one-line description of how peak memory is measured on ``kind``
    (``cpu``, ``cuda``, ``rocm``, ``opencl``, ``opencl-amd``)."""
    entry = _METHODS.get((kind or "").lower())
    if entry is None:
        return f"no memory meter for device kind {kind!r}"
    return f"{entry[0]}: {entry[1]}"


def read_proc_status_kib(status: Path, *fields: str) -> dict[str, int]:
    """Returns the requested ``Vm*`` fields of a ``/proc/<pid>/status`` file, in KiB.
    Raises OSError when unreadable, KeyError when a field is missing."""
    text = status.read_text()
    out = {}
    for f in fields:
        m = re.search(rf"^{re.escape(f)}:\s*(\d+)\s*kB", text, re.MULTILINE)
        if m is None:
            raise KeyError(f"{f} not in {status}")
        out[f] = int(m.group(1))
    return out


def _malloc_trim() -> bool:
    """Asks glibc to give free heap memory back to the kernel; returns whether it
    could (False without glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


def _measure_cpu(fn: Callable[[], object], sync: Callable[[], None], procfs_root: Path,
                 trim: Callable[[], bool]) -> MemoryResult:
    status = procfs_root / "self" / "status"
    clear_refs = procfs_root / "self" / "clear_refs"
    trim()
    try:
        # "5" resets only the peak-RSS mark (Linux >= 4.0); it leaves page state alone
        with open(clear_refs, "w") as f:
            f.write("5")
    except OSError as e:
        return MemoryResult(None, METHOD_CPU,
                            f"cannot reset the peak resident set: {clear_refs} is not "
                            f"writable ({e.strerror or type(e).__name__})")
    try:
        base = read_proc_status_kib(status, "VmRSS", "VmHWM")
    except (OSError, KeyError) as e:
        return MemoryResult(None, METHOD_CPU, f"cannot read {status} ({e})")
    if (base["VmHWM"] - base["VmRSS"]) * 1024 > _RESET_SLACK_BYTES:
        return MemoryResult(None, METHOD_CPU,
                            f"writing 5 to {clear_refs} did not reset VmHWM (kernel too old?)")
    fn()
    sync()
    try:
        after = read_proc_status_kib(status, "VmHWM")
    except (OSError, KeyError) as e:
        return MemoryResult(None, METHOD_CPU, f"cannot read {status} ({e})")
    return MemoryResult(max(0, after["VmHWM"] - base["VmRSS"]) * 1024, METHOD_CPU, None)


def _measure_torch(kind: str, fn: Callable[[], object], sync: Callable[[], None],
                   device_index: int, warmup: int) -> MemoryResult:
    try:
        import torch
    except ImportError:
        return MemoryResult(None, METHOD_TORCH, "torch is not installed")
    if not torch.cuda.is_available():
        return MemoryResult(None, METHOD_TORCH, f"torch sees no {kind} device")
    if not 0 <= device_index < torch.cuda.device_count():
        return MemoryResult(None, METHOD_TORCH,
                            f"no {kind} device {device_index} "
                            f"({torch.cuda.device_count()} visible)")
    dev = torch.device("cuda", device_index)
    _warm_up(fn, sync, warmup)
    torch.cuda.synchronize(dev)  # frees from earlier queued work land before the baseline
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    fn()
    sync()
    torch.cuda.synchronize(dev)
    return MemoryResult(max(0, torch.cuda.max_memory_allocated(dev) - base), METHOD_TORCH)


def measure_peak_memory(kind: str, fn: Callable[[], object],
                        sync: Callable[[], None] | None = None, device_index: int = 0, *,
                        procfs_root: Path = Path("/proc"), warmup: int = 1,
                        trim: Callable[[], bool] | None = None) -> MemoryResult:
    """Returns the peak memory (bytes) that one call of ``fn`` adds on top of what was
    allocated before it, on device ``kind`` (``cpu``, ``cuda``, ``rocm``; ``opencl``
    returns None: the OpenCL backend supplies its buffer accounting itself).

    ``warmup`` calls run first (not measured) so one-time costs are not charged to the
    op: the figure is that of a warm call. ``sync`` waits for the device after ``fn``.
    ``procfs_root`` (the ``/proc`` to use) and ``trim`` (what releases the C
    allocator's free memory, default glibc ``malloc_trim(0)``) are injectable for tests.
    Never raises for a missing meter: ``peak_bytes`` is None and ``reason`` says why.
    Exceptions from ``fn`` propagate."""
    sync = sync or (lambda: None)
    kind = (kind or "").lower()
    if kind in ("opencl", "opencl-amd"):
        return MemoryResult(None, METHOD_OPENCL,
                            "OpenCL peak memory is the backend's buffer accounting, "
                            "supplied by the caller")
    if kind not in ("cpu", "cuda", "rocm"):
        return MemoryResult(None, "none", f"no memory meter for device kind {kind!r}")
    if kind == "cpu":
        _warm_up(fn, sync, warmup)
        return _measure_cpu(fn, sync, Path(procfs_root), trim or _malloc_trim)
    return _measure_torch(kind, fn, sync, device_index, warmup)


def _warm_up(fn: Callable[[], object], sync: Callable[[], None], n: int) -> None:
    for _ in range(max(0, int(n))):
        fn()
    sync()


METHOD_CPU_ALLOCATED = "torch-cpu-allocated"


@contextlib.contextmanager
def _silenced_stderr():
    """Sends file descriptor 2 to /dev/null: the profiler's C++ side logs its start and
    stop there, which is noise on a command line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def allocation_curve_peak(fn: Callable[[], object]) -> int | None:
    """Returns the peak of the bytes torch's CPU allocator holds for ``fn``'s call
    above what it held before (bytes), from the profiler's time-ordered allocation
    and free events; None when this torch's profiler gives no memory events."""
    from torch.profiler import ProfilerActivity, profile
    with _silenced_stderr(), profile(activities=[ProfilerActivity.CPU],
                                     profile_memory=True) as prof:
        fn()
    try:
        events = [e for e in prof.profiler.kineto_results.events()
                  if e.name() == "[memory]"]
        events.sort(key=lambda e: e.start_ns())
        deltas = [int(e.nbytes()) for e in events]
    except AttributeError:
        return None
    live = peak = 0
    for d in deltas:
        live += d
        peak = max(peak, live)
    return peak


def measure_allocated(kind: str, fn: Callable[[], object], device_index: int = 0,
                      sync: Callable[[], None] | None = None) -> MemoryResult:
    """Returns the peak of the bytes torch's allocator hands out during one warm call of
    ``fn`` beyond what it held before (bytes): tensors, and the scratch memory kernels
    take from torch, not the resident set. ``cpu``: the profiler's allocation events
    (method ``torch-cpu-allocated``; torch's CPU allocator caches nothing, so this is
    what the call asks of the C allocator); ``cuda``/``rocm``: ``max_memory_allocated``
    (as :func:`measure_peak_memory`). Never raises for a missing meter."""
    sync = sync or (lambda: None)
    kind = (kind or "").lower()
    if kind in ("cuda", "rocm"):
        return _measure_torch(kind, fn, sync, device_index, 1)
    if kind != "cpu":
        return MemoryResult(None, "none", f"no torch allocator on device kind {kind!r}")
    _warm_up(fn, sync, 1)
    peak = allocation_curve_peak(lambda: (fn(), sync()))
    if peak is None:
        return MemoryResult(None, METHOD_CPU_ALLOCATED,
                            "this torch's profiler reports no memory events")
    return MemoryResult(peak, METHOD_CPU_ALLOCATED)
