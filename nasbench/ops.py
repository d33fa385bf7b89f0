"""The operation registry: the one place where an operation's name, constructor and
shape rule live.

The DARTS search network, the derived (evaluation) network, the LUT enumerator and the
OpenCL executor all read :data:`OPS`. An operation is registered with one decorator,
in the style of timm's model registry::

    @register_op("sep_conv_3x3", group="sep_conv", add_epilogue=True)
    def sep_conv_3x3(c_in, c_out, stride, affine=True):
        return SepConv(c_in, c_out, 3, stride, 1, affine=affine)

An op belongs to no space: a search space (:mod:`nasbench.spaces`) lists the op names it
uses, so one op (``gap_linear``, ``skip_connect``...) serves several spaces. ``group`` is
the op's family (``sep_conv``, ``dil_conv``, ``pool``, ``skip``, ``mbconv``, ``conv``,
``fixed``...), which the LUT calibration reads as its features.

Module definitions follow the DARTS paper's reference code (Liu et al., ICLR 2019).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

# --------------------------------------------------------------------------------------
# Building blocks (the DARTS paper's definitions)
# --------------------------------------------------------------------------------------


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, dilation, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride, padding, dilation=dilation,
                      groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked (ReLU -> depthwise -> pointwise -> BN) blocks; the first one strides."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, 1, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class Identity(nn.Module):
    """Returns its input."""

    def forward(self, x):
        return x


class Zero(nn.Module):
    """The `none` op: a zero tensor of the (strided) input's shape."""

    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halves H and W with two offset strided 1x1 convs whose outputs are concatenated."""

    def __init__(self, c_in, c_out, affine=True):
        super().__init__()
        assert c_out % 2 == 0, "FactorizedReduce needs an even number of output channels"
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


class GlobalPoolClassifier(nn.Module):
    """The head of the CIFAR networks: global average pooling, flatten, linear."""

    def __init__(self, c_in, num_classes):
        super().__init__()
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x):
        return self.classifier(self.global_pooling(x).flatten(1))


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------


def same_or_strided(c_in: int, c_out: int, h: int, w: int, stride: int) -> tuple[int, int, int]:
    """Shape rule of 'same'-padded ops: returns (C_out, ceil(H/stride), ceil(W/stride))."""
    return c_out, -(-h // stride), -(-w // stride)


def pooled_to_vector(c_in: int, c_out: int, h: int, w: int, stride: int) -> tuple[int, int, int]:
    """Shape rule of the classifier head: returns (num_classes, 1, 1)."""
    return c_out, 1, 1


@dataclass(frozen=True)
class OpSpec:
    """One registered operation.

    ``build(c_in, c_out, stride, affine=True)`` returns the module; ``shape(c_in, c_out,
    h, w, stride)`` returns the output (C, H, W) for an input (c_in, h, w). ``kind`` is
    ``"primitive"`` for candidate ops a searcher chooses between and ``"fixed"`` for the
    parts every network of a space carries (stem, preprocessing, head); ``group`` is the
    op's family (calibration feature, e.g. ``sep_conv``, ``pool``, ``mbconv``; ``fixed``
    for fixed parts unless given). ``add_epilogue``
    says the op ends in a convolution + BatchNorm, into which a fusing backend (the
    OpenCL executor) folds the sum the op's output feeds.
    """

    name: str
    kind: str
    group: str
    build: Callable[..., nn.Module]
    shape: Callable[[int, int, int, int, int], tuple[int, int, int]] = same_or_strided
    description: str = ""
    add_epilogue: bool = False


OPS: dict[str, OpSpec] = {}


def register_op(name: str, *, kind: str = "primitive", group: str | None = None,
                shape: Callable = same_or_strided, add_epilogue: bool = False):
    """Decorator that registers a builder under ``name``; returns the builder unchanged.
    ``group`` defaults to ``fixed`` for fixed parts and to the name for primitives."""

    if kind not in ("primitive", "fixed"):
        raise ValueError(f"kind must be 'primitive' or 'fixed', not {kind!r}")

    def decorate(fn):
        if name in OPS:
            raise ValueError(f"operation {name!r} is already registered")
        g = group or ("fixed" if kind == "fixed" else name)
        OPS[name] = OpSpec(name, kind, g, fn, shape, (fn.__doc__ or "").strip(),
                           add_epilogue)
        return fn

    return decorate


def op_group(op: str) -> str:
    """Returns the family of a registered op (``sep_conv``, ``pool``...); ``fixed`` for
    the fixed parts (stem, preprocessing, head) and for unknown names."""
    return OPS[op].group if op in OPS else "fixed"


def build_op(name: str, c_in: int, c_out: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """Returns a new module for the registered op ``name``."""
    try:
        spec = OPS[name]
    except KeyError:
        raise KeyError(f"unknown operation {name!r}; known: {', '.join(OPS)}") from None
    return spec.build(c_in, c_out, stride, affine=affine)


# ---- DARTS primitives (order is the DARTS code's PRIMITIVES order) ----------------------


@register_op("none", group="skip")
def _none(c_in, c_out, stride, affine=True):
    """Zero: the edge is absent."""
    return Zero(stride)


@register_op("max_pool_3x3", group="pool")
def _max_pool_3x3(c_in, c_out, stride, affine=True):
    """3x3 max pooling, padding 1."""
    return nn.MaxPool2d(3, stride=stride, padding=1)


@register_op("avg_pool_3x3", group="pool")
def _avg_pool_3x3(c_in, c_out, stride, affine=True):
    """3x3 average pooling, padding 1, padding excluded from the mean."""
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


@register_op("skip_connect", group="skip")
def _skip_connect(c_in, c_out, stride, affine=True):
    """Identity, or FactorizedReduce when the edge strides."""
    return Identity() if stride == 1 else FactorizedReduce(c_in, c_out, affine=affine)


@register_op("sep_conv_3x3", group="sep_conv", add_epilogue=True)
def _sep_conv_3x3(c_in, c_out, stride, affine=True):
    """Separable 3x3 convolution applied twice."""
    return SepConv(c_in, c_out, 3, stride, 1, affine=affine)


@register_op("sep_conv_5x5", group="sep_conv", add_epilogue=True)
def _sep_conv_5x5(c_in, c_out, stride, affine=True):
    """Separable 5x5 convolution applied twice."""
    return SepConv(c_in, c_out, 5, stride, 2, affine=affine)


@register_op("dil_conv_3x3", group="dil_conv", add_epilogue=True)
def _dil_conv_3x3(c_in, c_out, stride, affine=True):
    """Dilated (2) separable 3x3 convolution (5x5 receptive field)."""
    return DilConv(c_in, c_out, 3, stride, 2, 2, affine=affine)


@register_op("dil_conv_5x5", group="dil_conv", add_epilogue=True)
def _dil_conv_5x5(c_in, c_out, stride, affine=True):
    """Dilated (2) separable 5x5 convolution (9x9 receptive field)."""
    return DilConv(c_in, c_out, 5, stride, 4, 2, affine=affine)


# ---- fixed parts of the DARTS networks ------------------------------------------------


@register_op("stem", kind="fixed")
def _stem(c_in, c_out, stride, affine=True):
    """CIFAR stem: 3x3 conv (no bias) + BN."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out))


@register_op("relu_conv_bn_1x1", kind="fixed")
def _preprocess(c_in, c_out, stride, affine=True):
    """Cell input preprocessing: ReLU -> 1x1 conv -> BN."""
    return ReLUConvBN(c_in, c_out, 1, stride, 0, affine=affine)


@register_op("factorized_reduce", kind="fixed",
             shape=lambda c_in, c_out, h, w, s: (c_out, -(-h // 2), -(-w // 2)))
def _factorized_reduce(c_in, c_out, stride, affine=True):
    """Cell input preprocessing after a reduction cell: halves H and W."""
    return FactorizedReduce(c_in, c_out, affine=affine)


class NodeSum(nn.Module):
    """A cell node's sum ``h1 + h2``, measurable on its own: its input stacks the two
    operands on the channel axis (two distinct tensors, as in the cell)."""

    def __init__(self, c: int):
        super().__init__()
        self.c = c

    def forward(self, x):
        return x[:, :self.c] + x[:, self.c:]


@register_op("node_add", kind="fixed",
             shape=lambda c_in, c_out, h, w, s: (c_out, h, w))
def _node_add(c_in, c_out, stride, affine=True):
    """A cell node's sum of its two edges (c_in = 2 c_out: both operands stacked)."""
    return NodeSum(c_out)


@register_op("gap_linear", kind="fixed", shape=pooled_to_vector)
def _head(c_in, c_out, stride, affine=True):
    """Head: global average pooling and the linear classifier (c_out = classes)."""
    return GlobalPoolClassifier(c_in, c_out)


#: the DARTS space's candidates, in the DARTS code's PRIMITIVES order
PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


# --------------------------------------------------------------------------------------
# ProxylessNAS space (Cai et al., ICLR 2019)
# --------------------------------------------------------------------------------------
#
# Every searchable block chooses among MBConv (inverted residual) with kernel 3/5/7 and
# expansion 3/6, plus ``zero`` (skip the block) where the block has an identity
# shortcut. The identity shortcut lives inside the registered module: an MBConv built
# with stride 1 and c_in == c_out adds its input (and ``zero`` returns it), so the module
# the LUT measures is the whole block, residual add included, exactly what the derived
# network runs. This matches the ``idskip:1`` entries of the ProxylessNAS latency tables,
# which time the block with its skip connection.

from functools import partial  # noqa: E402

from torchvision.ops.misc import Conv2dNormActivation  # noqa: E402

#: registered MBConv op name -> (kernel size, expansion ratio)
MBCONV_OPS: dict[str, tuple[int, int]] = {}


def _bn(affine: bool):
    return partial(nn.BatchNorm2d, affine=affine)


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2 / ProxylessNAS ``MBInvertedConvLayer``):
    1x1 expand -> BN -> ReLU6 (absent when ``expand == 1``), kxk depthwise (stride) -> BN
    -> ReLU6, 1x1 linear projection -> BN; the input is added to the output when the
    block keeps its shape (stride 1 and c_in == c_out: the identity shortcut)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int,
                 affine: bool = True):
        super().__init__()
        mid = round(c_in * expand)
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(Conv2dNormActivation(c_in, mid, 1, norm_layer=_bn(affine),
                                               activation_layer=nn.ReLU6))
        layers.append(Conv2dNormActivation(mid, mid, kernel, stride, groups=mid,
                                           norm_layer=_bn(affine), activation_layer=nn.ReLU6))
        layers.append(Conv2dNormActivation(mid, c_out, 1, norm_layer=_bn(affine),
                                           activation_layer=None))
        self.conv = nn.Sequential(*layers)
        self.kernel, self.stride, self.expand = kernel, stride, expand
        self.identity = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.identity else y


class SkipBlock(nn.Module):
    """The ProxylessNAS ``zero`` candidate: the block is skipped, its input passes through
    (the identity shortcut alone). The space places it only where the shortcut exists
    (stride 1, c_in == c_out); a strided copy subsamples, for completeness only."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]


def _register_mbconv(kernel: int, expand: int, kind: str = "primitive") -> None:
    name = f"mb_k{kernel}_e{expand}"
    MBCONV_OPS[name] = (kernel, expand)

    def build(c_in, c_out, stride, affine=True):
        return MBConv(c_in, c_out, kernel, stride, expand, affine=affine)

    build.__doc__ = (f"MBConv: {kernel}x{kernel} depthwise, expansion {expand}, identity "
                     f"shortcut when stride 1 and c_in == c_out.")
    # a fixed part's family is "fixed" (the first block is not a candidate)
    register_op(name, kind=kind, group="mbconv" if kind == "primitive" else None)(build)


# candidate order is the ProxylessNAS code's: 3x3_MBConv3, 3x3_MBConv6, 5x5..., 7x7...
for _k in (3, 5, 7):
    for _e in (3, 6):
        _register_mbconv(_k, _e)


@register_op("zero", group="skip")
def _zero_block(c_in, c_out, stride, affine=True):
    """Zero: skip the block (only where it has an identity shortcut)."""
    if c_in != c_out:
        raise ValueError(f"'zero' needs c_in == c_out (the identity shortcut), got "
                         f"{c_in} -> {c_out}")
    return SkipBlock(stride)


# ---- fixed parts of the ProxylessNAS networks ------------------------------------------


@register_op("px_stem", kind="fixed")
def _px_stem(c_in, c_out, stride, affine=True):
    """ProxylessNAS first conv: 3x3 conv (stride 2 at 224x224, 1 at 32x32) -> BN -> ReLU6."""
    return Conv2dNormActivation(c_in, c_out, 3, stride, norm_layer=_bn(affine),
                                activation_layer=nn.ReLU6)


_register_mbconv(3, 1, kind="fixed")     # the first block: MBConv k3 e1, not searched


@register_op("px_feature_mix", kind="fixed")
def _px_feature_mix(c_in, c_out, stride, affine=True):
    """ProxylessNAS feature mix layer: 1x1 conv to the feature width -> BN -> ReLU6 (the
    classifier after it is ``gap_linear``)."""
    return Conv2dNormActivation(c_in, c_out, 1, stride, norm_layer=_bn(affine),
                                activation_layer=nn.ReLU6)


#: the ProxylessNAS space's candidates, in the ProxylessNAS code's order
PROXYLESS_PRIMITIVES = [*(f"mb_k{k}_e{e}" for k in (3, 5, 7) for e in (3, 6)), "zero"]


# --------------------------------------------------------------------------------------
# NAS-Bench-201 space (Dong & Yang, ICLR 2020)
# --------------------------------------------------------------------------------------
#
# Its ``none``, ``skip_connect`` and ``avg_pool_3x3`` are the DARTS entries above (the
# same modules: Zero, Identity, 3x3 average pooling without the padding in the mean), as
# is its stem (3x3 conv + BN) and classifier (``gap_linear``).


@register_op("nor_conv_1x1", group="conv")
def _nor_conv_1x1(c_in, c_out, stride, affine=True):
    """ReLU -> 1x1 conv -> BN (NAS-Bench-201)."""
    return ReLUConvBN(c_in, c_out, 1, stride, 0, affine=affine)


@register_op("nor_conv_3x3", group="conv")
def _nor_conv_3x3(c_in, c_out, stride, affine=True):
    """ReLU -> 3x3 conv -> BN (NAS-Bench-201)."""
    return ReLUConvBN(c_in, c_out, 3, stride, 1, affine=affine)


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction between stages: two ReLU-conv3x3-BN (the first strides)
    plus a shortcut (2x2 average pooling and a 1x1 conv when it strides)."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool = True):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1, affine=affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine=affine)
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0),
                                            nn.Conv2d(c_in, c_out, 1, bias=False))
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0, affine=affine)
        else:
            self.downsample = None

    def forward(self, x):
        y = self.conv_b(self.conv_a(x))
        return y + (x if self.downsample is None else self.downsample(x))


@register_op("resnet_block", kind="fixed",
             shape=lambda c_in, c_out, h, w, s: (c_out, h // s, w // s))
def _resnet_block(c_in, c_out, stride, affine=True):
    """NAS-Bench-201 residual basic block between stages (stride 2)."""
    return ResNetBasicBlock(c_in, c_out, stride, affine=affine)


@register_op("bn_relu", kind="fixed")
def _bn_relu(c_in, c_out, stride, affine=True):
    """BatchNorm -> ReLU (NAS-Bench-201's last activation before the classifier)."""
    return nn.Sequential(nn.BatchNorm2d(c_in, affine=affine), nn.ReLU(inplace=False))


#: the NAS-Bench-201 space's candidates, in NAS-Bench-201's order
NB201_PRIMITIVES = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
