"""Benchmarks of the profiling layer's hot paths: meter overhead and LUT load/query."""

import random

from profilers.latency import LatencySettings, measure_latency
from profilers.lut import LUT, full_key
from tests.conftest import make_entry


def test_meter_overhead_per_timed_call(benchmark):
    """Time the meter spends per timed call of a no-op (the floor under every entry)."""
    s = LatencySettings(warmup=1, warmup_s=0.0, min_repeats=100, max_repeats=100,
                        ci_target=1e-9)

    def measure():
        return measure_latency(lambda: None, None, s)

    m = benchmark(measure)
    benchmark.extra_info["noop_median_us"] = m.primary.median * 1e3
    assert m.primary.repeats == 100


def _big_lut(n=5000):
    rng = random.Random(0)
    keys = [f"op{i % 13}/c{8 * (i % 50) + 8}-{8 * (i % 50) + 8}/h{4 + i % 29}w{4 + i % 29}/"
            f"s{1 + i % 2}" for i in range(n)]
    return LUT({"device": {"id": "cpu:x"}}, {full_key(k, 1): make_entry(k, 1, rng.random())
                                             for k in keys}), keys


def test_lut_load(benchmark, tmp_path):
    lut, _ = _big_lut()
    p = lut.save(tmp_path / "big.json")
    loaded = benchmark(LUT.load, p)
    benchmark.extra_info["entries"] = len(loaded.entries)
    assert len(loaded.entries) == len(lut.entries)


def test_lut_query(benchmark):
    lut, keys = _big_lut()

    def query():
        return sum(lut.value(k, 1) for k in keys)

    total = benchmark(query)
    benchmark.extra_info["queries_per_round"] = len(keys)
    assert total > 0
