"""The OpenCL measuring backend: runs one module (a single op or a whole network) on an
OpenCL device through :mod:`kernels.executor` and times it with OpenCL profiling events.

Memory accounting (``Prepared.peak_bytes``): everything the prepared module holds on
the device: the input buffer, the planned activation arena (intermediates and output,
with freed buffers reused) and the folded weights. ``activation_bytes`` and
``weight_bytes`` give the two parts separately.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class Prepared:
    """A module ready to run on the device.

    ``run()`` runs one forward pass, blocks until it is done and returns the summed
    kernel time in seconds (OpenCL profiling events, end - start per kernel; 0.0 for a
    module that launches no kernel, e.g. Identity). ``sync()`` waits for the queue.
    ``peak_bytes``: bytes of device memory held (activations + weights);
    ``release()`` frees the buffers.
    """

    run: Callable[[], float | None]
    sync: Callable[[], None]
    peak_bytes: int | None
    release: Callable[[], None]
    activation_bytes: int | None = None
    weight_bytes: int | None = None
    kernel_launches: int = 0
    flops: int | None = None


class OpenCLBackend:
    """Measures modules on OpenCL device (platform, device); work-group sizes are tuned
    and cached in ``tuning_dir`` when given (else heuristic defaults, no tuning)."""

    name = "opencl"

    def __init__(self, platform: int = 0, device: int = 0, tuning_dir: Path | None = None):
        try:
            from kernels.runtime import Runtime
            from kernels.tuning import Tuner
        except ImportError as exc:  # pyopencl missing
            raise RuntimeError(
                f"the OpenCL backend needs pyopencl (pip install 'pyopencl[pocl]'): {exc}"
            ) from None
        self.runtime = Runtime(platform, device)
        self.tuner = Tuner(self.runtime, tuning_dir)

    def describe(self) -> dict:
        """Returns the device's identity and capabilities: platform_name, name, vendor,
        version, driver_version, compute_units, max_clock_mhz (MHz), global_mem_bytes,
        local_mem_bytes (bytes), is_cpu, fp16, plus backend="opencl"."""
        # what the executor fuses across ops (kernels/fusion.py): predictors read it
        return {"backend": self.name, **self.runtime.info,
                "fuses": ["bn_fold", "relu", "add_epilogue", "concat_slices"]}

    def prepare(self, module: torch.nn.Module, input_shape: tuple[int, ...],
                dtype: str = "float32") -> Prepared:
        """Compiles ``module`` (put in eval mode) for ``input_shape`` (NCHW), uploads a
        random input and runs it once, so that every (kernel, local size) pair is
        compiled before timing. Raises ``kernels.executor.UnsupportedLayerError`` for
        layers the executor cannot run and ValueError for dtypes other than float32."""
        from kernels.executor import compile_module

        if dtype != "float32":
            raise ValueError(f"the OpenCL backend supports float32 only, not {dtype}")
        module.eval()
        cm = compile_module(module, tuple(input_shape), self.runtime, self.tuner)
        cm.set_input(torch.randn(tuple(input_shape)))
        cm.run()  # warm-up: PoCL compiles on the first launch of each local size
        mem = cm.memory
        return Prepared(run=cm.run, sync=self.runtime.finish, peak_bytes=mem.total_bytes,
                        release=cm.release, activation_bytes=mem.activation_bytes,
                        weight_bytes=mem.weight_bytes, kernel_launches=len(cm.steps),
                        flops=cm.flops)
