import math

import pytest

from profilers.latency import LatencySettings, measure_latency, median_ci_rel, summarize


def test_summarize_matches_hand_computation():
    s = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert s.median == 3.0
    assert s.mean == 4.0
    # sample std of [1,2,3,4,10] = sqrt(((9+4+1+0+36)/4)) = sqrt(12.5)
    assert s.cv == pytest.approx(math.sqrt(12.5) / 4.0)
    assert s.p5 == pytest.approx(1.2)
    assert s.p95 == pytest.approx(8.8)
    assert s.repeats == 5


def test_median_ci_shrinks_with_tight_samples():
    assert median_ci_rel([1.0, 1.0, 1.0, 1.0, 1.0]) == 0.0
    assert median_ci_rel([1.0, 2.0]) == math.inf
    wide = median_ci_rel(sorted([1, 5, 9, 2, 8, 3, 7, 4, 6, 5.0]))
    assert wide > 0.5


class FakeClock:
    """A clock the fake op advances: each run() takes the next duration."""

    def __init__(self, durations):
        self.t = 0.0
        self.durations = iter(durations)

    def __call__(self):
        return self.t

    def run(self):
        self.t += next(self.durations)


def test_stops_when_stable_and_reports_ms():
    clock = FakeClock([0.002] * 10_000)  # a constant 2 ms op
    s = LatencySettings(warmup=2, warmup_s=0.0, min_repeats=10, max_repeats=100)
    m = measure_latency(clock.run, None, s, clock=clock)
    assert m.primary.median == pytest.approx(2.0)
    assert m.primary.repeats == 10  # the CI is zero right at min_repeats
    assert m.primary.stable
    assert m.device is None


def test_noisy_op_runs_to_cap_and_is_not_stable():
    import random
    rng = random.Random(0)
    clock = FakeClock([rng.choice([0.001, 0.003]) for _ in range(10_000)])
    s = LatencySettings(warmup=0, warmup_s=0.0, min_repeats=10, max_repeats=50,
                        time_cap_s=100.0)
    m = measure_latency(clock.run, None, s, clock=clock)
    assert m.primary.repeats == 50
    assert not m.primary.stable
    assert m.primary.cv > 0.3


def test_time_cap_bounds_repeats():
    clock = FakeClock([0.1 if i % 2 else 0.3 for i in range(10_000)])
    s = LatencySettings(warmup=0, warmup_s=0.0, min_repeats=5, max_repeats=1000,
                        time_cap_s=2.0)
    m = measure_latency(clock.run, None, s, clock=clock)
    assert m.primary.repeats < 20


def test_device_time_is_primary_when_reported():
    clock = FakeClock([0.004] * 1000)

    def run():
        clock.run()
        return 0.001  # device says 1 ms, host wall says 4 ms

    m = measure_latency(run, None, LatencySettings(warmup=0, warmup_s=0.0), clock=clock)
    assert m.primary.median == pytest.approx(1.0)
    assert m.wall.median == pytest.approx(4.0)


def test_sync_called_each_run():
    calls = []
    clock = FakeClock([0.001] * 1000)
    measure_latency(clock.run, lambda: calls.append(1),
                    LatencySettings(warmup=3, warmup_s=0.0), clock=clock)
    assert len(calls) >= 13


@pytest.mark.parametrize("kw", [dict(min_repeats=2), dict(min_repeats=10, max_repeats=5),
                                dict(time_cap_s=0), dict(ci_target=-1)])
def test_bad_settings_rejected(kw):
    with pytest.raises(ValueError):
        LatencySettings(**kw)


def test_anchor_cancels_a_speed_change():
    """The machine halves its speed mid-measurement: the op's median is then whichever
    half has more calls, but the ratio to an anchor timed right before each call is the
    true 3:1."""
    clock = FakeClock([])
    calls = {"n": 0}

    def speed():            # 1x for the first 40 calls of the op, then 2x slower
        return 1.0 if calls["n"] < 40 else 2.0

    def op():
        calls["n"] += 1
        clock.t += 0.003 * speed()

    def anchor():
        clock.t += 0.001 * speed()

    s = LatencySettings(warmup=0, warmup_s=0.0, min_repeats=100, max_repeats=100)
    m = measure_latency(op, None, s, clock=clock, anchor=(anchor, lambda: None))
    assert m.primary.median == pytest.approx(6.0)   # 60 of 100 calls ran slow
    # 100 anchors before the calls and one after the last (brackets)
    assert m.anchor.repeats == 101 and m.anchor.median == pytest.approx(2.0)
    assert m.ratio == pytest.approx(3.0) and m.paired.repeats == 100
    plain = measure_latency(op, None, s, clock=clock)
    assert plain.anchor is None and plain.ratio is None


def test_anchor_sampled_more_beside_a_long_call():
    """Beside an op 100x longer than the anchor, the anchor runs ANCHOR_SHARE x 100
    times per call (3), so its median is not a handful of snapshots."""
    from profilers.latency import ANCHOR_SHARE
    clock = FakeClock([])

    def op():
        clock.t += 0.100

    def anchor():
        clock.t += 0.001

    s = LatencySettings(warmup=0, warmup_s=0.0, min_repeats=5, max_repeats=5)
    m = measure_latency(op, None, s, clock=clock, anchor=(anchor, lambda: None))
    per_call = round(ANCHOR_SHARE * 100)
    assert m.primary.repeats == 5 and m.anchor.repeats == 1 + 5 * per_call
    assert m.ratio == pytest.approx(100.0)


def test_bracketed_ratio_follows_a_steady_drift():
    """The machine slows down a little at every call (a steady drift): each call of
    the op runs at the mean speed of the anchors just before and just after it, so the
    bracketed ratio is the true 3:1 at every call, where pairing with the anchor before
    alone would be 3 x (1 + drift per call)."""
    clock = FakeClock([])
    events = {"n": 0}

    def tick(ms):
        events["n"] += 1
        clock.t += ms * 1e-3 * (1.0 + 0.1 * events["n"])

    def op():
        tick(3.0)

    def anchor():
        tick(1.0)

    s = LatencySettings(warmup=0, warmup_s=0.0, min_repeats=20, max_repeats=20)
    m = measure_latency(op, None, s, clock=clock, anchor=(anchor, lambda: None))
    assert m.paired.repeats == 20
    assert m.ratio == pytest.approx(3.0, rel=1e-9)
    assert m.paired.cv < 1e-9                   # every call's bracket agrees


def test_long_calls_are_not_anchored():
    """A call longer than LONG_CALL_MS is kept as measured: after the first timed call
    the meter stops timing the anchor, and the Measurement has no ratio (so a LUT entry
    or a network is not drift-corrected)."""
    from profilers.latency import LONG_CALL_MS
    clock = FakeClock([])
    anchor_calls = {"n": 0}

    def op():
        clock.t += 2 * LONG_CALL_MS * 1e-3

    def anchor():
        anchor_calls["n"] += 1
        clock.t += 0.001

    s = LatencySettings(warmup=1, warmup_s=0.0, min_repeats=3, max_repeats=3)
    m = measure_latency(op, None, s, clock=clock, anchor=(anchor, lambda: None))
    assert m.ratio is None and m.anchor is None and m.paired is None
    assert m.primary.median == pytest.approx(2 * LONG_CALL_MS)
    # one in warm-up, the first level before the first call, then none
    assert anchor_calls["n"] == 2
