"""Lowering of a traced, fusion-analysed module's layers to OpenCL kernel launches.

:class:`Lowering` holds what the compiler of :mod:`kernels.executor` builds: the value
(a strided :class:`~kernels.plan.View`) of every fx node, the logical storages, the
uploaded weights and the list of :class:`~kernels.plan.Step` launches. Its methods turn
one layer into views (slicing, flatten) or into one launch, choosing the kernel:
1x1 convolutions -> ``conv_pw`` (register-tiled GEMM), depthwise -> ``conv_dw``, other
convolutions on unit-stride rows -> ``conv_direct`` (vectorised along output columns),
anything else -> ``conv_general``; BatchNorm folded into the convolution, ReLU and the
addend of ``a + b`` fused as :class:`~kernels.fusion.FusionGraph` decided. Each launch
carries the work-group sizes the tuner may choose from.
"""

from __future__ import annotations

import math

import numpy as np
from torch import nn

from .fusion import FusionGraph
from .plan import (
    GUARD,
    FullArg,
    NArg,
    NCArg,
    Step,
    Storage,
    UnsupportedLayerError,
    View,
    contiguous_strides,
    shape4,
)
from .runtime import Runtime

PW_VW = 16  # pixels per work-item of the pointwise GEMM (one AVX-512 register)
PW_TM = 8   # output channels per work-item of the pointwise GEMM (8 vector accumulators)
GEN_TM = 4  # output channels per work-item of conv_general


def node_where(node) -> str:
    """Returns how error messages name ``node``: its module path (and node name)."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.keys())[-1]
        return f"{path} ({node.name})" if path else node.name
    return node.name


class Lowering:
    """The values, storages, weights and launches of one module being compiled, and
    the lowering of its layers; ``g`` is the module's :class:`FusionGraph`."""

    g: FusionGraph

    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.steps: list[Step] = []
        self.vals: dict = {}
        self.storages: list[Storage] = []
        self.cat_storage: dict = {}
        self.weights: list = []
        self.weight_bytes = 0
        self._dummy = None

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
                f"{node_where(node)}: only slicing with ':' ranges is supported in indexing")
        shape, strides, off = list(x.shape), list(x.strides), x.off
        for d, s in enumerate(idx):
            start, stop, step = s.indices(shape[d])
            if step <= 0:
                raise UnsupportedLayerError(f"{node_where(node)}: negative slice steps")
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
            raise UnsupportedLayerError(f"{node_where(node)}: only flatten(1) of NCHW is supported")
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
            step = Step(node_where(node), "eltwise_vec.cl", "affine_vec", defines, gsz,
                        _plane_candidates(gsz), [NCArg(x), s, t, NCArg(out), np.int32(c),
                                                 np.int32(h * w)], [x], out)
        else:
            step = Step(node_where(node), "eltwise.cl", "affine", defines, (w, h, n * c),
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
            raise UnsupportedLayerError(f"{node_where(node)}: internal: lazy ReLU into add")
        n, c, h, w = out.shape
        if a.pixel_contiguous() and b.pixel_contiguous() and out.pixel_contiguous():
            gsz = (-(-h * w // 16), n * c)
            step = Step(node_where(node), "eltwise_vec.cl", "add2_vec", {}, gsz,
                        _plane_candidates(gsz), [NCArg(a), NCArg(b), NCArg(out), np.int32(c),
                                                 np.int32(h * w)], [a, b], out)
        else:
            step = Step(node_where(node), "eltwise.cl", "add2", {}, (w, h, n * c),
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
                f"{node_where(node)}: torch.cat is supported along the channel dimension only")
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
                node_where(node), "pool.cl", "pool2d_vec",
                {"IS_MAX": int(is_max), "KH": kh, "KW": kw, "SW": sw, "DW": dw, "VW": vw},
                gsz, _dw_candidates(gsz), [FullArg(x), NCArg(out)] + ints, [x], out,
                flops=n * c * oh * ow * kh * kw))
            self.vals[node] = out
            return
        ints = [np.int32(v) for v in (c, h, w, oh, ow, sh, sw, ph, pw, dh, dw, cip)]
        self._add_step(Step(
            node_where(node), "pool.cl", "pool2d", {"IS_MAX": int(is_max), "KH": kh, "KW": kw},
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
            node_where(node), "adaptive_avg.cl", "adaptive_avg", {}, (n * c, oh * ow),
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
            node_where(node), "eltwise.cl", "linear", {"PRE_RELU": int(x.relu)}, (o, n),
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
            scale, shift = bn_affine(bn[0])
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
        name = node_where(conv)
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


def bn_affine(m: nn.BatchNorm2d):
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
