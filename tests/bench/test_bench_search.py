"""Benchmarks of the search step at a fixed config: C=16, 8 cells, batch 16, 32x32, 2
threads; one step = architecture step (val batch) + weight step (train batch).

Time per step comes from pytest-benchmark; the peak RSS of a fresh process doing the
same steps is recorded in ``benchmark.extra_info`` (MB). Reference on the 2-core dev
machine, original DARTS / PC-DARTS code, first order: DARTS 10.9-12.3 s and 3.25 GB,
PC-DARTS (K=4) 5.3 s and 1.62 GB.

Run: ``pytest tests/bench -m slow --benchmark-enable``.
"""

import json
import subprocess
import sys

import pytest
import torch

CONFIG = dict(C=16, layers=8, batch=16, size=32, threads=2)

_SCRIPT = r"""
import json, resource, sys, time, torch
sys.path.insert(0, {root!r})
from tests.bench.test_bench_search import make_step
torch.set_num_threads({threads})
step = make_step({method!r}, {order!r})
times = []
for _ in range({steps}):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(json.dumps({{"step_s": min(times[1:] or times),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def make_step(method: str, order: str):
    """Returns a callable doing one search step (arch + weight) at CONFIG."""
    from nasbench.oneshot.architect import Architect, weight_step
    from nasbench.spaces.darts_supernet import SearchNetwork
    torch.manual_seed(0)
    net = SearchNetwork(C=CONFIG["C"], layers=CONFIG["layers"],
                        partial_k=4 if method == "pcdarts" else 1)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.weights(), 0.025, momentum=0.9, weight_decay=3e-4)
    arch = Architect(net, order=order)
    shape = (CONFIG["batch"], 3, CONFIG["size"], CONFIG["size"])
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    xv = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    y, yv = torch.randint(0, 10, (shape[0],)), torch.randint(0, 10, (shape[0],))

    def step():
        arch.step(x, y, xv, yv, 0.025, opt)
        weight_step(net, opt, x, y)

    return step


def fresh_process_measure(method: str, order: str, steps: int = 3) -> dict:
    """Returns {"step_s", "peak_rss_mb"} measured in a new interpreter."""
    from pathlib import Path
    root = str(Path(__file__).resolve().parents[2])
    code = _SCRIPT.format(root=root, threads=CONFIG["threads"], method=method, order=order,
                          steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("method,order", [("darts", "first"), ("darts", "second"),
                                          ("pcdarts", "first")])
def test_search_step(benchmark, method, order):
    threads = torch.get_num_threads()
    torch.set_num_threads(CONFIG["threads"])
    try:
        step = make_step(method, order)
        step()                                           # warm-up
        benchmark.pedantic(step, rounds=2, iterations=1)
    finally:
        torch.set_num_threads(threads)
    fresh = fresh_process_measure(method, order)
    benchmark.extra_info.update({"config": CONFIG, "method": method, "order": order,
                                 "fresh_step_s": fresh["step_s"],
                                 "peak_rss_mb": fresh["peak_rss_mb"]})
