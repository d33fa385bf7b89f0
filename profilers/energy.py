"""Energy meters: joules per call of an operation, read from a real hardware sensor.

Backends, by device kind (see :func:`energy_meter_for`):

* ``cuda``: NVML (``nvidia-ml-py``, imported as ``pynvml``). The board's cumulative
  energy counter ``nvmlDeviceGetTotalEnergyConsumption`` (mJ, Volta and newer) where
  supported, else ``nvmlDeviceGetPowerUsage`` (mW) sampled by a background thread and
  integrated with the trapezoid rule.
* ``rocm`` and ``opencl-amd`` (an AMD GPU reached through OpenCL, e.g. an RX 580): amdsmi
  ``amdsmi_get_energy_count`` (accumulator x resolution = uJ), else pyrsmi
  ``rocml.smi_get_device_average_power`` (W) sampled and integrated, else the amdgpu
  hwmon file ``power1_average`` (uW) sampled and integrated.
* ``cpu``: RAPL powercap ``/sys/class/powercap/intel-rapl:N/energy_uj`` (uJ), summed over
  the package domains, with wrap-around handled through ``max_energy_range_uj``.
* ``opencl`` (any other OpenCL device): no sensor.

What the number means: the whole device's (or the CPU packages') energy over a timed
batch of calls divided by the number of calls. It includes the device's static/idle
power during the batch (nothing is subtracted: an idle baseline would be an estimate)
and, for CPU packages, whatever else runs on the machine at the time.

Where there is no readable sensor the meter is *unavailable*: ``available`` is False,
``reason`` says why, and :meth:`EnergyMeter.measure` returns ``joules_per_call=None``.
No number is ever invented; in particular "no sensor" is never reported as 0 J.

The vendor libraries misbehave when their driver is absent (amdsmi raises KeyError at
import time and prints to stdout, pyrsmi logs tracebacks, pynvml raises
``NVMLError_LibraryNotFound``), so every import and library call here is guarded and
silenced. The sysfs root and the library modules are injectable for tests.

Layout: :mod:`profilers.energy_sources` holds the sources of readings (counters and
power readings of each backend, the sysfs discovery, the silencing);
:mod:`profilers.energy_meters` the meters (:class:`EnergyMeter` and its counter,
power-sampling and unavailable kinds); this module picks one for a device
(:func:`energy_meter_for`) and re-exports the names of both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .energy_meters import (
    DEFAULT_MAX_DURATION_S,
    DEFAULT_MIN_DURATION_S,
    DEFAULT_SAMPLE_INTERVAL_S,
    Clock,
    CounterEnergyMeter,
    EnergyMeter,
    EnergyResult,
    PowerSamplingEnergyMeter,
    UnavailableEnergyMeter,
    integrate_trapezoid,
)
from .energy_sources import (
    AmdsmiEnergyCounter,
    CounterSource,
    HwmonPower,
    NvmlEnergyCounter,
    NvmlPower,
    PowerSource,
    RaplCounter,
    RaplDomain,
    RocmlPower,
    SensorError,
    amd_hwmon_power_files,
    call_quietly,
    describe_exc,
    import_quietly,
    parse_amdsmi_energy,
    quiet,
    rapl_package_domains,
)

__all__ = [
    "EnergyMeter",
    "EnergyResult",
    "SensorError",
    "UnavailableEnergyMeter",
    "CounterEnergyMeter",
    "PowerSamplingEnergyMeter",
    "energy_meter_for",
    "integrate_trapezoid",
    # re-exported from energy_meters / energy_sources (importable from here as before)
    "DEFAULT_MAX_DURATION_S",
    "DEFAULT_MIN_DURATION_S",
    "DEFAULT_SAMPLE_INTERVAL_S",
    "Clock",
    "AmdsmiEnergyCounter",
    "CounterSource",
    "HwmonPower",
    "NvmlEnergyCounter",
    "NvmlPower",
    "PowerSource",
    "RaplCounter",
    "RaplDomain",
    "RocmlPower",
    "amd_hwmon_power_files",
    "parse_amdsmi_energy",
    "rapl_package_domains",
]

_COMMON_KW = ("min_duration_s", "max_duration_s", "clock")
_COUNTER_KW = _COMMON_KW + ("align_timeout_s", "poll_s", "sleep")
_POWER_KW = _COMMON_KW + ("sample_interval_s", "background", "min_samples")


def _pick(kw: dict, names: tuple[str, ...]) -> dict:
    return {k: v for k, v in kw.items() if k in names}


# --------------------------------------------------------------------------- vendor libraries


class _NoSensor(Exception):
    """Raised by a :func:`_vendor_meter` probe: no meter, for ``reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _init_failed(lib: Any, e: BaseException) -> str:
    return f"init failed ({describe_exc(e)})"


@dataclass(frozen=True)
class _Library:
    """How to open one vendor library: ``label`` starts every reason (``"no LABEL: "``),
    ``module`` is imported, ``init`` / ``shutdown`` are its functions' names;
    ``package`` prefixes an import failure's reason; ``init_reason(lib, exc)`` words an
    init failure."""

    label: str
    module: str
    init: str
    shutdown: str
    package: str = ""
    init_reason: Callable[[Any, BaseException], str] = _init_failed


def _vendor_meter(spec: _Library, lib: Any | None,
                  probe: Callable[[Any, Callable[[], None] | None], EnergyMeter]
                  ) -> EnergyMeter:
    """The one init/shutdown skeleton of the vendor-library meters: imports
    ``spec.module`` quietly (unless ``lib`` is injected), initialises it, then returns
    ``probe(lib, shutdown)`` (run silenced: it finds the device handle, reads the sensor
    once and builds a meter that calls ``shutdown`` on close). Failing import or init,
    or a probe raising :class:`_NoSensor` (after which the library is shut down again),
    gives an :class:`UnavailableEnergyMeter` with the reason."""
    if lib is None:
        lib, why = import_quietly(spec.module)
        if lib is None:
            return UnavailableEnergyMeter(f"no {spec.label}: {spec.package}{why}")
    try:
        call_quietly(getattr(lib, spec.init))
    except Exception as e:
        return UnavailableEnergyMeter(f"no {spec.label}: {spec.init_reason(lib, e)}")
    shutdown = getattr(lib, spec.shutdown, None)
    try:
        with quiet():
            return probe(lib, shutdown)
    except _NoSensor as e:
        if shutdown is not None:
            with contextlib.suppress(Exception):
                call_quietly(shutdown)
        return UnavailableEnergyMeter(e.reason)


def _nvml_reason(nvml: Any, e: BaseException) -> str:
    """Turns an NVML exception into a short human reason."""
    for cls_name, text in (("NVMLError_LibraryNotFound", "NVIDIA driver library not found"),
                           ("NVMLError_DriverNotLoaded", "NVIDIA driver not loaded"),
                           ("NVMLError_NoPermission", "no permission to query the GPU"),
                           ("NVMLError_InvalidArgument", "no such GPU index"),
                           ("NVMLError_NotSupported", "not supported on this GPU")):
        cls = getattr(nvml, cls_name, None)
        if isinstance(cls, type) and isinstance(e, cls):
            return text
    return describe_exc(e)


_NVML = _Library("NVML", "pynvml", "nvmlInit", "nvmlShutdown", package="nvidia-ml-py ",
                 init_reason=_nvml_reason)
_AMDSMI = _Library("amdsmi", "amdsmi", "amdsmi_init", "amdsmi_shut_down")
# "pyrsmi.rocml", i.e. ``from pyrsmi import rocml``
_PYRSMI = _Library("pyrsmi", "pyrsmi.rocml", "smi_initialize", "smi_shutdown")


def _nvml_meter(index: int, nvml: Any | None, kw: dict) -> EnergyMeter:
    def probe(nvml: Any, shutdown: Callable[[], None] | None) -> EnergyMeter:
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as e:
            raise _NoSensor(f"no NVML device {index}: {_nvml_reason(nvml, e)}") from None
        counter = NvmlEnergyCounter(nvml, handle)
        try:
            counter.read()
        except SensorError as counter_err:
            power = NvmlPower(nvml, handle)
            try:
                power.read_watts()
            except SensorError as power_err:
                raise _NoSensor(f"no NVML energy: {counter_err}; {power_err}") from None
            return PowerSamplingEnergyMeter(power, "nvml-power-sampling", on_close=shutdown,
                                            **_pick(kw, _POWER_KW))
        return CounterEnergyMeter(counter, "nvml-energy-counter", on_close=shutdown,
                                  **_pick(kw, _COUNTER_KW))

    return _vendor_meter(_NVML, nvml, probe)


def _amdsmi_meter(index: int, amdsmi: Any | None, kw: dict) -> EnergyMeter:
    def probe(amdsmi: Any, shutdown: Callable[[], None] | None) -> EnergyMeter:
        try:
            handles = list(amdsmi.amdsmi_get_processor_handles())
        except Exception as e:
            raise _NoSensor(f"no amdsmi: cannot list GPUs ({describe_exc(e)})") from None
        if not 0 <= index < len(handles):
            raise _NoSensor(f"no amdsmi: GPU {index} not found ({len(handles)} GPU(s))")
        counter = AmdsmiEnergyCounter(amdsmi, handles[index])
        try:
            counter.read()
        except SensorError as e:
            raise _NoSensor(f"no amdsmi energy: {e}") from None
        return CounterEnergyMeter(counter, "amdsmi-energy-counter", on_close=shutdown,
                                  **_pick(kw, _COUNTER_KW))

    return _vendor_meter(_AMDSMI, amdsmi, probe)


def _rocml_meter(index: int, rocml: Any | None, kw: dict) -> EnergyMeter:
    def probe(rocml: Any, shutdown: Callable[[], None] | None) -> EnergyMeter:
        power = RocmlPower(rocml, index)
        try:
            power.read_watts()
        except SensorError as e:
            raise _NoSensor(f"no pyrsmi power: {e}") from None
        return PowerSamplingEnergyMeter(power, "pyrsmi-power-sampling", on_close=shutdown,
                                        **_pick(kw, _POWER_KW))

    return _vendor_meter(_PYRSMI, rocml, probe)


# --------------------------------------------------------------------------- sysfs


def _hwmon_meter(index: int, sysfs_root: Path, kw: dict) -> EnergyMeter:
    files = amd_hwmon_power_files(sysfs_root)
    where = sysfs_root / "class/drm/card*/device/hwmon/hwmon*/power1_average"
    if not files:
        return UnavailableEnergyMeter(f"no amdgpu hwmon: nothing at {where}")
    if not 0 <= index < len(files):
        return UnavailableEnergyMeter(
            f"no amdgpu hwmon for GPU {index}: {len(files)} AMD card(s) with a power file")
    power = HwmonPower(files[index])
    try:
        power.read_watts()
    except SensorError as e:
        return UnavailableEnergyMeter(f"no amdgpu hwmon: {e}")
    return PowerSamplingEnergyMeter(power, "hwmon-power-sampling", **_pick(kw, _POWER_KW))


def _rapl_meter(sysfs_root: Path, kw: dict) -> EnergyMeter:
    domains = rapl_package_domains(sysfs_root)
    if not domains:
        return UnavailableEnergyMeter(
            f"no RAPL: no {sysfs_root / 'class/powercap/intel-rapl:*'} package domain")
    counter = RaplCounter(domains)
    try:
        counter.read()
    except SensorError as e:
        return UnavailableEnergyMeter(
            f"no RAPL: {e}; energy_uj is root-only on Linux >= 5.10")
    return CounterEnergyMeter(counter, "rapl-powercap", **_pick(kw, _COUNTER_KW))


def energy_meter_for(kind: str, index: int = 0, *, sysfs_root: Path = Path("/sys"),
                     nvml: Any = None, amdsmi: Any = None, rocml: Any = None,
                     **options: Any) -> EnergyMeter:
    """Returns the best energy meter for a device; never raises, never prints.

    ``kind``: ``"cpu"`` (RAPL), ``"cuda"`` (NVML), ``"rocm"`` or ``"opencl-amd"``
    (amdsmi, then pyrsmi, then amdgpu hwmon), ``"opencl"`` (no sensor). ``index``: the
    GPU index as the vendor library counts it (NVML / amdsmi / pyrsmi order, which can
    differ from torch's when ``CUDA_VISIBLE_DEVICES`` / ``HIP_VISIBLE_DEVICES`` reorder
    devices; for hwmon, the n-th AMD card by card number). ``sysfs_root``, ``nvml``
    (the ``pynvml`` module), ``amdsmi`` and ``rocml`` (``pyrsmi.rocml``) are injectable;
    None means "import the real one". ``options`` go to the meter: ``min_duration_s``,
    ``max_duration_s``, ``clock``; counters also ``align_timeout_s``, ``poll_s``,
    ``sleep``; power samplers ``sample_interval_s``, ``background``, ``min_samples``.

    The result is always an :class:`EnergyMeter`; when no sensor is readable it has
    ``available == False`` and ``reason`` set (several reasons joined by ``"; "`` when
    several backends were tried).
    """
    sysfs_root = Path(sysfs_root)
    kind = (kind or "").lower()
    if kind == "cpu":
        return _rapl_meter(sysfs_root, options)
    if kind == "cuda":
        return _nvml_meter(index, nvml, options)
    if kind in ("rocm", "opencl-amd"):
        reasons = []
        for attempt in (lambda: _amdsmi_meter(index, amdsmi, options),
                        lambda: _rocml_meter(index, rocml, options),
                        lambda: _hwmon_meter(index, sysfs_root, options)):
            meter = attempt()
            if meter.available:
                return meter
            reasons.append(meter.reason or "unavailable")
        return UnavailableEnergyMeter("; ".join(reasons))
    if kind == "opencl":
        return UnavailableEnergyMeter(
            "no energy sensor: OpenCL exposes none, and the device is not an AMD GPU")
    return UnavailableEnergyMeter(f"no energy meter for device kind {kind!r}")
