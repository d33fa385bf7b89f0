"""Benchmarks of one ProxylessNAS search step next to a DARTS step at comparable width.

One ProxylessNAS step = a weight step on one sampled path (train batch) + a two-path
binary-gate architecture step (val batch, weights frozen), on the ``cifar`` layout
(32x32, widths 16-160, 12 searchable blocks) at batch 16, 2 threads. The DARTS step is
``tests/bench/test_bench_search.py``'s (C=16, 8 cells, batch 16, first order): both
networks start at 16-24 channels at 32x32 and end at 4x4 (ProxylessNAS, 160 wide) or
8x8 (DARTS, 4 x 64 = 256 wide).

Time per step comes from pytest-benchmark; the peak RSS of a fresh process doing the
same steps is in ``benchmark.extra_info`` (MB). The point of binary gates: memory of a
single path, where DARTS keeps every candidate's activations.

Run: ``pytest tests/bench/test_bench_proxyless.py -m slow --benchmark-enable``.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CONFIG = dict(layout="cifar", batch=16, size=32, threads=2)

_SCRIPT = r"""
import json, resource, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
if {method!r} == "proxyless":
    from tests.bench.test_bench_proxyless import make_proxyless_step as make
    step = make()
else:
    from tests.bench.test_bench_search import make_step
    step = make_step("darts", "first")
times = []
for _ in range({steps}):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(json.dumps({{"step_s": min(times[1:] or times),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def make_proxyless_step():
    """Returns a callable doing one ProxylessNAS search step (weight + arch) at CONFIG,
    with a latency loss (mul#log) over a synthetic LUT of the layout."""
    from nasbench.oneshot.proxyless import (
        ProxylessCostModel,
        ProxylessObjective,
        ProxylessSupernet,
        binary_arch_step,
        weight_step,
    )
    from nasbench.spaces.proxyless import ProxylessDeployConfig, enumerate_instances
    from profilers.lut import LUT, full_key
    torch.manual_seed(0)
    deploy = ProxylessDeployConfig.from_layout(CONFIG["layout"], input_size=CONFIG["size"])
    entries = {full_key(i.key, 1): {"latency_ms": {"median": 0.01 * (1 + i.c_in / 8)}}
               for i in enumerate_instances(deploy)}
    cm = ProxylessCostModel.from_lut(LUT({}, entries), deploy, ["latency"])
    objective = ProxylessObjective(cm, "mul#log", latency_target_ms=max(
        1.5, cm.reference["latency"]))
    net = ProxylessSupernet(deploy).to(memory_format=torch.channels_last)
    w_opt = torch.optim.SGD(net.weights(), 0.025, momentum=0.9, nesterov=True,
                            weight_decay=4e-5)
    a_opt = torch.optim.Adam(net.arch_parameters(), 1e-3, betas=(0.0, 0.999))
    shape = (CONFIG["batch"], 3, CONFIG["size"], CONFIG["size"])
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    xv = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    y, yv = torch.randint(0, 10, (shape[0],)), torch.randint(0, 10, (shape[0],))

    def step():
        weight_step(net, w_opt, x, y)
        binary_arch_step(net, objective, a_opt, xv, yv)

    return step


def fresh_process_measure(method: str, steps: int = 4) -> dict:
    """Returns {"step_s", "peak_rss_mb"} measured in a new interpreter."""
    root = str(Path(__file__).resolve().parents[2])
    code = _SCRIPT.format(root=root, threads=CONFIG["threads"], method=method, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["proxyless", "darts"])
def test_search_step_proxyless_vs_darts(benchmark, method):
    threads = torch.get_num_threads()
    torch.set_num_threads(CONFIG["threads"])
    try:
        if method == "proxyless":
            step = make_proxyless_step()
            for _ in range(3):                  # warm-up: oneDNN primitives per path shape
                step()
        else:
            from tests.bench.test_bench_search import make_step
            step = make_step("darts", "first")
            step()
        benchmark.pedantic(step, rounds=3 if method == "proxyless" else 2, iterations=1)
    finally:
        torch.set_num_threads(threads)
    fresh = fresh_process_measure(method)
    benchmark.extra_info.update({"config": CONFIG, "method": method,
                                 "fresh_step_s": fresh["step_s"],
                                 "peak_rss_mb": fresh["peak_rss_mb"]})
    assert fresh["step_s"] > 0 and fresh["peak_rss_mb"] > 0
