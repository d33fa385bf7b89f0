"""Roofline micro-benchmarks: the device's achievable GFLOP/s (our pointwise GEMM kernel
on a large square problem) and GB/s (a streaming copy), as context for kernel timings."""

from __future__ import annotations

import numpy as np
import pyopencl as cl

from .runtime import Runtime, event_ns


def _best_ns(rt: Runtime, kernel, gsize, local, repeats: int) -> int:
    rt.launch(kernel, gsize, local).wait()  # compile for this local size, warm caches
    best = None
    for _ in range(repeats):
        ev = rt.launch(kernel, gsize, local)
        ev.wait()
        ns = event_ns(ev)
        best = ns if best is None else min(best, ns)
    return best


def measure_gemm_gflops(rt: Runtime, m: int = 256, k: int = 256, p: int = 4096,
                        repeats: int = 10) -> float:
    """Returns achievable GFLOP/s (1e9 floating-point operations per second, 2 per
    multiply-add) of the conv_pw GEMM kernel on an (m x k) @ (k x p) product: the best
    of ``repeats`` runs, so an estimate of what the device sustains, not its peak. Small
    GEMMs whose operands stay in cache can exceed it."""
    vw, tm = 16, 8
    kern = rt.kernel("conv_pw.cl", "conv_pw", {"VW": vw, "TM": tm, "CONTIG": 1})
    x = rt.upload(np.random.default_rng(0).standard_normal((k, p), dtype=np.float32))
    w = rt.upload(np.zeros((k, m), np.float32))
    b = rt.upload(np.zeros(m, np.float32))
    y = cl.Buffer(rt.context, cl.mem_flags.READ_WRITE, 4 * m * p)
    i = np.int32
    kern.set_args(x, i(0), i(k * p), i(p), i(p), i(1), w, b, y, i(0), i(m * p), i(p),
                  b, i(0), i(0), i(0), i(k), i(m), i(m), i(1), i(p), i(1))
    ns = _best_ns(rt, kern, (p // vw, m // tm, 1), (1, 1, 1), repeats)
    return 2.0 * m * k * p / ns


def measure_copy_gbps(rt: Runtime, nbytes: int = 64 << 20, repeats: int = 10) -> float:
    """Returns achievable GB/s (1e9 bytes per second, read + write counted) of a
    streaming device-to-device copy of ``nbytes``."""
    n16 = nbytes // 64
    kern = rt.kernel("roofline.cl", "copy16")
    src = cl.Buffer(rt.context, cl.mem_flags.READ_WRITE, n16 * 64)
    dst = cl.Buffer(rt.context, cl.mem_flags.READ_WRITE, n16 * 64)
    cl.enqueue_fill_buffer(rt.queue, src, np.float32(1), 0, n16 * 64).wait()
    kern.set_args(src, dst, np.int32(n16))
    ns = _best_ns(rt, kern, (n16,), (64,), repeats)
    return 2.0 * n16 * 64 / ns


def measure_roofline(rt: Runtime | None = None) -> dict:
    """Returns {"gflops": achievable GFLOP/s, "gbps": achievable GB/s, "device": name}."""
    rt = rt or Runtime()
    return {"gflops": measure_gemm_gflops(rt), "gbps": measure_copy_gbps(rt),
            "device": rt.info["name"]}
