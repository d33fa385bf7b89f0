"""The latency meter: warm-up, synchronised timing, repeat until the median is stable.

Stopping rule: after ``min_repeats`` timings, stop as soon as the distribution-free 95%
confidence interval of the median (order statistics n/2 +- 0.98 sqrt(n)) is narrower than
``ci_target`` of the median, or ``max_repeats`` / ``time_cap_s`` is reached. The median
is the estimate stored in the LUT; mean, p5, p95 and CV describe the noise.
"""

from __future__ import annotations

import math
import statistics
import time
from bisect import insort
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

#: rounds per LUT entry of `nasbench profile` and of the search's automatic profile
DEFAULT_ROUNDS = 3


@dataclass(frozen=True)
class LatencySettings:
    """Options of the latency meter (times in seconds; ratios as fractions)."""

    warmup: int = 3              # untimed calls before timing (at least)
    warmup_s: float = 0.02       # and at least this long of warm-up
    min_repeats: int = 10
    max_repeats: int = 300
    time_cap_s: float = 1.0      # per measurement, after warm-up
    ci_target: float = 0.02      # relative half-width of the median's 95% CI
    cv_threshold: float = 0.10   # entries noisier than this are re-measured once
    # a LUT entry is measured in this many rounds spread over the whole profile (each
    # with time_cap_s / rounds); the round with the median latency is kept. A slow
    # period of the machine (seconds long) then hits one round of an entry, not all of
    # it: without rounds such an entry is stable, wrong, and its CV does not show it.
    rounds: int = 1
    # time a fixed anchor op right before every call and keep the ratio: the VM this
    # was built on changes speed by +-20 % within seconds, which the ratio cancels
    # (see `Measurement.ratio` and `profilers.build.finalize_anchor`)
    anchor: bool = True

    def __post_init__(self):
        if self.min_repeats < 3 or self.max_repeats < self.min_repeats:
            raise ValueError("need 3 <= min_repeats <= max_repeats")
        if self.time_cap_s <= 0 or self.ci_target <= 0 or self.cv_threshold <= 0:
            raise ValueError("time cap, CI target and CV threshold must be positive")
        if self.rounds < 1:
            raise ValueError("rounds must be at least 1")

    def per_round(self) -> LatencySettings:
        """Returns the settings of one round (time cap divided by the rounds)."""
        import dataclasses
        return dataclasses.replace(self, time_cap_s=self.time_cap_s / self.rounds, rounds=1)

    def to_dict(self) -> dict:
        """Returns the settings as a JSON-ready dict."""
        return asdict(self)


#: calls longer than this (ms) are not drift-corrected (kept as measured). Measured on
#: the 2-vCPU VM, DARTS_V2 at C=36/20 cells with the b1 anchor (share of rounds within
#: 10 % of the median round, measured -> corrected per call): b1 (~80 ms) 48 % -> 100 %,
#: b8 (~0.3 s) 68 % -> 80 %, b16 (~0.6 s) 83 % -> 72 %, b32 (~1.1 s) 81 % -> 44 %; a
#: b32 anchor did not help either (94 % -> 85 %). Correcting b32 forwards by the
#: anchor's level over their neighbours instead made a validation 6 % within 10 %
#: against 74 % uncorrected: what slows a ~1 ms anchor on this VM (likely how its two
#: threads get scheduled) barely touches a forward of a second.
LONG_CALL_MS = 400.0

#: anchor time per call of the op, as a share of the op's time (at least one anchor call)
ANCHOR_SHARE = 0.03
ANCHOR_MAX_PER_CALL = 30


@dataclass(frozen=True)
class LatencyStats:
    """Robust statistics of repeated timings, in milliseconds (cv is a ratio)."""

    median: float
    mean: float
    p5: float
    p95: float
    cv: float
    repeats: int
    ci_rel: float          # relative half-width of the median's 95% CI at the end
    stable: bool           # the CI target was reached

    def to_dict(self) -> dict:
        """Returns the statistics as a JSON-ready dict (ms)."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def median_ci_rel(sorted_ms: list[float]) -> float:
    """Returns the relative half-width of the distribution-free 95% CI of the median of an
    already sorted sample (order statistics), or inf when the sample is too small."""
    n = len(sorted_ms)
    if n < 3:
        return math.inf
    half = 0.98 * math.sqrt(n)  # 1.96 * sqrt(n) / 2
    lo = max(0, int(math.floor(n / 2 - half)))
    hi = min(n - 1, int(math.ceil(n / 2 + half)))
    med = statistics.median(sorted_ms)
    if med <= 0:
        return math.inf
    return (sorted_ms[hi] - sorted_ms[lo]) / 2 / med


def summarize(samples_ms: list[float], stable: bool | None = None) -> LatencyStats:
    """Returns the statistics of a list of timings in ms."""
    if not samples_ms:
        raise ValueError("no timings")
    a = np.asarray(samples_ms, dtype=np.float64)
    s = sorted(samples_ms)
    mean = float(a.mean())
    cv = float(a.std(ddof=1) / mean) if len(a) > 1 and mean > 0 else 0.0
    ci = median_ci_rel(s)
    return LatencyStats(
        median=float(np.median(a)), mean=mean,
        p5=float(np.percentile(a, 5)), p95=float(np.percentile(a, 95)),
        cv=cv, repeats=len(a), ci_rel=ci if math.isfinite(ci) else -1.0,
        stable=bool(stable) if stable is not None else False,
    )


@dataclass(frozen=True)
class Measurement:
    """Wall-clock statistics and, where the backend reports it, device-side statistics
    (e.g. OpenCL kernel time from profiling events). With an anchor, ``anchor`` holds the
    anchor's timings (ms) and ``paired`` the per-call ratios op / anchor level around
    that call (unitless; see :func:`measure_latency`)."""

    wall: LatencyStats
    device: LatencyStats | None
    anchor: LatencyStats | None = None
    paired: LatencyStats | None = None

    @property
    def ratio(self) -> float | None:
        """Returns the op's cost in units of the anchor (None without an anchor, or for
        a call longer than :data:`LONG_CALL_MS`): the median of the per-call bracketed
        ratios. The machine's speed changes cancel out of it."""
        return self.paired.median if self.paired is not None else None

    @property
    def primary(self) -> LatencyStats:
        """Returns the statistics the LUT stores as the op's latency (device time where
        the backend has it, else wall time)."""
        return self.device if self.device is not None else self.wall


def measure_latency(run: Callable[[], float | None], sync: Callable[[], None] | None = None,
                    settings: LatencySettings = LatencySettings(),
                    clock: Callable[[], float] = time.perf_counter,
                    anchor: tuple[Callable[[], float | None], Callable[[], None]] | None = None
                    ) -> Measurement:
    """Times ``run`` and returns its Measurement (ms).

    ``run()`` executes the op once and may return its device-side time in seconds;
    ``sync()`` blocks until the device is idle, so a wall timing covers the whole op.
    ``anchor`` is the ``(run, sync)`` of a fixed reference op: it is timed before every
    call of ``run`` and once more after the last (several times around a call that
    lasts much longer, :data:`ANCHOR_SHARE`). Each call is then paired with the mean
    anchor level just before and just after it (its bracket), and the stopping rule
    waits for the median of these per-call ratios.

    A call longer than :data:`LONG_CALL_MS` is not anchored: once the first timed call
    shows it, the anchor is dropped and the Measurement has none.

    Why bracketed pairs: measured on a VM whose speed drifts by +-20 % within seconds,
    per-round estimates of a b1 network (10 calls) varied with CV 0.049 as a ratio of
    medians, 0.041 paired with the anchor before each call, 0.032 bracketed."""
    sync = sync or (lambda: None)

    def timed(fn, fsync) -> float:
        t0 = clock()
        d = fn()
        fsync()
        return d * 1e3 if d is not None else (clock() - t0) * 1e3   # device time first

    # warm-up: allocator caches, lazy compilation, first-touch page faults
    t_end = clock() + settings.warmup_s
    i = 0
    while i < settings.warmup or clock() < t_end:
        if anchor:
            timed(*anchor)
        run()
        sync()
        i += 1
        if i > 10_000:
            break
    wall: list[float] = []
    dev: list[float] = []
    anc: list[float] = []
    prim: list[float] = []       # per call: device time where reported, else wall
    levels: list[float] = []     # anchor level (median of its batch) before each call
    ratios: list[float] = []     # bracketed ratio of each call whose bracket is closed
    # sorted copies for the stopping rule, kept by insertion (no sort per call)
    s_wall: list[float] = []
    s_dev: list[float] = []
    s_ratio: list[float] = []
    stable = False
    t_cap = clock() + settings.time_cap_s
    per_call = 1

    def anchor_level(n: int) -> list[float]:
        a = [timed(*anchor) for _ in range(n)]
        levels.append(statistics.median(a))
        if len(levels) >= 2:            # closes the bracket of the previous call
            k = len(levels) - 2
            lvl = (levels[k] + levels[k + 1]) / 2
            ratios.append(prim[k] / lvl if lvl > 0 else math.inf)
            insort(s_ratio, ratios[-1])
        return a

    while len(wall) < settings.max_repeats:
        if anchor:
            a = anchor_level(per_call)
            anc += a
        t0 = clock()
        d = run()
        sync()
        wall.append((clock() - t0) * 1e3)
        insort(s_wall, wall[-1])
        if d is not None:
            dev.append(d * 1e3)
            insort(s_dev, dev[-1])
        prim.append(dev[-1] if d is not None else wall[-1])
        if anchor and len(wall) == 1 and wall[0] > LONG_CALL_MS:
            anchor = None                        # not tracked by it: kept as measured
            anc.clear()
            levels.clear()
        if anchor:
            # one anchor call is a snapshot of ~1 ms; beside a call of a second it would
            # sample the machine's speed far more thinly than the call averages it
            per_call = max(1, min(ANCHOR_MAX_PER_CALL,
                                  round(ANCHOR_SHARE * wall[-1] / max(min(a), 1e-6))))
        if len(wall) >= settings.min_repeats:
            if anchor:
                ci = median_ci_rel(s_ratio)     # the estimate the LUT keeps
            else:
                ci = median_ci_rel(s_dev if len(dev) == len(wall) else s_wall)
            if ci <= settings.ci_target:
                stable = True
                break
            if clock() >= t_cap:
                break
    if anchor:
        anc += anchor_level(per_call)           # the bracket after the last call
    return Measurement(summarize(wall, stable),
                       summarize(dev, stable) if len(dev) == len(wall) and dev else None,
                       summarize(anc, stable) if anc else None,
                       summarize(ratios, stable) if ratios else None)
