"""Benchmarks of the zero-cost proxies (nasbench/proxies): cells per second on the
NAS-Bench-201 network (C=16, 5 cells per stage, 32x32) with a minibatch of 64 images,
cold cache (each round scores fresh cells with :meth:`ProxyScorer.compute`, which
neither reads nor writes the cache), for NASWOT alone, the default score
(jacob_cov+naswot+params) and every proxy. ``benchmark.extra_info``: ``cells_per_s``,
``threads``. Goal (issue 27): NASWOT alone >= 2 cells/s here.

Run: ``pytest tests/bench/test_bench_proxies.py --benchmark-enable -m "slow or not slow"``
(nothing else on the machine meanwhile; "all" is marked slow).
"""

import random

import pytest
import torch

from nasbench.data import load_synthetic
from nasbench.proxies import DEFAULT_PROXY, parse_proxy, proxy_names
from nasbench.proxies.scorer import ProxyScorer
from nasbench.spaces.nb201 import NB201DeployConfig, NB201Space

CELLS = 8          # per round


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    space = NB201Space(NB201DeployConfig())
    return ProxyScorer(space, load_synthetic(32), batch=64,
                       cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("proxy", ["naswot", DEFAULT_PROXY,
                                   pytest.param("all", marks=pytest.mark.slow)])
def test_cells_per_second(benchmark, scorer, proxy):
    names = proxy_names() if proxy == "all" else parse_proxy(proxy)
    rng = random.Random(0)
    cells = [scorer.space.sample_valid(rng) for _ in range(CELLS)]

    def run():
        for a in cells:
            scorer.compute(a, names)

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    if benchmark.stats:                  # None under --benchmark-disable (a smoke run)
        benchmark.extra_info.update(cells_per_s=CELLS / benchmark.stats["mean"],
                                    threads=torch.get_num_threads(), proxy=proxy)
