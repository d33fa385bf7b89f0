"""Device discovery and ``--device`` resolution.

``--device`` takes ``cpu``, ``cuda[:N]``, ``rocm[:N]``, ``opencl[:P[:D]]`` or a preset
name (``rx580``...). A preset never measures a different device under its name: when
its hardware is absent, :func:`resolve_device` raises DeviceError listing what is there.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field

import torch

from .presets import PRESETS, Preset


class DeviceError(ValueError):
    """The requested device does not exist here (one-line message listing what does)."""


@dataclass
class Device:
    """One measurable device. ``id`` identifies the hardware across machines (kind +
    name), ``spec`` is how the user would select it (``opencl:0:0``)."""

    kind: str                   # cpu | cuda | rocm | opencl
    index: tuple[int, ...]
    name: str
    backend: str                # torch-cpu | torch-cuda | torch-rocm | opencl
    details: dict = field(default_factory=dict)
    preset: str | None = None

    @property
    def spec(self) -> str:
        """Returns the ``--device`` string that selects this device."""
        return ":".join([self.kind, *map(str, self.index)]) if self.index else self.kind

    @property
    def id(self) -> str:
        """Returns the hardware identity recorded in LUTs (kind and device name)."""
        return f"{self.kind}:{self.name}"

    @property
    def torch_device(self) -> str | None:
        """Returns the torch device string, or None for non-torch backends."""
        if self.kind == "cpu":
            return "cpu"
        if self.kind in ("cuda", "rocm"):
            return f"cuda:{self.index[0] if self.index else 0}"
        return None

    def to_dict(self) -> dict:
        """Returns a JSON-ready description (for LUT provenance and ``--json``)."""
        d = {"id": self.id, "spec": self.spec, "kind": self.kind, "name": self.name,
             "backend": self.backend, **self.details}
        if self.preset:
            d["preset"] = self.preset
            d["spec_sheet"] = PRESETS[self.preset].spec.to_dict()
        return d


def cpu_model_name() -> str:
    """Returns the CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_governor() -> str | None:
    """Returns the cpufreq governor of CPU 0, or None when not readable."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_device() -> Device:
    """Returns the host CPU as a Device."""
    cores = os.cpu_count() or 1
    try:
        import psutil
        physical = psutil.cpu_count(logical=False) or cores
    except Exception:  # psutil is optional here
        physical = cores
    return Device("cpu", (), cpu_model_name(), "torch-cpu", {
        "logical_cpus": cores, "physical_cores": physical,
        "torch_threads": torch.get_num_threads(), "governor": cpu_governor(),
        "machine": platform.machine(),
    })


def torch_gpu_devices() -> list[Device]:
    """Returns the CUDA or ROCm (HIP) devices torch sees."""
    out: list[Device] = []
    try:
        if not torch.cuda.is_available():
            return out
        kind = "rocm" if getattr(torch.version, "hip", None) else "cuda"
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            name = p.name
            arch = getattr(p, "gcnArchName", None)
            details = {"total_memory_bytes": int(p.total_memory),
                       "multiprocessors": int(p.multi_processor_count),
                       "capability": f"{p.major}.{p.minor}",
                       "driver": torch.version.hip if kind == "rocm" else torch.version.cuda}
            if arch:
                details["arch"] = arch
                name = f"{name} ({arch})"
            out.append(Device(kind, (i,), name, f"torch-{kind}", details))
    except Exception:  # a broken driver must not break discovery
        return out
    return out


def opencl_devices() -> list[Device]:
    """Returns every OpenCL device pyopencl sees (empty without pyopencl or an ICD)."""
    try:
        from kernels.runtime import list_devices
    except Exception:
        return []
    out = []
    try:
        for d in list_devices():
            out.append(Device("opencl", (d["platform_index"], d["device_index"]),
                              d["name"].strip(), "opencl", d))
    except Exception:
        return []
    return out


def discover() -> list[Device]:
    """Returns every device found: the CPU, torch GPUs, OpenCL devices; presets marked."""
    devices = [cpu_device(), *torch_gpu_devices(), *opencl_devices()]
    for d in devices:
        for p in PRESETS.values():
            if p.name != "host-cpu" and d.kind in p.backends and p.matches(d.name):
                d.preset = p.name
                break
    return devices


_SPEC = re.compile(r"^(cpu|cuda|rocm|opencl)(?::(\d+))?(?::(\d+))?$")


def _listing(devices: list[Device]) -> str:
    return "; ".join(f"{d.spec} ({d.name})" for d in devices)


def resolve_device(spec: str, devices: list[Device] | None = None) -> Device:
    """Returns the Device that ``spec`` selects; raises DeviceError (listing the devices
    that are there) when it names absent hardware or is malformed."""
    devices = discover() if devices is None else devices
    s = spec.strip().lower()
    if s in PRESETS:
        return _resolve_preset(PRESETS[s], devices)
    m = _SPEC.match(s)
    if not m:
        raise DeviceError(f"unknown device {spec!r}: use cpu, cuda[:N], rocm[:N], "
                          f"opencl[:P[:D]] or a preset ({', '.join(PRESETS)}); "
                          f"found: {_listing(devices)}")
    kind, a, b = m.group(1), m.group(2), m.group(3)
    if kind == "cpu":
        if a is not None:
            raise DeviceError(f"'cpu' takes no index (got {spec!r}); found: {_listing(devices)}")
        return next(d for d in devices if d.kind == "cpu")
    if kind in ("cuda", "rocm") and b is not None:
        raise DeviceError(f"{kind} takes one index (got {spec!r}); found: "
                          f"{_listing(devices)}")
    want = tuple(int(x) for x in (a, b) if x is not None)
    cands = [d for d in devices if d.kind == kind and d.index[: len(want)] == want]
    if not cands:
        raise DeviceError(f"no {spec} device here; found: {_listing(devices)}")
    return cands[0]  # devices are listed in (platform, device) order: deterministic


def _resolve_preset(p: Preset, devices: list[Device]) -> Device:
    if p.name == "host-cpu":
        d = next(d for d in devices if d.kind == "cpu")
        d.preset = p.name
        return d
    for kind in p.backends:
        for d in devices:
            if d.kind == kind and p.matches(d.name):
                d.preset = p.name
                return d
    raise DeviceError(f"preset {p.name!r} needs {p.description.split('.')[0]}, which is not "
                      f"here; found: {_listing(devices)}")
