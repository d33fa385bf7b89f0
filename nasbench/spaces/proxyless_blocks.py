"""Geometry of the ProxylessNAS networks and enumeration of their op instances.

A ProxylessNAS network (Cai et al., ICLR 2019) is a fixed stem (3x3 conv-BN-ReLU6), a
fixed first block (MBConv k3 e1), a chain of stages of searchable blocks, and a fixed
head (1x1 conv to the feature width, global average pooling, linear classifier). Each
stage is ``(width, depth, first stride)``: its first block changes width and stride,
the others keep both and therefore have an identity shortcut, where ``zero`` (skip the
block) is a candidate too.

Two layouts (:data:`LAYOUTS`):

* ``cifar`` (the default), scaled for 32x32 inputs: stride-1 stem of 24 channels, first
  block to 16, five stages ``(24,2,2) (40,3,2) (80,3,2) (96,2,1) (160,2,1)`` (12
  searchable blocks, 32 -> 16 -> 8 -> 4 pixels), feature width 640. The paper's
  ImageNet layout downsamples 224 by 32 (stride-2 stem and four stride-2 stages) to
  7x7; at 32x32 that would leave 1x1 maps, so the stem keeps stride 1 and three stages
  downsample (8x in all, 4x4 at the head), widths are the paper's first ones, depths
  2-3 and the feature width is halved, so a search step at batch 32 stays well under
  a second on two CPU threads.
* ``imagenet``: the paper's search space as released (``imagenet_arch_search.py``):
  224x224, stride-2 stem of 32, first block to 16, stages widths 24,40,80,96,192,320,
  depths 4,4,4,4,4,1, strides 2,2,2,1,2,1, feature width 1280, 1000 classes.

``width_mult`` scales every width as the ProxylessNAS code does (rounded to a multiple
of 8; the feature width only grows, for multipliers above 1).

:func:`block_plan` is the single description of the chain; the supernet, the derived
network, the LUT enumerator and the expected-cost model all read it. LUT keys carry the
fields of the ProxylessNAS latency tables (``expanded_conv-input:HxWxC-output:HxWxC-
expand:E-kernel:K-stride:S-idskip:I``): the op key ``mb_k5_e3/c16-24/h32w32/s2/
o16x16x24/e3/k5/id0`` holds the input (c16, h32w32), the output HxWxC (o16x16x24), the
expansion, kernel, stride and the identity skip; :func:`paper_key` writes the
ProxylessNAS form.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from nasbench.errors import UserError
from nasbench.ops import MBCONV_OPS, PROXYLESS_PRIMITIVES
from nasbench.spaces.base import OpInstance

SPACE = "proxyless"

#: layout name -> ProxylessDeployConfig field values
LAYOUTS: dict[str, dict] = {
    "cifar": dict(input_size=32, num_classes=10, stem_width=24, stem_stride=1,
                  first_block_width=16,
                  stages=((24, 2, 2), (40, 3, 2), (80, 3, 2), (96, 2, 1), (160, 2, 1)),
                  feature_width=640),
    "imagenet": dict(input_size=224, num_classes=1000, stem_width=32, stem_stride=2,
                     first_block_width=16,
                     stages=((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2),
                             (320, 1, 1)),
                     feature_width=1280),
}


def make_divisible(v: float, divisor: int = 8) -> int:
    """Returns ``v`` rounded to the nearest multiple of ``divisor`` (never below it, and
    never more than 10 % below ``v``), the MobileNetV2 / ProxylessNAS width rule."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


@dataclass(frozen=True)
class ProxylessDeployConfig:
    """The ProxylessNAS network whose cost is measured and optimised (and which is
    searched directly: ProxylessNAS uses no proxy network). Defaults: the ``cifar``
    layout (see the module doc). Widths in channels, sizes in pixels; ``stages`` is a
    tuple of ``(width, depth, first stride)``."""

    layout: str = "cifar"
    input_size: int = 32
    in_channels: int = 3
    num_classes: int = 10
    stem_width: int = 24
    stem_stride: int = 1
    first_block_width: int = 16
    stages: tuple[tuple[int, int, int], ...] = LAYOUTS["cifar"]["stages"]
    feature_width: int = 640
    width_mult: float = 1.0
    batches: tuple[int, ...] = (1,)
    dtype: str = "float32"

    @classmethod
    def from_layout(cls, layout: str = "cifar", **overrides) -> ProxylessDeployConfig:
        """Returns the config of a named layout (``cifar`` or ``imagenet``) with
        ``overrides`` (None values ignored); raises UserError for bad values."""
        if layout not in LAYOUTS:
            raise UserError(f"unknown proxyless space config {layout!r} (use "
                            f"{' or '.join(LAYOUTS)})")
        names = {f.name for f in fields(cls)}
        kw = {"layout": layout, **LAYOUTS[layout]}
        for k, v in overrides.items():
            if k not in names:
                raise TypeError(f"ProxylessDeployConfig has no field {k!r}")
            if v is not None:
                kw[k] = v
        kw["stages"] = tuple(tuple(int(x) for x in s) for s in kw["stages"])
        kw["batches"] = tuple(kw.get("batches", (1,)))
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raises UserError (one line) for an impossible network."""
        for name in ("input_size", "in_channels", "num_classes", "stem_width",
                     "first_block_width", "feature_width"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if self.stem_stride not in (1, 2):
            raise UserError(f"stem stride must be 1 or 2, got {self.stem_stride}")
        if not self.width_mult > 0:
            raise UserError(f"width multiplier must be positive, got {self.width_mult}")
        if not self.stages:
            raise UserError("the proxyless space needs at least one stage")
        for s in self.stages:
            if len(s) != 3 or s[0] < 1 or s[1] < 1 or s[2] not in (1, 2):
                raise UserError(f"a stage is (width >= 1, depth >= 1, stride 1 or 2), "
                                f"got {tuple(s)}")
        if not self.batches or any(b < 1 for b in self.batches):
            raise UserError(f"batch sizes must be positive, got {self.batches}")
        if self.dtype not in ("float32", "float16"):
            raise UserError(f"dtype must be float32 or float16, got {self.dtype!r}")

    # ---- effective widths ---------------------------------------------------------------

    def scaled(self, width: int) -> int:
        """Returns a width after the width multiplier (multiple of 8; unchanged at 1.0
        when it already is one)."""
        if self.width_mult == 1.0:
            return int(width)
        return make_divisible(width * self.width_mult, 8)

    @property
    def stem_channels(self) -> int:
        """Returns the stem's output channels."""
        return self.scaled(self.stem_width)

    @property
    def first_channels(self) -> int:
        """Returns the first (fixed) block's output channels."""
        return self.scaled(self.first_block_width)

    @property
    def feature_channels(self) -> int:
        """Returns the feature mix layer's output channels (scaled only above 1.0)."""
        if self.width_mult > 1.0:
            return make_divisible(self.feature_width * self.width_mult, 8)
        return int(self.feature_width)

    @property
    def stem_size(self) -> int:
        """Returns the height (= width) of the stem's output."""
        return -(-self.input_size // self.stem_stride)

    def describe(self) -> dict:
        """Returns the fields that identify the deploy network in a LUT's provenance
        (JSON types: lists, not tuples)."""
        return {"space": SPACE, "layout": self.layout, "input_size": self.input_size,
                "in_channels": self.in_channels, "num_classes": self.num_classes,
                "stem_width": self.stem_width, "stem_stride": self.stem_stride,
                "first_block_width": self.first_block_width,
                "stages": [list(s) for s in self.stages],
                "feature_width": self.feature_width, "width_mult": self.width_mult}

    def replace(self, **changes) -> ProxylessDeployConfig:
        """Returns a copy with ``changes``."""
        return replace(self, **changes)


@dataclass(frozen=True)
class BlockGeometry:
    """One searchable block: its index in the chain (0-based, after the fixed first
    block), stage, input/output channels, input resolution, stride, and whether it has
    an identity shortcut (stride 1 and c_in == c_out; then ``zero`` is a candidate)."""

    index: int
    stage: int
    c_in: int
    c_out: int
    h_in: int
    stride: int
    identity: bool

    @property
    def h_out(self) -> int:
        return -(-self.h_in // self.stride)

    @property
    def candidates(self) -> list[str]:
        """Returns the candidate op names of the block (``zero`` only with a shortcut)."""
        return [op for op in PROXYLESS_PRIMITIVES if op != "zero" or self.identity]


def block_plan(cfg: ProxylessDeployConfig) -> list[BlockGeometry]:
    """Returns the geometry of every searchable block of the network, in order."""
    c, h = cfg.first_channels, cfg.stem_size
    plan = []
    for si, (width, depth, stride) in enumerate(cfg.stages):
        w = cfg.scaled(width)
        for d in range(depth):
            s = stride if d == 0 else 1
            plan.append(BlockGeometry(len(plan), si, c, w, h, s, s == 1 and c == w))
            c, h = w, -(-h // s)
    return plan


def _out(h: int, c: int) -> tuple:
    return ("o", f"{h}x{h}x{c}")


def block_instance(g: BlockGeometry, op: str) -> OpInstance:
    """Returns the op instance that candidate ``op`` places at block ``g``."""
    if op == "zero":
        if not g.identity:
            raise ValueError(f"block {g.index} has no identity shortcut: 'zero' is not a "
                             f"candidate there")
        return OpInstance(op, g.c_in, g.c_out, g.h_in, g.h_in, g.stride,
                          (_out(g.h_out, g.c_out), ("id", 1)))
    k, e = MBCONV_OPS[op]
    return OpInstance(op, g.c_in, g.c_out, g.h_in, g.h_in, g.stride,
                      (_out(g.h_out, g.c_out), ("e", e), ("k", k), ("id", int(g.identity))))


def stem_instances(cfg: ProxylessDeployConfig) -> list[OpInstance]:
    """Returns the fixed ops before the searchable blocks: the stem and the first block."""
    h, c0, c1 = cfg.stem_size, cfg.stem_channels, cfg.first_channels
    ident = int(c0 == c1)
    return [OpInstance("px_stem", cfg.in_channels, c0, cfg.input_size, cfg.input_size,
                       cfg.stem_stride, (_out(h, c0),)),
            OpInstance("mb_k3_e1", c0, c1, h, h, 1,
                       (_out(h, c1), ("e", 1), ("k", 3), ("id", ident)))]


def head_instances(cfg: ProxylessDeployConfig) -> list[OpInstance]:
    """Returns the fixed ops after the searchable blocks: feature mix and classifier."""
    plan = block_plan(cfg)
    c, h = plan[-1].c_out, plan[-1].h_out
    f = cfg.feature_channels
    return [OpInstance("px_feature_mix", c, f, h, h, 1, (_out(h, f),)),
            OpInstance("gap_linear", f, cfg.num_classes, h, h, 1,
                       (("o", str(cfg.num_classes)),))]


def network_fixed_instances(cfg: ProxylessDeployConfig) -> list[OpInstance]:
    """Returns every architecture-independent op instance of the network: stem, first
    block, feature mix, classifier."""
    return stem_instances(cfg) + head_instances(cfg)


def block_candidate_instances(cfg: ProxylessDeployConfig) -> list[OpInstance]:
    """Returns every (block, candidate) op instance, with repetitions, in block /
    candidate order."""
    return [block_instance(g, op) for g in block_plan(cfg) for op in g.candidates]


def arch_instances(cfg: ProxylessDeployConfig, blocks: list[str]) -> list[OpInstance]:
    """Returns the op instances of the network with candidate ``blocks[i]`` at block i,
    in execution order (stem, first block, blocks, head)."""
    plan = block_plan(cfg)
    if len(blocks) != len(plan):
        raise ValueError(f"the network has {len(plan)} searchable blocks, the "
                         f"architecture names {len(blocks)}")
    for g, op in zip(plan, blocks, strict=True):
        if op not in g.candidates:
            raise ValueError(f"block {g.index}: {op!r} is not a candidate there "
                             f"(allowed: {', '.join(g.candidates)})")
    return (stem_instances(cfg) + [block_instance(g, op) for g, op in zip(plan, blocks,
                                                                          strict=True)]
            + head_instances(cfg))


def enumerate_instances(cfg: ProxylessDeployConfig) -> list[OpInstance]:
    """Returns the distinct op instances the space can place in the network (every
    candidate at every block shape, plus the fixed parts), in first-use order."""
    seen: dict[str, OpInstance] = {}
    for inst in stem_instances(cfg) + block_candidate_instances(cfg) + head_instances(cfg):
        seen.setdefault(inst.key, inst)
    return list(seen.values())


def paper_key(inst: OpInstance) -> str | None:
    """Returns the ProxylessNAS latency-table key of an instance (``Conv``,
    ``expanded_conv``, ``Conv_1``, ``Logits``), or None for ``zero`` (no entry there:
    a skipped block costs nothing in the paper's tables)."""
    c_out, h_out, _ = inst.output_shape()
    i = f"input:{inst.h}x{inst.w}x{inst.c_in}"
    o = f"output:{h_out}x{h_out}x{c_out}"
    a = dict(inst.attrs)
    if inst.op == "px_stem":
        return f"Conv-{i}-{o}"
    if inst.op == "px_feature_mix":
        return f"Conv_1-{i}-{o}"
    if inst.op == "gap_linear":
        return f"Logits-{i}-output:{inst.c_out}"
    if inst.op in MBCONV_OPS:
        return (f"expanded_conv-{i}-{o}-expand:{a['e']}-kernel:{a['k']}-"
                f"stride:{inst.stride}-idskip:{a['id']}")
    return None


def count_blocks(cfg: ProxylessDeployConfig) -> dict:
    """Returns {"blocks": searchable blocks, "identity": blocks with a shortcut,
    "architectures": size of the space} (the size is a Python int)."""
    plan = block_plan(cfg)
    n = 1
    for g in plan:
        n *= len(g.candidates)
    return {"blocks": len(plan), "identity": sum(g.identity for g in plan),
            "architectures": n}


__all__ = ["ProxylessDeployConfig", "BlockGeometry", "LAYOUTS", "block_plan",
           "block_instance", "network_fixed_instances", "block_candidate_instances",
           "arch_instances", "enumerate_instances", "paper_key", "make_divisible",
           "stem_instances", "head_instances", "count_blocks"]


def anchor_instance(cfg: ProxylessDeployConfig) -> OpInstance:
    """Returns the drift anchor of this deploy network (its first, fixed MBConv block;
    see ``nasbench.spaces.darts.anchor_instance``)."""
    return stem_instances(cfg)[1]


_SHORT = {"zero": "skip"}


def short_name(op: str) -> str:
    """Returns the short form of a candidate name (``mb_k5_e6`` -> ``k5e6``, ``zero`` ->
    ``skip``)."""
    return _SHORT.get(op, op.replace("mb_", "").replace("_", ""))


# --------------------------------------------------------------------------------------
# the architecture
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxylessArch:
    """A ProxylessNAS architecture: the candidate op of every searchable block, in order
    (``zero`` = the block is skipped). ``layout`` names the space config it was searched
    in (informational)."""

    blocks: tuple[str, ...]
    layout: str = "cifar"

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        bad = [op for op in self.blocks if op not in PROXYLESS_PRIMITIVES]
        if bad:
            raise ValueError(f"unknown proxyless candidate(s) {', '.join(map(repr, bad))}; "
                             f"known: {', '.join(PROXYLESS_PRIMITIVES)}")

    def to_dict(self) -> dict:
        """Returns ``{"space": "proxyless", "blocks": [op names], "layout", "summary"}``."""
        return {"space": "proxyless", "blocks": list(self.blocks), "layout": self.layout,
                "summary": self.summary()}

    @classmethod
    def from_dict(cls, d: dict) -> ProxylessArch:
        """Returns the architecture stored by :meth:`to_dict`; raises ValueError."""
        if not isinstance(d, dict) or not isinstance(d.get("blocks"), list):
            raise ValueError("a proxyless architecture is {'blocks': [op names], ...}")
        return cls(tuple(str(b) for b in d["blocks"]), str(d.get("layout", "cifar")))

    def summary(self) -> str:
        """Returns a one-line text: the short op name of every block."""
        return " ".join(short_name(b) for b in self.blocks)

    def validate_for(self, deploy: ProxylessDeployConfig) -> None:
        """Raises ValueError when the architecture does not fit ``deploy``'s blocks."""
        arch_instances(deploy, list(self.blocks))
