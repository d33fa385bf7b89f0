"""Run a torch ``nn.Module`` on an OpenCL device through our kernels.

Pipeline (all at load time, in :func:`compile_module`):

1. trace with ``torch.fx`` and propagate shapes with a random input;
2. fuse: BatchNorm folded into the preceding convolution (also through a channel
   concatenation of convolutions, as in FactorizedReduce), ReLU fused into the
   convolution it follows (epilogue) or precedes (applied on load), and ``a + b`` fused
   into the convolution that produces one operand (epilogue addend);
3. views instead of copies: slicing and flatten are strided views; producers of a
   channel concatenation write straight into their channel slice of its buffer;
4. plan buffers: a storage lives from its first write to its last read and is then
   free for later storages (best fit), so the device arena is far below the sum of all
   intermediate tensors;
5. pick a kernel per convolution: 1x1 -> ``conv_pw`` (register-tiled GEMM), depthwise
   -> ``conv_dw``, other convolutions on unit-stride rows -> ``conv_direct`` (vectorised
   along output columns), anything else -> ``conv_general`` (scalar, fully general);
6. set kernel arguments once; :meth:`CompiledModule.enqueue` only enqueues.

Anything else raises :class:`UnsupportedLayerError` naming the node.

This module traces (1), converts node by node and plans and binds the buffers and
launches (4, 6); the fusion analysis (2) is :mod:`kernels.fusion`, the lowering of each
layer to views and kernel launches (3, 5) :mod:`kernels.lowering`, the values, launches
and the compiled module :mod:`kernels.plan`.
"""

from __future__ import annotations

import math
import operator

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .fusion import FLATTEN_FUNCS, FusionGraph
from .lowering import Lowering, bn_affine, node_where
from .plan import (
    CompiledModule,
    MemoryReport,
    UnsupportedLayerError,
    View,
    expand_args,
    shape4,
)
from .runtime import Runtime, round_up
from .tuning import Tuner

__all__ = ["CompiledModule", "MemoryReport", "UnsupportedLayerError", "compile_module"]


# ---- the compiler -----------------------------------------------------------------------


def _fn_name(node) -> str:
    t = node.target
    if isinstance(t, str):
        return f"Tensor.{t}"
    return getattr(t, "__qualname__", None) or getattr(t, "__name__", repr(t))


class _Compiler(Lowering):
    """Traces the module, lowers its nodes in order (see :class:`Lowering`), then plans
    the buffers and binds every launch into a :class:`CompiledModule`."""

    def __init__(self, runtime: Runtime, module: nn.Module, input_shape: tuple,
                 tuner: Tuner | None):
        super().__init__(runtime)
        self.tuner = tuner or Tuner(runtime, None)
        self.module = module
        self.input_shape = tuple(int(s) for s in input_shape)

    # -- entry --
    def compile(self) -> CompiledModule:
        if len(self.input_shape) != 4:
            raise UnsupportedLayerError(
                f"input shape {self.input_shape}: the OpenCL executor takes NCHW input")
        module = self.module
        if fx.Tracer().is_leaf_module(module, ""):
            # fx traces *into* a root module; wrap a bare torch layer so that it stays a
            # call_module node (what the converter understands)
            module = _Wrap(module)
        try:
            gm = fx.symbolic_trace(module)
        except Exception as exc:  # fx raises many types for untraceable Python
            raise UnsupportedLayerError(
                f"{type(self.module).__name__}: cannot be traced with torch.fx ({exc})"
            ) from exc
        _propagate_shapes(gm, self.input_shape)
        self.g = FusionGraph(gm)
        out_node = None
        for node in self.g.nodes:
            if node.op == "output":
                out_node = node
                break
            self._check_tensor(node)
            self._convert(node)
        res = out_node.args[0]
        if isinstance(res, (tuple, list)):
            if len(res) != 1:
                raise UnsupportedLayerError("output: only a single output tensor is supported")
            res = res[0]
        if not isinstance(res, fx.Node):
            raise UnsupportedLayerError("output: the module must return a tensor")
        out_view = self.vals[res]
        if out_view.relu:  # a lazily applied ReLU must be materialised for the caller
            out_view = self._copy(res, out_view)
        return self._finish(out_view, self.g.shape(res))

    def _check_tensor(self, node) -> None:
        tm = node.meta.get("tensor_meta")
        if node.op in ("placeholder", "call_module", "call_function", "call_method"):
            if not hasattr(tm, "shape"):
                raise UnsupportedLayerError(
                    f"{node_where(node)}: produces a non-tensor value ({_fn_name(node)}), "
                    "which the OpenCL executor does not support")
            if tm.dtype != torch.float32:
                raise UnsupportedLayerError(
                    f"{node_where(node)}: dtype {tm.dtype} is not supported (float32 only)")
            if len(tm.shape) not in (2, 4):
                raise UnsupportedLayerError(
                    f"{node_where(node)}: rank-{len(tm.shape)} tensors are not supported "
                    "(NCHW or (N, F) only)")

    # -- node conversion --
    def _convert(self, node) -> None:
        g = self.g
        if node.op == "placeholder":
            if any(v.st.pinned for v in self.vals.values()):
                raise UnsupportedLayerError(f"{node.name}: only one input tensor is supported")
            v = self._new_view(node, self.g.shape(node))
            v.st.pinned = True
            self.vals[node] = v
            return
        if node.op == "get_attr":
            raise UnsupportedLayerError(
                f"{node.target}: reading parameters in forward is not supported")
        if node in g.inner:
            return  # folded into a conv group, emitted at the group's end
        if node in g.group_of_end:
            self._emit_conv_group(g.group_of_end[node])
            return
        if node in g.cat_bn:  # folded into the member convolutions
            self.vals[node] = self.vals[g.cat_bn[node]]
            return
        if node.op == "call_module":
            self._convert_module(node, g.mod(node))
        elif node.op in ("call_function", "call_method"):
            self._convert_function(node)
        else:
            raise UnsupportedLayerError(f"{node.name}: fx op {node.op} is not supported")

    def _convert_module(self, node, m) -> None:
        x = self.vals.get(node.args[0]) if node.args else None
        if isinstance(m, (nn.Identity, nn.Dropout)):
            self.vals[node] = x
        elif isinstance(m, nn.BatchNorm2d):
            if m.running_mean is None:
                raise UnsupportedLayerError(
                    f"{node.target}: BatchNorm2d without running statistics is not supported")
            scale, shift = bn_affine(m)
            self._affine(node, x, scale, shift, post_relu=False)
        elif isinstance(m, nn.ReLU):
            self._relu(node, x)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            self._pool(node, m, x)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self._adaptive_avg(node, x)
        elif isinstance(m, nn.Linear):
            self._linear(node, m, x)
        elif isinstance(m, nn.Flatten):
            self._flatten(node, x, m.start_dim, m.end_dim)
        else:
            raise UnsupportedLayerError(
                f"{node.target}: nn.{type(m).__name__} is not supported by the OpenCL executor")

    def _convert_function(self, node) -> None:
        g, t = self.g, node.target
        args = node.args
        if g.is_relu(node):
            self._relu(node, self.vals[args[0]])
        elif g.is_add(node):
            self._add(node, self.vals[args[0]], self.vals[args[1]])
        elif g.is_mul(node) and len(args) == 2:
            a, b = args
            if isinstance(a, fx.Node) and isinstance(b, (int, float)):
                self._scale(node, self.vals[a], float(b))
            elif isinstance(b, fx.Node) and isinstance(a, (int, float)):
                self._scale(node, self.vals[b], float(a))
            else:
                raise UnsupportedLayerError(
                    f"{node_where(node)}: only multiplication by a Python scalar is supported")
        elif g.is_cat(node):
            self._cat(node)
        elif t is operator.getitem:
            self._getitem(node)
        elif t in FLATTEN_FUNCS or t == "flatten":
            start = args[1] if len(args) > 1 else node.kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else node.kwargs.get("end_dim", -1)
            self._flatten(node, self.vals[args[0]], start, end)
        elif t == "contiguous":
            self.vals[node] = self.vals[args[0]]
        else:
            raise UnsupportedLayerError(
                f"{node_where(node)}: function {_fn_name(node)} is not supported by the "
                "OpenCL executor")

    # -- planning and binding --
    def _finish(self, out_view: View, out_shape) -> CompiledModule:
        steps = self.steps
        for i, s in enumerate(steps):
            for v in s.reads:
                v.st.last = max(v.st.last, i)
            if s.write.st.first is None:
                s.write.st.first = i
        out_view.st.last = len(steps)
        inp = next(st for st in self.storages if st.pinned)
        inp.first = -1
        # logical peak and the arena: walk the steps, allocate at first write (best fit
        # among free physical buffers), free after last read
        physical: list[list] = []  # [size_bytes, buffer index, busy]
        by_first: dict[int, list] = {}
        by_last: dict[int, list] = {}
        for st in self.storages:
            if st.pinned or st.first is None:
                continue
            by_first.setdefault(st.first, []).append(st)
            by_last.setdefault(max(st.last, st.first), []).append(st)
        assign: dict = {}
        live = inp.nbytes
        peak = live
        for i in range(len(steps)):
            for st in by_first.get(i, []):
                free = [p for p in physical if not p[2] and p[0] >= st.nbytes]
                slot = min(free, key=lambda p: p[0]) if free else None
                if slot is None:
                    slot = [st.nbytes, len(physical), True]
                    physical.append(slot)
                slot[2] = True
                assign[st] = slot
                live += st.nbytes
            peak = max(peak, live)
            for st in by_last.get(i, []):
                if st.last < len(steps):
                    assign[st][2] = False
                    live -= st.nbytes
        bufs = [self.rt.pool.acquire(p[0]) for p in physical]
        inp.buf = self.rt.pool.acquire(inp.nbytes)
        for st, slot in assign.items():
            st.buf = bufs[slot[1]]
        for st in self.storages:  # never written (dead) storages still need a buffer
            if st.buf is None:
                st.buf = inp.buf if st.pinned else self._dummy_buf()
        for s in steps:
            s.kernel = self.rt.kernel(s.file, s.kernel_name, s.defines)
            s.kernel.set_args(*expand_args(s.args))
            s.local = self.tuner.local_size(s.tuning_key(), s.kernel, s.global_size,
                                            s.candidates)
            s.gsize = round_up(s.global_size, s.local)
        naive = inp.nbytes + sum(4 * math.prod(shape4(n.meta["tensor_meta"].shape))
                                 for n in self.g.nodes
                                 if n.op in ("call_module", "call_function", "call_method"))
        mem = MemoryReport(inp.nbytes, sum(p[0] for p in physical), self.weight_bytes, peak,
                           naive)
        cm = CompiledModule(self.rt, steps, self.vals[next(
            n for n in self.g.nodes if n.op == "placeholder")], out_view, tuple(out_shape),
            mem, self.weights, bufs + [inp.buf])
        return cm


def _propagate_shapes(gm: fx.GraphModule, input_shape: tuple) -> None:
    """Annotates every node with ``meta["tensor_meta"]`` by one real forward pass on a
    random input. It runs single-threaded: on a busy machine (or next to PoCL's worker
    threads) torch's OpenMP team can take seconds per pass, one thread does not."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.randn(input_shape))
    finally:
        torch.set_num_threads(threads)


class _Wrap(nn.Module):
    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


def compile_module(module: nn.Module, input_shape: tuple, runtime: Runtime | None = None,
                   tuner: Tuner | None = None) -> CompiledModule:
    """Returns ``module`` (switched to eval mode) compiled for ``runtime``'s device
    (default: OpenCL device 0:0) at ``input_shape`` (NCHW). Raises
    :class:`UnsupportedLayerError` naming the node for anything it cannot run."""
    module.eval()
    rt = runtime or Runtime()
    return _Compiler(rt, module, input_shape, tuner).compile()
