"""OpenCL kernels for the search-space primitives and the pyopencl runtime that runs
them: :mod:`kernels.runtime` (devices, context, queue, program cache, buffers, event
timing), :mod:`kernels.tuning` (work-group sizes), :mod:`kernels.executor` (torch.fx
module -> OpenCL launches; with :mod:`kernels.fusion`, :mod:`kernels.lowering` and
:mod:`kernels.plan`), :mod:`kernels.roofline` (micro-benchmarks) and
:mod:`kernels.files` (the project's atomic file writes, standard library only). OpenCL
C sources are in ``kernels/cl``.

This package imports nothing of ours. pyopencl is imported only when a submodule is
used, so ``import kernels`` works where OpenCL is not installed.
"""

__all__ = ["executor", "files", "fusion", "lowering", "plan", "roofline", "runtime", "tuning"]
