"""OpenCL kernels for the search-space primitives and the pyopencl runtime that runs
them: :mod:`kernels.runtime` (devices, context, queue, program cache, buffers, event
timing), :mod:`kernels.tuning` (work-group sizes), :mod:`kernels.executor` (torch.fx
module -> OpenCL plan) and :mod:`kernels.roofline` (micro-benchmarks).

This package imports nothing of ours. pyopencl is imported only when a submodule is
used, so ``import kernels`` works where OpenCL is not installed.
"""

__all__ = ["executor", "roofline", "runtime", "tuning"]
