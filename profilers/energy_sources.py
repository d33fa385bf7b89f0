"""Sources of energy readings for :mod:`profilers.energy`, and the silencing of the
vendor libraries that provide them.

A :class:`CounterSource` is a cumulative energy counter (NVML total energy, amdsmi's
energy accumulator, RAPL powercap ``energy_uj``); a :class:`PowerSource` an
instantaneous or short-window power reading (NVML power, pyrsmi average power, amdgpu
hwmon ``power1_average``). Every read raises :class:`SensorError` on failure, never
anything else. :func:`amd_hwmon_power_files` and :func:`rapl_package_domains` find the
sysfs files under an injectable root.

The vendor libraries misbehave when their driver is absent (amdsmi raises KeyError at
import time and prints to stdout, pyrsmi logs tracebacks, pynvml raises
``NVMLError_LibraryNotFound``): :func:`quiet`, :func:`import_quietly` and
:func:`call_quietly` guard and silence their imports and calls.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "AmdsmiEnergyCounter",
    "CounterSource",
    "HwmonPower",
    "NvmlEnergyCounter",
    "NvmlPower",
    "PowerSource",
    "RaplCounter",
    "RaplDomain",
    "RocmlPower",
    "SensorError",
    "amd_hwmon_power_files",
    "call_quietly",
    "describe_exc",
    "import_quietly",
    "parse_amdsmi_energy",
    "quiet",
    "rapl_package_domains",
]

_PCI_VENDOR_AMD = "0x1002"


class SensorError(RuntimeError):
    """A sensor read failed or returned something unusable."""


# --------------------------------------------------------------------------- silencing


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences Python-level stdout/stderr, C-level writes to fds 1 and 2, and logging
    (temporarily raised to above CRITICAL) for the duration of the block.

    Used around imports, initialisation and probing of the vendor libraries, all of
    which happen in the calling thread; the background sampler never uses it because
    swapping process-wide streams from a second thread would swallow the main thread's
    output."""
    previous_disable = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    saved_fds: list[tuple[int, int]] = []
    devnull = None
    try:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                saved_fds.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
        except OSError:
            pass  # no real fds (embedded interpreter): Python-level redirect still applies
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
                io.StringIO()):
            yield
    finally:
        for fd, saved in reversed(saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        if devnull is not None:
            os.close(devnull)
        logging.disable(previous_disable)


def describe_exc(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def import_quietly(name: str) -> tuple[ModuleType | None, str | None]:
    """Returns ``(module, None)`` or ``(None, reason)``; never raises, prints nothing."""
    try:
        with quiet():
            return importlib.import_module(name), None
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            return None, "not installed"
        return None, f"import failed ({describe_exc(e)})"
    except (Exception, SystemExit) as e:  # amdsmi raises KeyError when no driver is there
        return None, f"import failed ({describe_exc(e)})"


def call_quietly(f: Callable[..., Any], *args: Any) -> Any:
    """Calls a vendor function with its noise silenced; exceptions propagate."""
    with quiet():
        return f(*args)


# --------------------------------------------------------------------------- sources


class CounterSource:
    """A cumulative energy counter. ``read()`` returns a raw, comparable state;
    ``joules_between(a, b)`` the energy in joules between two states (handling
    wrap-around where the counter wraps). Either raises :class:`SensorError`."""

    def read(self) -> Any:
        raise NotImplementedError

    def joules_between(self, a: Any, b: Any) -> float:
        raise NotImplementedError


class PowerSource:
    """An instantaneous (or short-window average) power reading. ``read_watts()``
    returns watts or raises :class:`SensorError`."""

    def read_watts(self) -> float:
        raise NotImplementedError


class NvmlEnergyCounter(CounterSource):
    """``nvmlDeviceGetTotalEnergyConsumption``: mJ since the driver was loaded (64-bit,
    does not wrap in practice)."""

    def __init__(self, nvml: Any, handle: Any):
        self.nvml, self.handle = nvml, handle

    def read(self) -> int:
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception as e:
            raise SensorError(f"NVML energy read failed ({describe_exc(e)})") from None

    def joules_between(self, a: int, b: int) -> float:
        if b < a:
            raise SensorError("NVML energy counter went backwards (driver reloaded?)")
        return (b - a) / 1e3


class NvmlPower(PowerSource):
    """``nvmlDeviceGetPowerUsage``: board power in mW (on recent GPUs an average over
    a short window kept by the driver)."""

    def __init__(self, nvml: Any, handle: Any):
        self.nvml, self.handle = nvml, handle

    def read_watts(self) -> float:
        try:
            return float(self.nvml.nvmlDeviceGetPowerUsage(self.handle)) / 1e3
        except Exception as e:
            raise SensorError(f"NVML power read failed ({describe_exc(e)})") from None


def parse_amdsmi_energy(value: Any) -> tuple[int, float]:
    """Returns ``(accumulator, resolution_uJ)`` from what ``amdsmi_get_energy_count``
    returned. The Python binding has returned a dict keyed ``energy_accumulator`` (newer)
    or ``power`` (ROCm 5.x/6.0, the same accumulator under a misleading name) plus
    ``counter_resolution`` and ``timestamp``; some builds return a tuple
    ``(accumulator, resolution, timestamp)``. Raises :class:`SensorError` otherwise."""
    try:
        if isinstance(value, dict):
            acc = value.get("energy_accumulator", value.get("power"))
            res = value.get("counter_resolution")
        elif isinstance(value, (tuple, list)) and len(value) >= 2:
            acc, res = value[0], value[1]
        else:
            raise TypeError(type(value).__name__)
        if acc is None or res is None or isinstance(acc, str) or isinstance(res, str):
            raise TypeError("missing or 'N/A' field")  # amdsmi reports "N/A" strings
        acc_i, res_f = int(acc), float(res)
    except (TypeError, ValueError) as e:
        raise SensorError(f"unexpected amdsmi energy value {value!r} ({e})") from None
    if res_f <= 0:
        raise SensorError(f"amdsmi counter resolution {res_f} is not positive")
    return acc_i, res_f


class AmdsmiEnergyCounter(CounterSource):
    """``amdsmi_get_energy_count``: accumulator ticks x counter resolution = uJ."""

    def __init__(self, amdsmi: Any, handle: Any):
        self.amdsmi, self.handle = amdsmi, handle

    def read(self) -> tuple[int, float]:
        try:
            raw = self.amdsmi.amdsmi_get_energy_count(self.handle)
        except Exception as e:
            raise SensorError(f"amdsmi energy read failed ({describe_exc(e)})") from None
        return parse_amdsmi_energy(raw)

    def joules_between(self, a: tuple[int, float], b: tuple[int, float]) -> float:
        if b[0] < a[0]:
            raise SensorError("amdsmi energy accumulator went backwards (driver reset?)")
        return (b[0] - a[0]) * b[1] / 1e6


class RocmlPower(PowerSource):
    """pyrsmi ``rocml.smi_get_device_average_power(dev)``: average power in W."""

    def __init__(self, rocml: Any, index: int):
        self.rocml, self.index = rocml, index

    def read_watts(self) -> float:
        try:
            w = float(self.rocml.smi_get_device_average_power(self.index))
        except Exception as e:
            raise SensorError(f"pyrsmi power read failed ({describe_exc(e)})") from None
        if w < 0:  # pyrsmi returns -1 when the query fails instead of raising
            raise SensorError(f"pyrsmi returned power {w} W (query failed)")
        return w


class HwmonPower(PowerSource):
    """amdgpu hwmon ``power1_average`` (or ``power1_input``): power in uW."""

    def __init__(self, path: Path):
        self.path = path

    def read_watts(self) -> float:
        try:
            return int(self.path.read_text().strip()) / 1e6
        except (OSError, ValueError) as e:
            raise SensorError(f"cannot read {self.path} ({describe_exc(e)})") from None


@dataclass(frozen=True)
class RaplDomain:
    name: str
    energy_path: Path
    max_range_uj: int


class RaplCounter(CounterSource):
    """RAPL powercap package domains: ``energy_uj`` summed, each wrapping at its own
    ``max_energy_range_uj``. A single wrap between two reads is handled; the meter reads
    at every batch boundary so a batch must stay shorter than one wrap period (minutes
    at typical package power)."""

    def __init__(self, domains: list[RaplDomain]):
        self.domains = domains

    def read(self) -> tuple[int, ...]:
        out = []
        for d in self.domains:
            try:
                out.append(int(d.energy_path.read_text().strip()))
            except (OSError, ValueError) as e:
                raise SensorError(f"cannot read {d.energy_path} ({describe_exc(e)})") \
                    from None
        return tuple(out)

    def joules_between(self, a: tuple[int, ...], b: tuple[int, ...]) -> float:
        total_uj = 0
        for d, x, y in zip(self.domains, a, b, strict=True):
            delta = y - x
            if delta < 0:
                # wrapped: the counter restarted from 0 after max_energy_range_uj (exact
                # to within one hardware energy unit, a few tens of uJ at most)
                if d.max_range_uj <= 0:
                    raise SensorError(f"RAPL {d.name} counter went backwards and its "
                                      "max_energy_range_uj is unknown")
                delta += d.max_range_uj
            total_uj += delta
        return total_uj / 1e6


# --------------------------------------------------------------------------- sysfs discovery


def _card_number(p: Path) -> int:
    digits = p.name[len("card"):]
    return int(digits) if digits.isdigit() else 1 << 30


def amd_hwmon_power_files(sysfs_root: Path) -> list[Path]:
    """Returns the amdgpu power files (``power1_average``, else ``power1_input``), one
    per AMD card (PCI vendor 0x1002) in card-number order, under
    ``sysfs_root/class/drm/card*/device/hwmon/hwmon*/``."""
    out = []
    drm = sysfs_root / "class" / "drm"
    try:
        cards = sorted((p for p in drm.glob("card*") if "-" not in p.name), key=_card_number)
    except OSError:
        return []
    for card in cards:
        try:
            vendor = (card / "device" / "vendor").read_text().strip().lower()
        except OSError:
            vendor = None
        if vendor is not None and vendor != _PCI_VENDOR_AMD:
            continue  # an Intel iGPU or NVIDIA card next to the AMD one
        for name in ("power1_average", "power1_input"):
            found = sorted((card / "device" / "hwmon").glob(f"hwmon*/{name}"))
            if found:
                out.append(found[0])
                break
    return out


def rapl_package_domains(sysfs_root: Path) -> list[RaplDomain]:
    """Returns the RAPL package domains (``intel-rapl:N``, not the ``intel-rapl:N:M``
    subdomains, which the package already contains) under
    ``sysfs_root/class/powercap``, in order."""
    base = sysfs_root / "class" / "powercap"
    try:
        dirs = sorted(p for p in base.glob("intel-rapl:*") if p.name.count(":") == 1)
    except OSError:
        return []
    out = []
    for d in dirs:
        try:
            name = (d / "name").read_text().strip()
        except OSError:
            name = d.name
        if name.startswith("psys"):
            continue  # platform domain: covers the packages too; summing would double count
        try:
            max_range = int((d / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            max_range = 0
        out.append(RaplDomain(name, d / "energy_uj", max_range))
    return out

