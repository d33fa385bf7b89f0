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
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .fusion import FLATTEN_FUNCS, FusionGraph
from .plan import (
    GUARD,
    CompiledModule,
    FullArg,
    MemoryReport,
    NArg,
    NCArg,
    Step,
    Storage,
    UnsupportedLayerError,
    View,
    contiguous_strides,
    expand_args,
    shape4,
)
from .runtime import Runtime, round_up
from .tuning import Tuner

__all__ = ["CompiledModule", "MemoryReport", "UnsupportedLayerError", "compile_module"]

PW_VW = 16  # pixels per work-item of the pointwise GEMM (one AVX-512 register)
PW_TM = 8   # output channels per work-item of the pointwise GEMM (8 vector accumulators)
GEN_TM = 4  # output channels per work-item of conv_general


# ---- the compiler -----------------------------------------------------------------------


def _where(node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.keys())[-1]
        return f"{path} ({node.name})" if path else node.name
    return node.name


def _fn_name(node) -> str:
    t = node.target
    if isinstance(t, str):
        return f"Tensor.{t}"
    return getattr(t, "__qualname__", None) or getattr(t, "__name__", repr(t))


class _Compiler:
    def __init__(self, runtime: Runtime, module: nn.Module, input_shape: tuple,
                 tuner: Tuner | None):
        self.rt = runtime
        self.tuner = tuner or Tuner(runtime, None)
        self.module = module
        self.input_shape = tuple(int(s) for s in input_shape)
        self.steps: list[Step] = []
        self.vals: dict = {}
        self.storages: list[Storage] = []
        self.cat_storage: dict = {}
        self.weights: list = []
        self.weight_bytes = 0
        self._dummy = None

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
                    f"{_where(node)}: produces a non-tensor value ({_fn_name(node)}), "
                    "which the OpenCL executor does not support")
            if tm.dtype != torch.float32:
                raise UnsupportedLayerError(
                    f"{_where(node)}: dtype {tm.dtype} is not supported (float32 only)")
            if len(tm.shape) not in (2, 4):
                raise UnsupportedLayerError(
                    f"{_where(node)}: rank-{len(tm.shape)} tensors are not supported "
                    "(NCHW or (N, F) only)")

    # -- storage helpers --
    def _new_view(self, node, shape, name=None) -> View:
        s4 = shape4(shape)
        st = Storage(math.prod(s4), name or node.name)
        self.storages.append(st)
        return View(st, GUARD, s4, contiguous_strides(s4), rank=len(shape))

    def _out_view(self, node) -> View:
        """Returns where ``node``'s producer writes: its concat slice or a new storage."""
        shape = self.g.shape(node)
        slot = self.g.cat_slot.get(node)
        if slot is None:
            return self._new_view(node, shape)
        cat, off = slot
        full = self._cat_view(cat)
        n, c, h, w = full.shape
        return View(full.st, full.off + off * h * w, shape4(shape), full.strides,
                    rank=len(shape))

    def _cat_view(self, cat) -> View:
        if cat not in self.cat_storage:
            self.cat_storage[cat] = self._new_view(cat, self.g.shape(cat))
        return self.cat_storage[cat]

    def _weight(self, arr) -> object:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        buf = self.rt.upload(arr)
        self.weights.append(buf)
        self.weight_bytes += max(arr.nbytes, 4)
        return buf

    def _dummy_buf(self):
        if self._dummy is None:
            self._dummy = self._weight(np.zeros(1, np.float32))
        return self._dummy

    def _add_step(self, step: Step) -> None:
        self.steps.append(step)

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
            scale, shift = _bn_affine(m)
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
                    f"{_where(node)}: only multiplication by a Python scalar is supported")
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
                f"{_where(node)}: function {_fn_name(node)} is not supported by the "
                "OpenCL executor")

    # -- views --
    def _getitem(self, node) -> None:
        x = self.vals[node.args[0]]
        idx = node.args[1]
        idx = idx if isinstance(idx, tuple) else (idx,)
        if Ellipsis in idx:
            i = idx.index(Ellipsis)
            idx = idx[:i] + (slice(None),) * (x.rank - len(idx) + 1) + idx[i + 1:]
        if len(idx) > x.rank or not all(isinstance(s, slice) for s in idx):
            raise UnsupportedLayerError(
                f"{_where(node)}: only slicing with ':' ranges is supported in indexing")
        shape, strides, off = list(x.shape), list(x.strides), x.off
        for d, s in enumerate(idx):
            start, stop, step = s.indices(shape[d])
            if step <= 0:
                raise UnsupportedLayerError(f"{_where(node)}: negative slice steps")
            off += start * strides[d]
            shape[d] = len(range(start, stop, step))
            strides[d] *= step
        if x.rank == 2:
            shape, strides = shape[:2] + [1, 1], strides[:2] + [1, 1]
        self.vals[node] = View(x.st, off, tuple(shape), tuple(strides), x.rank, x.relu)
        assert shape4(self.g.shape(node)) == tuple(shape)

    def _flatten(self, node, x: View, start, end) -> None:
        rank = x.rank
        start, end = start % rank, end % rank
        if rank == 2 or start == end:
            self.vals[node] = x
            return
        if (start, end) != (1, 3):
            raise UnsupportedLayerError(f"{_where(node)}: only flatten(1) of NCHW is supported")
        n, c, h, w = x.shape
        sn, sc, sh, sw = x.strides
        if x.relu or not ((w == 1 or sw == 1) and (h == 1 or sh == w)
                          and (c == 1 or sc == h * w)):
            x = self._copy(node, x)
            sn = x.strides[0]
        self.vals[node] = View(x.st, x.off, (n, c * h * w, 1, 1), (sn, 1, 1, 1), rank=2)

    # -- elementwise / pooling / linear --
    def _affine(self, node, x: View, scale, shift, post_relu: bool, out: View | None = None):
        out = out or self._out_view(node)
        s = self._weight(np.asarray(scale, np.float32))
        t = self._weight(np.asarray(shift, np.float32))
        n, c, h, w = out.shape
        defines = {"PRE_RELU": int(x.relu), "POST_RELU": int(post_relu)}
        if x.pixel_contiguous() and out.pixel_contiguous():
            gsz = (-(-h * w // 16), n * c)
            step = Step(_where(node), "eltwise_vec.cl", "affine_vec", defines, gsz,
                        _plane_candidates(gsz), [NCArg(x), s, t, NCArg(out), np.int32(c),
                                                 np.int32(h * w)], [x], out)
        else:
            step = Step(_where(node), "eltwise.cl", "affine", defines, (w, h, n * c),
                        _elt_candidates(w, h), [FullArg(x), s, t, FullArg(out), np.int32(c),
                                                np.int32(h), np.int32(w)], [x], out)
        self._add_step(step)
        self.vals[node] = out
        return out

    def _copy(self, node, x: View) -> View:
        c = x.shape[1]
        out = self._new_view(node, x.shape, name=f"{node.name}_copy")
        out.rank = x.rank
        v = self._affine(node, x, np.ones(c), np.zeros(c), post_relu=False, out=out)
        return v

    def _relu(self, node, x: View) -> None:
        if node in self.g.lazy_relu:
            self.vals[node] = View(x.st, x.off, x.shape, x.strides, x.rank, relu=True)
            return
        c = x.shape[1]
        self._affine(node, x, np.ones(c), np.zeros(c), post_relu=True)

    def _scale(self, node, x: View, alpha: float) -> None:
        c = x.shape[1]
        self._affine(node, x, np.full(c, alpha), np.zeros(c), post_relu=False)

    def _add(self, node, a: View, b: View, out: View | None = None) -> None:
        out = out or self._out_view(node)
        if a.relu or b.relu:
            raise UnsupportedLayerError(f"{_where(node)}: internal: lazy ReLU into add")
        n, c, h, w = out.shape
        if a.pixel_contiguous() and b.pixel_contiguous() and out.pixel_contiguous():
            gsz = (-(-h * w // 16), n * c)
            step = Step(_where(node), "eltwise_vec.cl", "add2_vec", {}, gsz,
                        _plane_candidates(gsz), [NCArg(a), NCArg(b), NCArg(out), np.int32(c),
                                                 np.int32(h * w)], [a, b], out)
        else:
            step = Step(_where(node), "eltwise.cl", "add2", {}, (w, h, n * c),
                        _elt_candidates(w, h), [FullArg(a), FullArg(b), FullArg(out),
                                                np.int32(c), np.int32(h), np.int32(w)],
                        [a, b], out)
        self._add_step(step)
        self.vals[node] = out

    def _cat(self, node) -> None:
        full = self._cat_view(node)
        n, c, h, w = full.shape
        off = 0
        for m in node.args[0]:
            mc = self.g.shape(m)[1]
            if self.g.cat_slot.get(m, (None,))[0] is not node:  # not written in place
                src = self.vals[m]
                dst = View(full.st, full.off + off * h * w, (n, mc, h, w), full.strides,
                           full.rank)
                self._affine(node, src, np.ones(mc), np.zeros(mc), False, out=dst)
            off += mc
        if self.g.cat_dim(node) != 1:
            raise UnsupportedLayerError(
                f"{_where(node)}: torch.cat is supported along the channel dimension only")
        self.vals[node] = full

    def _pool(self, node, m, x: View) -> None:
        is_max = isinstance(m, nn.MaxPool2d)
        if is_max and m.return_indices:
            raise UnsupportedLayerError(f"{node.target}: MaxPool2d(return_indices=True)")
        if not is_max and m.divisor_override:
            raise UnsupportedLayerError(f"{node.target}: AvgPool2d(divisor_override)")
        kh, kw = _pair(m.kernel_size)
        sh, sw = _pair(m.stride if m.stride else m.kernel_size)
        ph, pw = _pair(m.padding)
        dh, dw = _pair(m.dilation) if is_max else (1, 1)
        cip = 0 if is_max else int(m.count_include_pad)
        out = self._out_view(node)
        n, c, oh, ow = out.shape
        _, _, h, w = x.shape
        if x.strides[3] == 1 and sw in (1, 2):  # the common case: vector kernel
            vw = 16 if ow > 8 else 8
            ints = [np.int32(v) for v in (c, h, w, oh, ow, sh, ph, pw, dh, cip)]
            gsz = (-(-ow // vw), oh, n * c)
            self._add_step(Step(
                _where(node), "pool.cl", "pool2d_vec",
                {"IS_MAX": int(is_max), "KH": kh, "KW": kw, "SW": sw, "DW": dw, "VW": vw},
                gsz, _dw_candidates(gsz), [FullArg(x), NCArg(out)] + ints, [x], out,
                flops=n * c * oh * ow * kh * kw))
            self.vals[node] = out
            return
        ints = [np.int32(v) for v in (c, h, w, oh, ow, sh, sw, ph, pw, dh, dw, cip)]
        self._add_step(Step(
            _where(node), "pool.cl", "pool2d", {"IS_MAX": int(is_max), "KH": kh, "KW": kw},
            (ow, oh, n * c),
            _elt_candidates(ow, oh), [FullArg(x), NCArg(out)] + ints, [x], out,
            flops=n * c * oh * ow * kh * kw))
        self.vals[node] = out

    def _adaptive_avg(self, node, x: View) -> None:
        out = self._out_view(node)
        n, c, oh, ow = out.shape
        _, _, h, w = x.shape
        ints = [np.int32(v) for v in (n * c, c, h, w, oh, ow)]
        self._add_step(Step(
            _where(node), "adaptive_avg.cl", "adaptive_avg", {}, (n * c, oh * ow),
            [(min(64, n * c), 1)], [FullArg(x), NCArg(out)] + ints, [x], out,
            flops=n * c * h * w))
        self.vals[node] = out

    def _linear(self, node, m: nn.Linear, x: View) -> None:
        if x.rank != 2:
            raise UnsupportedLayerError(f"{node.target}: nn.Linear on a rank-4 tensor")
        if x.strides[1] != 1:
            x = self._copy(node, x)
        out = self._out_view(node)
        n, o = out.shape[:2]
        k = x.shape[1]
        wbuf = self._weight(m.weight.detach().cpu().numpy())
        bias = m.bias.detach().cpu().numpy() if m.bias is not None else np.zeros(o)
        self._add_step(Step(
            _where(node), "eltwise.cl", "linear", {"PRE_RELU": int(x.relu)}, (o, n),
            [(min(o, 16), 1)],
            [NArg(x), wbuf, self._weight(bias), NArg(out), np.int32(k), np.int32(o)], [x], out,
            flops=2 * n * o * k))
        self.vals[node] = out

    # -- convolutions --
    def _emit_conv_group(self, conv) -> None:
        g = self.g
        m: nn.Conv2d = g.mod(conv)
        end = g.group_end[conv]
        x = self.vals[conv.args[0]]
        if m.padding_mode != "zeros":
            raise UnsupportedLayerError(f"{conv.target}: padding_mode={m.padding_mode!r}")
        wt = m.weight.detach().cpu().double().numpy()
        bias = (m.bias.detach().cpu().double().numpy() if m.bias is not None
                else np.zeros(wt.shape[0]))
        bn = None
        for b, c in g.bn_into.items():
            if c is conv:
                bn = (g.mod(b), 0)
        if conv in g.bn_slice:
            bn = g.bn_slice[conv]
        if bn is not None:  # fold: y = (conv + b - mean) * s + beta
            scale, shift = _bn_affine(bn[0])
            sl = slice(bn[1], bn[1] + wt.shape[0])
            wt = wt * scale[sl, None, None, None]
            bias = bias * scale[sl] + shift[sl]
        add, other, addend = None, None, None
        if conv in g.add_of:
            add, src = g.add_of[conv]
            other = add.args[1] if add.args[0] is src else add.args[0]
            addend = self.vals[other]
            if not addend.pixel_contiguous() or addend.relu:
                addend = None
        out = self._out_view(end)
        post = conv in g.post_relu
        if add is not None and addend is None:  # cannot fuse: conv to a temp, then add
            tmp = self._new_view(conv, g.shape(conv), name=f"{conv.name}_pre_add")
            self._conv_step(conv, m, x, wt, bias, post, None, tmp)
            self._add(end, tmp, self.vals[other], out=out)
        else:
            self._conv_step(conv, m, x, wt, bias, post, addend, out)
        self.vals[end] = out

    def _conv_step(self, conv, m, x: View, wt, bias, post: bool, addend, out: View) -> None:
        n, cout, oh, ow = out.shape
        _, cin, h, w = x.shape
        kh, kw = m.kernel_size
        sh, sw = m.stride
        dh, dw = m.dilation
        groups = m.groups
        if isinstance(m.padding, str):  # 'valid' or 'same' (stride 1)
            ph, pw = ((0, 0) if m.padding == "valid"
                      else (dh * (kh - 1) // 2, dw * (kw - 1) // 2))
        else:
            ph, pw = m.padding
        defines = {"PRE_RELU": int(x.relu), "POST_RELU": int(post),
                   "HAS_ADD": int(addend is not None)}
        r = addend if addend is not None else None
        r_args = [NCArg(r)] if r is not None else [self._dummy_buf(), np.int32(0), np.int32(0),
                                                   np.int32(0)]
        reads = [x] + ([r] if r is not None else [])
        macs = n * cout * oh * ow * (cin // groups) * kh * kw
        name = _where(conv)
        if groups == 1 and (kh, kw) == (1, 1) and (ph, pw) == (0, 0) and sh == sw \
                and (dh, dw) == (1, 1):
            mp = -(-cout // PW_TM) * PW_TM
            wt_t = np.zeros((cin, mp), np.float32)
            wt_t[:, :cout] = wt.reshape(cout, cin).T
            contig = int(sh == 1 and x.pixel_contiguous())
            defines.update(VW=PW_VW, TM=PW_TM, CONTIG=contig)
            ints = [np.int32(v) for v in (cin, cout, mp, oh, ow, sh)]
            gsz = (-(-oh * ow // PW_VW), mp // PW_TM, n)
            step = Step(name, "conv_pw.cl", "conv_pw", defines, gsz, _pw_candidates(gsz),
                        [FullArg(x), self._weight(wt_t), self._weight(bias), NCArg(out)] + r_args
                        + ints, reads, out, flops=2 * macs)
        elif groups == cin == cout:
            vw = 16 if ow > 8 else 8
            defines.update(KH=kh, KW=kw, STRIDE=sh, DIL=dh, VW=vw)
            if sh != sw or dh != dw:
                raise UnsupportedLayerError(
                    f"{conv.target}: depthwise conv with unequal strides/dilations")
            ints = [np.int32(v) for v in (cin, h, w, oh, ow, ph, pw)]
            gsz = (-(-ow // vw), oh, n * cout)
            step = Step(name, "conv_dw.cl", "conv_dw", defines, gsz, _dw_candidates(gsz),
                        [FullArg(x), self._weight(wt.reshape(cout, kh * kw)),
                         self._weight(bias), NCArg(out)] + r_args + ints, reads, out,
                        flops=2 * macs)
        else:
            cig, cog = cin // groups, cout // groups
            # wt[g, ci, kh, kw, oc] so the TM output channels of one tap are contiguous
            w5 = wt.reshape(groups, cog, cig, kh, kw).transpose(0, 2, 3, 4, 1)
            wargs = [self._weight(w5), self._weight(bias), NCArg(out)] + r_args
            if x.strides[3] == 1 and sw in (1, 2):  # vectorised along output columns
                tm = next(t for t in (8, 4, 2, 1) if cog % t == 0)
                vw = 16 if ow > 8 else 8
                defines.update(KH=kh, KW=kw, TM=tm, SW=sw, VW=vw)
                ints = [np.int32(v) for v in (h, w, oh, ow, cig, cog, cout, sh, ph, pw, dh, dw,
                                              cout // tm)]
                gsz = (-(-ow // vw), oh, n * (cout // tm))
                step = Step(name, "conv_direct.cl", "conv_direct", defines, gsz,
                            _dw_candidates(gsz), [FullArg(x)] + wargs + ints, reads, out,
                            flops=2 * macs)
            else:
                tm = GEN_TM if cog % GEN_TM == 0 else 1
                defines.update(KH=kh, KW=kw, TM=tm)
                ints = [np.int32(v) for v in (h, w, oh, ow, cig, cog, cout, sh, sw, ph, pw, dh,
                                              dw)]
                gsz = (oh * ow, cout // tm, n)
                step = Step(name, "conv_general.cl", "conv_general", defines, gsz,
                            [(min(64, oh * ow), 1, 1)], [FullArg(x)] + wargs + ints, reads,
                            out, flops=2 * macs)
        self._add_step(step)

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


def _bn_affine(m: nn.BatchNorm2d):
    """Returns (scale, shift) float64 arrays with bn(x) = x * scale + shift (inference)."""
    var = m.running_var.detach().cpu().double().numpy()
    mean = m.running_mean.detach().cpu().double().numpy()
    gamma = (m.weight.detach().cpu().double().numpy() if m.weight is not None
             else np.ones_like(var))
    beta = m.bias.detach().cpu().double().numpy() if m.bias is not None else np.zeros_like(var)
    scale = gamma / np.sqrt(var + m.eps)
    return scale, beta - mean * scale


def _pair(v) -> tuple:
    return (v, v) if isinstance(v, int) else tuple(v)


def _elt_candidates(w: int, h: int) -> list:
    # PoCL vectorises across work-items of dimension 0, so whole rows go in one group
    w0 = min(w, 64)
    return [(w0, max(1, min(h, 64 // w0)), 1), (w0, 1, 1), (w0, min(h, 256 // w0 or 1), 1)]


def _plane_candidates(gsz) -> list:
    return [(min(gsz[0], 16), 1), (gsz[0], 1), (1, 1)]


def _pw_candidates(gsz) -> list:
    return [(1, 1, 1), (min(gsz[0], 4), 1, 1), (1, min(gsz[1], 4), 1)]


def _dw_candidates(gsz) -> list:
    return [(gsz[0], min(gsz[1], 8), 1), (gsz[0], 1, 1), (gsz[0], gsz[1], 1)]


def compile_module(module: nn.Module, input_shape: tuple, runtime: Runtime | None = None,
                   tuner: Tuner | None = None) -> CompiledModule:
    """Returns ``module`` (switched to eval mode) compiled for ``runtime``'s device
    (default: OpenCL device 0:0) at ``input_shape`` (NCHW). Raises
    :class:`UnsupportedLayerError` naming the node for anything it cannot run."""
    module.eval()
    rt = runtime or Runtime()
    return _Compiler(rt, module, input_shape, tuner).compile()
