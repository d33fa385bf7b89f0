"""The ProxylessNAS search space (Cai et al., ICLR 2019), registered as ``proxyless``: one
decision slot per searchable block of the network whose geometry
:mod:`.proxyless_blocks` holds (re-exported here)."""

from __future__ import annotations

import random

from nasbench.errors import UserError
from nasbench.ops import PROXYLESS_PRIMITIVES
from nasbench.spaces.base import OpInstance, SearchSpace, Slot, register_space
from nasbench.spaces.proxyless_blocks import (  # noqa: F401 - the geometry, re-exported
    LAYOUTS,
    SPACE,
    BlockGeometry,
    ProxylessArch,
    ProxylessDeployConfig,
    anchor_instance,
    arch_instances,
    block_candidate_instances,
    block_instance,
    block_plan,
    count_blocks,
    enumerate_instances,
    head_instances,
    make_divisible,
    network_fixed_instances,
    paper_key,
    short_name,
    stem_instances,
)


@register_space("proxyless")
class ProxylessSpace(SearchSpace):
    """The ProxylessNAS space on its deploy network (the searched network itself): one
    slot per searchable block (``block/<i>``) with its candidates (``zero`` only where
    the block has an identity shortcut), weight 1; a slot's instance is the block."""

    candidate_ops = tuple(PROXYLESS_PRIMITIVES)
    arch_type = ProxylessArch

    def plan(self) -> list[BlockGeometry]:
        """Returns the searchable blocks' geometries."""
        return block_plan(self.deploy)

    def slots(self) -> list[Slot]:
        return [Slot(f"block/{g.index}", tuple(g.candidates)) for g in self.plan()]

    def slot_instances(self, slot: int, op: str) -> list[OpInstance]:
        return [block_instance(self.plan()[slot], op)]

    def fixed_instances(self) -> list[OpInstance]:
        return network_fixed_instances(self.deploy)

    def picks(self, arch) -> list[tuple[int, str]]:
        return list(enumerate(arch.blocks))

    def with_picks(self, arch, picks):
        return ProxylessArch(tuple(op for _, op in picks), arch.layout)

    def swap_where(self, pick: int, slot: int) -> dict:
        """Returns where a hard-target swap happened: the block index."""
        return {"block": slot}

    def instances(self, arch) -> list[OpInstance]:
        """Returns the network's op instances in execution order."""
        return arch_instances(self.deploy, list(arch.blocks))

    def enumerate_instances(self) -> list[OpInstance]:
        return enumerate_instances(self.deploy)

    def anchor_instance(self) -> OpInstance:
        return anchor_instance(self.deploy)

    def build(self, arch, **_):
        from nasbench.spaces.proxyless_network import build_proxyless_network
        return build_proxyless_network(arch, self.deploy).eval()

    def sample(self, rng: random.Random):
        return ProxylessArch(tuple(rng.choice(g.candidates) for g in self.plan()),
                             self.deploy.layout)

    def choices(self) -> dict[str, list]:
        return {f"block/{g.index}": list(g.candidates) for g in self.plan()}

    def encode(self, arch) -> dict:
        return {f"block/{i}": op for i, op in enumerate(arch.blocks)}

    def decode(self, values: dict):
        arch = ProxylessArch(tuple(values[f"block/{g.index}"] for g in self.plan()),
                             self.deploy.layout)
        arch.validate_for(self.deploy)
        return arch

    @classmethod
    def arch_to_dict(cls, arch) -> dict:
        return arch.to_dict()

    @classmethod
    def arch_from_dict(cls, d: dict):
        return ProxylessArch.from_dict(d)

    @classmethod
    def summary(cls, arch) -> str:
        return arch.summary()

    @classmethod
    def default_deploy(cls) -> ProxylessDeployConfig:
        return ProxylessDeployConfig.from_layout("cifar")

    @classmethod
    def deploy_from_options(cls, *, channels=None, layers=None, input_size=None,
                            num_classes=None, layout=None, width_mult=None,
                            batches=(1,), dtype="float32") -> ProxylessDeployConfig:
        """Returns the MBConv network of ``layout`` (cifar: 32x32, imagenet: the paper's
        224x224) at ``width_mult`` (1.0); input and classes default to the layout's."""
        if channels is not None or layers is not None:
            raise UserError("--channels/--layers describe the DARTS network; the proxyless "
                            "space takes --config and --width-mult")
        return ProxylessDeployConfig.from_layout(
            layout or "cifar", input_size=input_size, num_classes=num_classes,
            width_mult=1.0 if width_mult is None else width_mult, batches=tuple(batches),
            dtype=dtype)

    @classmethod
    def parse_arch(cls, text: str):
        """Returns the blocks of a comma- or space-separated op list (or of JSON)."""
        t = str(text).strip()
        if not t.startswith(("{", "[")) and not t.endswith(".json"):
            return ProxylessArch(tuple(x for x in t.replace(",", " ").split() if x))
        return super().parse_arch(t)

    def draw(self, arch) -> list[str]:
        """Returns one line per searchable block: its geometry and candidate."""
        return [f"block {g.index:2d} (stage {g.stage}, {g.c_in}->{g.c_out} ch, "
                f"{g.h_in}px, stride {g.stride}): {op}"
                for g, op in zip(self.plan(), arch.blocks, strict=True)]

    def deploy_text(self) -> str:
        d = self.deploy
        return (f"{d.layout} x{d.width_mult} {d.input_size}x{d.input_size}, "
                f"{len(self.plan())} searchable blocks")

    def profile_options(self) -> dict:
        d = self.deploy
        opts = {"config": d.layout, "input": d.input_size, "classes": d.num_classes,
                "batch": d.batches[0]}
        return opts | ({"width-mult": d.width_mult} if d.width_mult != 1.0 else {})

    @classmethod
    def deploy_from_lut(cls, lut, batch: int | None = None) -> ProxylessDeployConfig:
        d = dict(lut.provenance.get("deploy") or {})
        d.pop("space", None)
        return ProxylessDeployConfig.from_layout(
            d.pop("layout", "cifar"), **d, batches=(batch or 1,),
            dtype=lut.provenance.get("dtype", "float32"))
