"""Backends: how a module is prepared and run once on a device, for the meters.

A backend turns ``(module, input shape)`` into a :class:`Prepared` op: ``run()`` executes
one forward pass (returning device-side seconds where the backend can time the device),
``sync()`` waits for the device. The torch backend serves CPU, CUDA and ROCm; the OpenCL
backend (``profilers.opencl_backend``) runs modules through our own kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from .devices import Device


@dataclass
class Prepared:
    """A module ready to run on a device (see module docstring)."""

    run: Callable[[], float | None]
    sync: Callable[[], None]
    peak_bytes: int | None = None
    release: Callable[[], None] = field(default=lambda: None)


class Backend(Protocol):
    """What the profiler needs from a backend."""

    name: str

    def prepare(self, module: nn.Module, input_shape: tuple[int, ...],
                dtype: str = "float32") -> Prepared: ...

    def describe(self) -> dict: ...


_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(name: str) -> torch.dtype:
    """Returns the torch dtype for a dtype name; raises ValueError for unknown names."""
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(_DTYPES)}") from None


class TorchBackend:
    """Runs modules with PyTorch on the CPU or a CUDA/ROCm GPU, in eval mode, under
    ``torch.inference_mode`` (deployment inference). On GPUs, ``run()`` returns the CUDA
    event time of the forward pass."""

    def __init__(self, device: Device):
        self.device = device
        self.name = device.backend
        self.torch_device = torch.device(device.torch_device or "cpu")
        self.is_gpu = self.torch_device.type == "cuda"

    def describe(self) -> dict:
        """Returns the backend's provenance fields."""
        d = {"backend": self.name, "torch": torch.__version__,
             "threads": torch.get_num_threads()}
        if self.is_gpu:
            d["driver"] = torch.version.hip or torch.version.cuda
        return d

    def sync(self) -> None:
        """Blocks until the device is idle."""
        if self.is_gpu:
            torch.cuda.synchronize(self.torch_device)

    def prepare(self, module: nn.Module, input_shape: tuple[int, ...],
                dtype: str = "float32") -> Prepared:
        """Returns the module placed on the device with a random input of ``input_shape``."""
        dt = torch_dtype(dtype)
        module = module.to(self.torch_device, dt).eval()
        x = torch.randn(*input_shape, device=self.torch_device, dtype=dt)

        if self.is_gpu:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)

            def run() -> float:
                with torch.inference_mode():
                    start.record()
                    module(x)
                    end.record()
                end.synchronize()
                return start.elapsed_time(end) / 1e3
        else:
            def run() -> None:
                with torch.inference_mode():
                    module(x)
                return None

        def release() -> None:
            nonlocal module, x
            module, x = None, None
            if self.is_gpu:
                torch.cuda.empty_cache()

        return Prepared(run=run, sync=self.sync, release=release)


def backend_for(device: Device, tuning_dir=None) -> Backend:
    """Returns the backend that measures ``device``."""
    if device.kind == "opencl":
        from .opencl_backend import OpenCLBackend
        return OpenCLBackend(device.index[0], device.index[1], tuning_dir=tuning_dir)
    return TorchBackend(device)
