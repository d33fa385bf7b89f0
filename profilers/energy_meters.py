"""Energy meters: the arithmetic that turns readings of a :mod:`profilers.energy_sources`
source into joules per call of an operation (see :mod:`profilers.energy` for which
meter a device gets).

:class:`CounterEnergyMeter` takes a cumulative counter's advance over a timed batch;
:class:`PowerSamplingEnergyMeter` integrates power samples over it (trapezoid rule);
:class:`UnavailableEnergyMeter` stands for a device without a readable sensor and never
measures. A failed read gives ``joules_per_call=None`` with a reason, never a number.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .energy_sources import CounterSource, PowerSource, SensorError, call_quietly

__all__ = [
    "DEFAULT_MAX_DURATION_S",
    "DEFAULT_MIN_DURATION_S",
    "DEFAULT_SAMPLE_INTERVAL_S",
    "Clock",
    "CounterEnergyMeter",
    "EnergyMeter",
    "EnergyResult",
    "PowerSamplingEnergyMeter",
    "UnavailableEnergyMeter",
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
    _on_close: Callable[[], None] | None = None  # shuts the vendor library down

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
        if self._on_close is not None:
            f, self._on_close = self._on_close, None
            with contextlib.suppress(Exception):
                call_quietly(f)

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
