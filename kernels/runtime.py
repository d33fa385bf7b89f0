"""pyopencl runtime: device discovery and selection, one context and profiling queue per
device, a process-wide program cache, a buffer pool and event timing.

Devices are addressed by ``(platform index, device index)`` in the order the ICD loader
reports them, which is stable for a given installation; nothing is chosen by heuristics.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pyopencl as cl

CL_DIR = "cl"
DEFAULT_BUILD_OPTIONS = ""  # no -cl-mad-enable: see kernels/cl/common.h.cl


class OpenCLUnavailableError(RuntimeError):
    """Raised when no OpenCL platform or the requested device does not exist."""


class KernelBuildError(RuntimeError):
    """The device's OpenCL compiler did not produce a kernel the executor needs."""


def _platforms() -> list:
    try:
        return cl.get_platforms()
    except cl.Error as exc:  # the ICD loader raises when no platform is installed
        raise OpenCLUnavailableError(f"no OpenCL platform found ({exc})") from None


def _device_info(pi: int, platform, di: int, dev) -> dict:
    exts = dev.extensions.split()
    return {
        "platform_index": pi,
        "platform_name": platform.name.strip(),
        "platform_version": platform.version.strip(),
        "device_index": di,
        "name": dev.name.strip(),
        "vendor": dev.vendor.strip(),
        "version": dev.version.strip(),
        "driver_version": dev.driver_version.strip(),
        "compute_units": int(dev.max_compute_units),
        "max_clock_mhz": int(dev.max_clock_frequency),
        "global_mem_bytes": int(dev.global_mem_size),
        "local_mem_bytes": int(dev.local_mem_size),
        "max_work_group_size": int(dev.max_work_group_size),
        "is_cpu": bool(dev.type & cl.device_type.CPU),
        "fp16": "cl_khr_fp16" in exts,
    }


def list_devices() -> list[dict]:
    """Returns one dict per OpenCL device, in (platform index, device index) order, with
    keys platform_index, platform_name, platform_version, device_index, name, vendor,
    version, driver_version, compute_units, max_clock_mhz (MHz), global_mem_bytes and
    local_mem_bytes (bytes), max_work_group_size, is_cpu and fp16 (bools). Returns an
    empty list when no OpenCL platform is installed."""
    try:
        plats = _platforms()
    except OpenCLUnavailableError:
        return []
    out = []
    for pi, p in enumerate(plats):
        try:
            devs = p.get_devices()
        except cl.Error:  # a platform with no devices raises DEVICE_NOT_FOUND
            continue
        out += [_device_info(pi, p, di, d) for di, d in enumerate(devs)]
    return out


def get_device(platform: int = 0, device: int = 0):
    """Returns the ``pyopencl.Device`` at (platform, device) or raises
    :class:`OpenCLUnavailableError` naming the devices that exist."""
    plats = _platforms()
    try:
        return plats[platform].get_devices()[device]
    except (IndexError, cl.Error):
        found = ", ".join(f"{d['platform_index']}:{d['device_index']} {d['name']}"
                          for d in list_devices()) or "none"
        raise OpenCLUnavailableError(
            f"no OpenCL device {platform}:{device}; found: {found}") from None


def read_source(name: str) -> str:
    """Returns the text of ``kernels/cl/<name>`` (package data)."""
    return resources.files(__package__).joinpath(CL_DIR, name).read_text(encoding="utf-8")


def format_defines(defines: dict | None) -> str:
    """Returns ``-DKEY=VALUE`` options for ``defines`` in sorted, hence stable, order."""
    return " ".join(f"-D{k}={int(v) if isinstance(v, bool) else v}"
                    for k, v in sorted((defines or {}).items()))


@dataclass
class _DeviceState:
    """What is shared by every Runtime on one device in this process."""

    device: object
    context: object
    programs: dict = field(default_factory=dict)


_STATES: dict[tuple, _DeviceState] = {}
_LOCK = threading.Lock()
CACHE_STATS = {"builds": 0, "hits": 0}
"""Process-wide program cache counters: ``builds`` (compilations) and ``hits``."""


def cache_stats() -> dict:
    """Returns a copy of the process-wide program cache counters {builds, hits}."""
    return dict(CACHE_STATS)


class BufferPool:
    """Reuses device buffers by exact size class (bytes rounded up to 256), so repeated
    prepare/release cycles do not hit the allocator. ``held_bytes`` counts buffers
    handed out, ``free_bytes`` those kept for reuse."""

    ALIGN = 256

    def __init__(self, context):
        self.context = context
        self._free: dict[int, list] = defaultdict(list)
        self.held_bytes = 0
        self.free_bytes = 0

    def acquire(self, nbytes: int):
        """Returns a READ_WRITE ``cl.Buffer`` of at least ``nbytes`` bytes."""
        size = max(self.ALIGN, -(-int(nbytes) // self.ALIGN) * self.ALIGN)
        if self._free[size]:
            buf = self._free[size].pop()
            self.free_bytes -= size
        else:
            buf = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, size)
        self.held_bytes += size
        return buf

    def release(self, buf) -> None:
        """Returns ``buf`` to the pool."""
        self.held_bytes -= buf.size
        self.free_bytes += buf.size
        self._free[buf.size].append(buf)

    def clear(self) -> None:
        """Drops the pooled (free) buffers so the driver can reclaim their memory."""
        for bufs in self._free.values():
            for b in bufs:
                b.release()
        self._free.clear()
        self.free_bytes = 0


class Runtime:
    """One OpenCL device: context (shared per device in the process), an in-order queue
    with profiling enabled, the program cache and a buffer pool."""

    def __init__(self, platform: int = 0, device: int = 0):
        key = (platform, device)
        with _LOCK:
            state = _STATES.get(key)
            if state is None:
                dev = get_device(platform, device)
                state = _DeviceState(dev, cl.Context([dev]))
                _STATES[key] = state
        self._state = state
        self.platform_index, self.device_index = platform, device
        self.device = state.device
        self.context = state.context
        self.queue = cl.CommandQueue(
            self.context, properties=cl.command_queue_properties.PROFILING_ENABLE)
        self.pool = BufferPool(self.context)
        self.info = _device_info(platform, self.device.platform, device, self.device)

    @property
    def device_key(self) -> str:
        """Returns a string identifying the device and driver (for caches)."""
        i = self.info
        return f"{i['platform_name']}|{i['name']}|{i['driver_version']}"

    # ---- programs ---------------------------------------------------------------------

    def program(self, source: str, options: str = ""):
        """Returns a built ``cl.Program`` for ``source`` + ``options`` on this device,
        compiling it only the first time in this process (key: sha256 of the source,
        the options and the device)."""
        digest = hashlib.sha256(source.encode()).hexdigest()
        key = (digest, options, self.device_key)
        with _LOCK:
            prg = self._state.programs.get(key)
            if prg is not None:
                CACHE_STATS["hits"] += 1
                return prg
        prg = cl.Program(self.context, source).build(options=options)
        with _LOCK:
            self._state.programs.setdefault(key, prg)
            CACHE_STATS["builds"] += 1
            return self._state.programs[key]

    def kernel(self, file: str, name: str, defines: dict | None = None):
        """Returns a new ``cl.Kernel`` ``name`` from ``kernels/cl/<file>`` compiled with
        ``defines`` (each caller gets its own kernel object so that arguments can be set
        once and the kernel enqueued many times)."""
        src = read_source("common.h.cl") + "\n" + read_source(file)
        opts = f"{DEFAULT_BUILD_OPTIONS} {format_defines(defines)}".strip()
        prg = self.program(src, opts)
        # some driver compilers (PoCL 3.0 on AVX-512 CPUs) report success yet drop a
        # kernel; say which one instead of pyopencl's bare INVALID_KERNEL_NAME
        names = prg.get_info(cl.program_info.KERNEL_NAMES).split(";")
        if name not in names:
            raise KernelBuildError(
                f"the OpenCL compiler of {self.device.name!r} built {file} with "
                f"{defines or {}} but produced no kernel {name!r} (a driver defect)")
        return cl.Kernel(prg, name)

    # ---- memory -----------------------------------------------------------------------

    def upload(self, array: np.ndarray):
        """Returns a new read-only device buffer holding ``array`` (float32, C order)."""
        arr = np.ascontiguousarray(array, dtype=np.float32)
        if arr.nbytes == 0:
            arr = np.zeros(1, np.float32)
        return cl.Buffer(self.context, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR,
                         hostbuf=arr)

    def write(self, buf, array: np.ndarray, offset_elems: int = 0) -> None:
        """Copies ``array`` (float32) into ``buf`` at ``offset_elems``; blocks."""
        arr = np.ascontiguousarray(array, dtype=np.float32)
        cl.enqueue_copy(self.queue, buf, arr, dst_offset=4 * offset_elems, is_blocking=True)

    def read(self, buf, n_elems: int, offset_elems: int = 0) -> np.ndarray:
        """Returns ``n_elems`` float32 values of ``buf`` from ``offset_elems`` (blocks)."""
        out = np.empty(n_elems, np.float32)
        cl.enqueue_copy(self.queue, out, buf, src_offset=4 * offset_elems, is_blocking=True)
        return out

    def finish(self) -> None:
        """Blocks until every command of the queue is done."""
        self.queue.finish()

    # ---- launching ----------------------------------------------------------------------

    def launch(self, kernel, global_size, local_size=None):
        """Enqueues ``kernel`` (arguments already set) and returns its event. The global
        size is rounded up to a multiple of the local size; kernels guard their bounds."""
        gs = round_up(global_size, local_size)
        return cl.enqueue_nd_range_kernel(self.queue, kernel, gs, local_size)


def round_up(global_size, local_size) -> tuple:
    """Returns ``global_size`` with each dimension rounded up to a multiple of the
    corresponding ``local_size`` entry (unchanged when ``local_size`` is None)."""
    if local_size is None:
        return tuple(int(g) for g in global_size)
    pairs = zip(global_size, local_size, strict=True)
    return tuple(-(-int(g) // int(lo)) * int(lo) for g, lo in pairs)


def event_ns(event) -> int:
    """Returns the device execution time of a completed event in nanoseconds
    (profiling END - START)."""
    return int(event.profile.end - event.profile.start)


def events_seconds(events) -> float:
    """Returns the summed device time of completed ``events`` in seconds."""
    return sum(event_ns(e) for e in events) * 1e-9
