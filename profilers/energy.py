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
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "EnergyMeter",
    "EnergyResult",
    "SensorError",
    "UnavailableEnergyMeter",
    "CounterEnergyMeter",
    "PowerSamplingEnergyMeter",
    "energy_meter_for",
    "integrate_trapezoid",
]

Clock = Callable[[], float]

#: default minimum length of a measured batch (s); counters tick every ~1-100 ms, so
#: 0.2 s keeps the quantisation error of one tick at a few percent at worst.
DEFAULT_MIN_DURATION_S = 0.2
#: a measurement stops after this long even if the sensor has not moved (s).
DEFAULT_MAX_DURATION_S = 10.0
#: interval of the background power sampler (s).
DEFAULT_SAMPLE_INTERVAL_S = 0.01

_PCI_VENDOR_AMD = "0x1002"


class SensorError(RuntimeError):
    """A sensor read failed or returned something unusable."""


@dataclass(frozen=True)
class EnergyResult:
    """Outcome of :meth:`EnergyMeter.measure`.

    ``joules_per_call`` and ``total_joules`` are in joules, or None (with ``reason``)
    when nothing could be measured. ``seconds`` is the wall time of the measured batch,
    ``calls`` the number of calls of ``fn`` in it, ``method`` the sensor used.
    """

    joules_per_call: float | None
    total_joules: float | None
    seconds: float
    calls: int
    method: str
    reason: str | None = None

    def to_dict(self) -> dict:
        """Returns the result as a JSON-ready dict (same field names and units)."""
        return {"joules_per_call": self.joules_per_call, "total_joules": self.total_joules,
                "seconds": self.seconds, "calls": self.calls, "method": self.method,
                "reason": self.reason}


# --------------------------------------------------------------------------- silencing


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
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


def _describe_exc(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _import_quietly(name: str) -> tuple[ModuleType | None, str | None]:
    """Returns ``(module, None)`` or ``(None, reason)``; never raises, prints nothing."""
    try:
        with _quiet():
            return importlib.import_module(name), None
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            return None, "not installed"
        return None, f"import failed ({_describe_exc(e)})"
    except (Exception, SystemExit) as e:  # amdsmi raises KeyError when no driver is there
        return None, f"import failed ({_describe_exc(e)})"


def _call_quietly(f: Callable[..., Any], *args: Any) -> Any:
    """Calls a vendor function with its noise silenced; exceptions propagate."""
    with _quiet():
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
            raise SensorError(f"NVML energy read failed ({_describe_exc(e)})") from None

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
            raise SensorError(f"NVML power read failed ({_describe_exc(e)})") from None


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
            raise SensorError(f"amdsmi energy read failed ({_describe_exc(e)})") from None
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
            raise SensorError(f"pyrsmi power read failed ({_describe_exc(e)})") from None
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
            raise SensorError(f"cannot read {self.path} ({_describe_exc(e)})") from None


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
                raise SensorError(f"cannot read {d.energy_path} ({_describe_exc(e)})") \
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


# --------------------------------------------------------------------------- meters


def integrate_trapezoid(samples: list[tuple[float, float]]) -> float:
    """Returns the integral in joules of ``(time_s, watts)`` samples (sorted by time)
    with the trapezoid rule; 0.0 for fewer than two samples."""
    total = 0.0
    for (t0, p0), (t1, p1) in zip(samples, samples[1:], strict=False):
        total += 0.5 * (p0 + p1) * (t1 - t0)
    return total


class EnergyMeter:
    """Interface of an energy meter.

    ``available``: whether a sensor was found; ``method``: which one (e.g.
    ``"rapl-powercap"``); ``reason``: why it is unavailable (None when available).
    :meth:`measure` returns an :class:`EnergyResult`.
    """

    method: str = "none"
    available: bool = False
    reason: str | None = None

    def __init__(self, *, min_duration_s: float = DEFAULT_MIN_DURATION_S,
                 max_duration_s: float = DEFAULT_MAX_DURATION_S,
                 clock: Clock = time.perf_counter):
        self.min_duration_s = float(min_duration_s)
        self.max_duration_s = max(float(max_duration_s), self.min_duration_s)
        self.clock = clock

    def describe(self) -> dict:
        """Returns ``{"available": bool, "method": str, "reason": str | None}`` for
        ``nasbench devices`` and LUT provenance."""
        return {"available": self.available, "method": self.method, "reason": self.reason}

    def measure(self, fn: Callable[[], object], repeats: int,
                sync: Callable[[], None] | None = None) -> EnergyResult:
        """Runs ``fn`` in batches of ``repeats`` calls (each batch followed by ``sync``)
        until the batch has lasted at least ``min_duration_s`` and the sensor has moved,
        or ``max_duration_s`` has passed; returns the energy over those batches (J) and
        per call (J). Unavailable sensor or failed read: ``joules_per_call`` is None and
        ``reason`` says why. Exceptions raised by ``fn`` itself propagate."""
        if not self.available:
            return EnergyResult(None, None, 0.0, 0, self.method, self.reason)
        repeats = max(1, int(repeats))
        try:
            return self._measure(fn, repeats, sync or (lambda: None))
        except SensorError as e:
            return EnergyResult(None, None, 0.0, 0, self.method, str(e))

    def _measure(self, fn: Callable[[], object], repeats: int,
                 sync: Callable[[], None]) -> EnergyResult:
        raise NotImplementedError

    @staticmethod
    def _reached(elapsed: float, target: float) -> bool:
        # a relative epsilon so that a batch of exactly the target length counts even
        # when the clock's subtraction rounds it a hair below
        return elapsed >= target * (1.0 - 1e-9)

    def close(self) -> None:
        """Releases the vendor library, if this meter holds one (idempotent)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} method={self.method!r} available={self.available}" \
               f" reason={self.reason!r}>"


class UnavailableEnergyMeter(EnergyMeter):
    """A device without a readable energy sensor; ``reason`` says why."""

    def __init__(self, reason: str, method: str = "none"):
        super().__init__()
        self.method, self.reason, self.available = method, reason, False

    def _measure(self, fn, repeats, sync):  # pragma: no cover - measure() short-circuits
        raise SensorError(self.reason or "unavailable")


class CounterEnergyMeter(EnergyMeter):
    """Energy from a cumulative counter: the counter's advance over the batch.

    The counter is read at every batch boundary and the deltas summed (so one wrap per
    batch is handled). Before the batch starts, the meter waits (at most
    ``align_timeout_s``) for the counter to tick, so the batch starts right after an
    update and the start-side quantisation error vanishes; the end side keeps an error
    of up to one update period, which ``min_duration_s`` keeps small."""

    def __init__(self, source: CounterSource, method: str, *,
                 align_timeout_s: float = 0.1, poll_s: float = 0.0005,
                 sleep: Callable[[float], None] = time.sleep,
                 on_close: Callable[[], None] | None = None, **kw: Any):
        super().__init__(**kw)
        self.source, self.method, self.available = source, method, True
        self.align_timeout_s, self.poll_s, self.sleep = align_timeout_s, poll_s, sleep
        self._on_close = on_close

    def _wait_for_tick(self, state: Any) -> Any:
        deadline = self.clock() + self.align_timeout_s
        while self.clock() < deadline:
            new = self.source.read()
            if new != state:
                return new
            self.sleep(self.poll_s)
        return state

    def _measure(self, fn, repeats, sync):
        sync()  # work queued before the measurement must not be counted
        prev = self._wait_for_tick(self.source.read())
        t0 = self.clock()
        joules, calls, advanced = 0.0, 0, False
        while True:
            for _ in range(repeats):
                fn()
            sync()
            calls += repeats
            cur = self.source.read()
            advanced = advanced or cur != prev
            joules += self.source.joules_between(prev, cur)
            prev = cur
            elapsed = self.clock() - t0
            if (self._reached(elapsed, self.min_duration_s) and advanced) or self._reached(
                    elapsed, self.max_duration_s):
                break
        if not advanced:
            return EnergyResult(None, None, elapsed, calls, self.method,
                                f"{self.method}: the counter did not advance in "
                                f"{elapsed:.3f} s")
        return EnergyResult(joules / calls, joules, elapsed, calls, self.method, None)

    def close(self) -> None:
        if self._on_close is not None:
            f, self._on_close = self._on_close, None
            with contextlib.suppress(Exception):
                _call_quietly(f)


class _Sampler:
    """Collects ``(clock(), watts)`` samples, from the caller (batch boundaries) and
    optionally from a background thread every ``interval_s``."""

    def __init__(self, source: PowerSource, clock: Clock, interval_s: float):
        self.source, self.clock, self.interval_s = source, clock, interval_s
        self.samples: list[tuple[float, float]] = []
        self.error: SensorError | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> float:
        with self._lock:  # keeps (time, reading) pairs ordered across threads
            w = self.source.read_watts()
            t = self.clock()
            self.samples.append((t, w))
            return t

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except SensorError as e:
                self.error = e
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nasbench-power-sampler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class PowerSamplingEnergyMeter(EnergyMeter):
    """Energy from power readings: samples taken at the batch start and end (in the
    calling thread) and every ``sample_interval_s`` in between (background thread,
    unless ``background=False``), integrated with the trapezoid rule.

    Limits: a reading that is itself an average over a window (NVML on recent GPUs,
    hwmon ``power1_average``, pyrsmi average power) lags the load, so short batches
    under-read the rise and over-read the tail; ``min_duration_s`` should be well above
    the sensor's window for a meaningful figure."""

    def __init__(self, source: PowerSource, method: str, *,
                 sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
                 background: bool = True, min_samples: int = 3,
                 on_close: Callable[[], None] | None = None, **kw: Any):
        super().__init__(**kw)
        self.source, self.method, self.available = source, method, True
        self.sample_interval_s = sample_interval_s
        self.background, self.min_samples = background, max(2, min_samples)
        self._on_close = on_close

    def _measure(self, fn, repeats, sync):
        sync()
        sampler = _Sampler(self.source, self.clock, self.sample_interval_s)
        t0 = sampler.sample()
        if self.background:
            sampler.start()
        calls = 0
        try:
            while True:
                for _ in range(repeats):
                    fn()
                sync()
                calls += repeats
                t_end = sampler.sample()
                elapsed = t_end - t0
                if sampler.error is not None:
                    raise sampler.error
                if ((self._reached(elapsed, self.min_duration_s)
                     and len(sampler.samples) >= self.min_samples)
                        or self._reached(elapsed, self.max_duration_s)):
                    break
        finally:
            sampler.stop()
        with sampler._lock:
            samples = sorted(s for s in sampler.samples if t0 <= s[0] <= t_end)
        if elapsed <= 0 or len(samples) < 2:
            return EnergyResult(None, None, elapsed, calls, self.method,
                                f"{self.method}: too few power samples ({len(samples)}) "
                                f"in {elapsed:.3f} s")
        joules = integrate_trapezoid(samples)
        return EnergyResult(joules / calls, joules, elapsed, calls, self.method, None)

    def close(self) -> None:
        if self._on_close is not None:
            f, self._on_close = self._on_close, None
            with contextlib.suppress(Exception):
                _call_quietly(f)


# --------------------------------------------------------------------------- backends


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
    return _describe_exc(e)


def _nvml_meter(index: int, nvml: Any | None, kw: dict) -> EnergyMeter:
    if nvml is None:
        nvml, why = _import_quietly("pynvml")
        if nvml is None:
            return UnavailableEnergyMeter(f"no NVML: nvidia-ml-py {why}")
    try:
        _call_quietly(nvml.nvmlInit)
    except Exception as e:
        return UnavailableEnergyMeter(f"no NVML: {_nvml_reason(nvml, e)}")
    shutdown = getattr(nvml, "nvmlShutdown", None)
    try:
        handle = _call_quietly(nvml.nvmlDeviceGetHandleByIndex, index)
    except Exception as e:
        if shutdown is not None:
            with contextlib.suppress(Exception):
                _call_quietly(shutdown)
        return UnavailableEnergyMeter(f"no NVML device {index}: {_nvml_reason(nvml, e)}")
    counter = NvmlEnergyCounter(nvml, handle)
    try:
        with _quiet():
            counter.read()
        return CounterEnergyMeter(counter, "nvml-energy-counter", on_close=shutdown,
                                  **_pick(kw, _COUNTER_KW))
    except SensorError as counter_err:
        power = NvmlPower(nvml, handle)
        try:
            with _quiet():
                power.read_watts()
        except SensorError as power_err:
            if shutdown is not None:
                with contextlib.suppress(Exception):
                    _call_quietly(shutdown)
            return UnavailableEnergyMeter(
                f"no NVML energy: {counter_err}; {power_err}")
        return PowerSamplingEnergyMeter(power, "nvml-power-sampling", on_close=shutdown,
                                        **_pick(kw, _POWER_KW))


def _amdsmi_meter(index: int, amdsmi: Any | None, kw: dict) -> EnergyMeter:
    if amdsmi is None:
        amdsmi, why = _import_quietly("amdsmi")
        if amdsmi is None:
            return UnavailableEnergyMeter(f"no amdsmi: {why}")
    try:
        _call_quietly(amdsmi.amdsmi_init)
    except Exception as e:
        return UnavailableEnergyMeter(f"no amdsmi: init failed ({_describe_exc(e)})")
    shutdown = getattr(amdsmi, "amdsmi_shut_down", None)

    def fail(reason: str) -> EnergyMeter:
        if shutdown is not None:
            with contextlib.suppress(Exception):
                _call_quietly(shutdown)
        return UnavailableEnergyMeter(reason)

    try:
        handles = list(_call_quietly(amdsmi.amdsmi_get_processor_handles))
    except Exception as e:
        return fail(f"no amdsmi: cannot list GPUs ({_describe_exc(e)})")
    if not 0 <= index < len(handles):
        return fail(f"no amdsmi: GPU {index} not found ({len(handles)} GPU(s))")
    counter = AmdsmiEnergyCounter(amdsmi, handles[index])
    try:
        with _quiet():
            counter.read()
    except SensorError as e:
        return fail(f"no amdsmi energy: {e}")
    return CounterEnergyMeter(counter, "amdsmi-energy-counter", on_close=shutdown,
                              **_pick(kw, _COUNTER_KW))


def _rocml_meter(index: int, rocml: Any | None, kw: dict) -> EnergyMeter:
    if rocml is None:
        rocml, why = _import_quietly("pyrsmi.rocml")  # i.e. ``from pyrsmi import rocml``
        if rocml is None:
            return UnavailableEnergyMeter(f"no pyrsmi: {why}")
    try:
        _call_quietly(rocml.smi_initialize)
    except Exception as e:
        return UnavailableEnergyMeter(f"no pyrsmi: init failed ({_describe_exc(e)})")
    shutdown = getattr(rocml, "smi_shutdown", None)
    power = RocmlPower(rocml, index)
    try:
        with _quiet():
            power.read_watts()
    except SensorError as e:
        if shutdown is not None:
            with contextlib.suppress(Exception):
                _call_quietly(shutdown)
        return UnavailableEnergyMeter(f"no pyrsmi power: {e}")
    return PowerSamplingEnergyMeter(power, "pyrsmi-power-sampling", on_close=shutdown,
                                    **_pick(kw, _POWER_KW))


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


_COMMON_KW = ("min_duration_s", "max_duration_s", "clock")
_COUNTER_KW = _COMMON_KW + ("align_timeout_s", "poll_s", "sleep")
_POWER_KW = _COMMON_KW + ("sample_interval_s", "background", "min_samples")


def _pick(kw: dict, names: tuple[str, ...]) -> dict:
    return {k: v for k, v in kw.items() if k in names}


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
