"""Values, launches and the compiled module of the OpenCL executor.

A value is a strided :class:`View` of a logical :class:`Storage`; a :class:`Step` is one
kernel launch whose arguments reference views, bound to physical buffers once the
planner has assigned storages to them. :class:`CompiledModule` holds the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyopencl as cl
import torch

from .runtime import Runtime, events_seconds

GUARD = 64
"""Elements of slack before and after every storage (views start at offset GUARD), so
that vector kernels may load a full vector that overhangs a tensor's edge and mask the
out-of-range lanes instead of falling back to scalar loads; nothing is ever written
there and masked lanes never reach a result."""


class UnsupportedLayerError(NotImplementedError):
    """A module or function the OpenCL executor cannot run; the message names the node."""


# ---- values ---------------------------------------------------------------------------


@dataclass(eq=False)
class Storage:
    """A logical device buffer; ``buf`` is bound to a physical buffer by the planner."""

    nelem: int
    name: str
    pinned: bool = False  # input storage: never shared with anything else
    buf: object = None
    first: int | None = None
    last: int = -1

    @property
    def nbytes(self) -> int:
        """Returns the bytes to allocate: the elements plus a guard band on each side."""
        return 4 * (self.nelem + 2 * GUARD)


@dataclass(eq=False)
class View:
    """A strided 4-D view (N, C, H, W) of a storage; ``rank`` is the torch rank (2 or 4;
    rank-2 (N, F) tensors are (N, F, 1, 1)); ``relu`` means "apply ReLU when reading"."""

    st: Storage
    off: int
    shape: tuple
    strides: tuple
    rank: int = 4
    relu: bool = False

    def pixel_contiguous(self) -> bool:
        """Returns True when pixel (h, w) of a channel is at offset h*W + w."""
        _, _, h, w = self.shape
        return (w == 1 or self.strides[3] == 1) and (h == 1 or self.strides[2] == w)


def contiguous_strides(shape) -> tuple:
    n, c, h, w = shape
    return (c * h * w, h * w, w, 1)


def shape4(shape) -> tuple:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4:
        return shape
    if len(shape) == 2:
        return (shape[0], shape[1], 1, 1)
    raise ValueError(f"rank {len(shape)}")


class FullArg:  # kernel argument: (buffer, off, sn, sc, sh, sw)
    def __init__(self, v):
        self.v = v


class NCArg:  # kernel argument: (buffer, off, sn, sc); pixels contiguous
    def __init__(self, v):
        self.v = v


class NArg:  # kernel argument: (buffer, off, sn)
    def __init__(self, v):
        self.v = v


@dataclass(eq=False)
class Step:
    """One kernel launch of the plan."""

    name: str
    file: str
    kernel_name: str
    defines: dict
    global_size: tuple
    candidates: list
    args: list
    reads: list
    write: View
    flops: int = 0
    kernel: object = None
    local: tuple | None = None
    gsize: tuple = ()

    def tuning_key(self) -> str:
        d = ",".join(f"{k}={v}" for k, v in sorted(self.defines.items()))
        return f"{self.kernel_name}|{d}|g={'x'.join(map(str, self.global_size))}"


# ---- compiled module --------------------------------------------------------------------


@dataclass
class MemoryReport:
    """Bytes of device memory of a compiled module.

    ``input_bytes``: the input buffer; ``arena_bytes``: the physical buffers holding
    intermediates and the output after reuse; ``weight_bytes``: folded weights and
    biases; ``peak_live_bytes``: the largest sum of simultaneously live activation
    storages (input included), a lower bound for ``input_bytes + arena_bytes``;
    ``naive_bytes``: input plus every node's output tensor, as if nothing were reused.
    """

    input_bytes: int
    arena_bytes: int
    weight_bytes: int
    peak_live_bytes: int
    naive_bytes: int

    @property
    def activation_bytes(self) -> int:
        """Returns input + arena bytes (all activation memory on the device)."""
        return self.input_bytes + self.arena_bytes

    @property
    def total_bytes(self) -> int:
        """Returns everything the module holds on the device (activations + weights)."""
        return self.activation_bytes + self.weight_bytes


@dataclass
class CompiledModule:
    """A module compiled for one device. ``forward(x)`` runs it and returns a numpy
    array; ``enqueue()`` launches one forward on the current input and returns events."""

    runtime: Runtime
    steps: list
    input_view: View
    output_view: View
    output_shape: tuple
    memory: MemoryReport
    _weights: list = field(default_factory=list)
    _physical: list = field(default_factory=list)
    _released: bool = False

    def set_input(self, x) -> None:
        """Copies ``x`` (tensor or array of the traced input shape) to the device."""
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        n, c, h, w = self.input_view.shape
        if arr.size != n * c * h * w:
            raise ValueError(f"input has {arr.size} elements, expected shape "
                             f"{self.input_view.shape}")
        self.runtime.write(self.input_view.st.buf, arr.reshape(-1), self.input_view.off)

    def enqueue(self) -> list:
        """Enqueues one forward pass; returns the kernel events (not waited for)."""
        launch = cl.enqueue_nd_range_kernel
        q = self.runtime.queue
        return [launch(q, s.kernel, s.gsize, s.local) for s in self.steps]

    def run(self) -> float:
        """Runs one forward pass, blocks, and returns the summed kernel time in seconds
        (OpenCL profiling events, end - start of each kernel)."""
        events = self.enqueue()
        self.runtime.finish()
        return events_seconds(events)

    def read_output(self) -> np.ndarray:
        """Returns the output tensor as a float32 numpy array of the torch shape."""
        v = self.output_view
        n, c, h, w = v.shape
        span = v.off + sum((d - 1) * s for d, s in zip(v.shape, v.strides, strict=True)) + 1
        flat = self.runtime.read(v.st.buf, span - v.off, v.off)
        arr = np.lib.stride_tricks.as_strided(
            flat, shape=v.shape, strides=tuple(4 * s for s in v.strides)).copy()
        return arr.reshape(self.output_shape)

    def forward(self, x) -> np.ndarray:
        """Runs the module on ``x`` and returns the output as a numpy array."""
        self.set_input(x)
        self.run()
        return self.read_output()

    def layer_times(self) -> list[tuple[str, str, float]]:
        """Runs one forward and returns (node name, kernel name, seconds) per launch."""
        events = self.enqueue()
        self.runtime.finish()
        return [(s.name, s.kernel_name, (e.profile.end - e.profile.start) * 1e-9)
                for s, e in zip(self.steps, events, strict=True)]

    @property
    def flops(self) -> int:
        """Returns the floating-point operations of one forward (2 per multiply-add)."""
        return sum(s.flops for s in self.steps)

    def release(self) -> None:
        """Returns activation buffers to the runtime pool and frees the weights."""
        if self._released:
            return
        self._released = True
        for buf in self._physical:
            self.runtime.pool.release(buf)
        for buf in self._weights:
            buf.release()
        self._physical.clear()
        self._weights.clear()


def expand_args(args) -> list:
    out = []
    for a in args:
        if isinstance(a, FullArg):
            v = a.v
            out += [v.st.buf, np.int32(v.off)] + [np.int32(s) for s in v.strides]
        elif isinstance(a, NCArg):
            v = a.v
            out += [v.st.buf, np.int32(v.off), np.int32(v.strides[0]), np.int32(v.strides[1])]
        elif isinstance(a, NArg):
            v = a.v
            out += [v.st.buf, np.int32(v.off), np.int32(v.strides[0])]
        else:
            out.append(a)
    return out
