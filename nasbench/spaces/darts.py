"""The DARTS search space (Liu et al., ICLR 2019), registered as ``darts``: the cells'
edges as decision slots on the deploy network whose geometry :mod:`.darts_cells`
holds (re-exported here)."""

from __future__ import annotations

import random

import torch

from nasbench.errors import UserError
from nasbench.genotypes import Genotype, validate_genotype
from nasbench.ops import OPS, PRIMITIVES
from nasbench.spaces.base import SearchSpace, Slot, register_space
from nasbench.spaces.darts_cells import (  # noqa: F401 - the geometry, re-exported
    CellGeometry,
    DeployConfig,
    OpInstance,
    anchor_instance,
    cell_edges,
    cell_fixed_instances,
    cell_plan,
    edge_instance,
    edge_stride,
    enumerate_instances,
    fused_node_adds,
    network_edge_instances,
    network_fixed_instances,
    network_instances,
    node_add_instance,
    node_add_rule,
    node_fuses,
    num_edges,
    reduction_layers,
)


def genotype_space_dict(g) -> dict:
    """Returns the JSON form of a DARTS genotype (the genotype's fields only)."""
    from nasbench.genotypes import genotype_to_dict
    return genotype_to_dict(g)


@register_space("darts")
class DartsSpace(SearchSpace):
    """The DARTS CIFAR space (Liu et al., ICLR 2019) on a deploy network: a normal and a
    reduction cell of ``steps`` nodes, each node summing two of its predecessors through
    one op each. Slots are the cells' edges, ``normal/<node>/<input>`` then
    ``reduce/<node>/<input>``, each with the 7 non-``none`` ops (derivation never keeps
    ``none``) and weight 2/(inputs of the node), the expected survival of the edge; a
    slot's instances are that edge in every cell of its kind. Encoding: per cell and node,
    the pair of inputs (one categorical) and the op of each of the two edges."""

    candidate_ops = tuple(PRIMITIVES)
    arch_type = Genotype

    # ---- topology -----------------------------------------------------------------------

    def plan(self) -> list[CellGeometry]:
        """Returns the deploy network's cell geometries."""
        d = self.deploy
        return cell_plan(d.channels, d.layers, d.input_size, d.multiplier, d.stem_multiplier)

    def edges(self) -> list[tuple[str, int, int]]:
        """Returns (cell kind, node, input) of every slot, in slot order."""
        return [(kind, node, j) for kind in ("normal", "reduce")
                for node, j in cell_edges(self.deploy.steps)]

    def slots(self) -> list[Slot]:
        ops = tuple(p for p in self.candidate_ops if p != "none")
        return [Slot(f"{kind}/{node}/{j}", ops, 2.0 / (node + 2))
                for kind, node, j in self.edges()]

    def slot_instances(self, slot: int, op: str) -> list[OpInstance]:
        kind, _, j = self.edges()[slot]
        return [edge_instance(c, op, j) for c in self.plan()
                if c.reduction == (kind == "reduce")]

    def fixed_instances(self) -> list[OpInstance]:
        return network_fixed_instances(self.deploy)

    def slot_index(self, kind: str, node: int, j: int) -> int:
        """Returns the slot index of edge (node, input j) of a cell kind."""
        edges = cell_edges(self.deploy.steps)
        return (len(edges) if kind == "reduce" else 0) + edges.index((node, j))

    def picks(self, arch) -> list[tuple[int, str]]:
        return [(self.slot_index(kind, k // 2, j), op) for kind in ("normal", "reduce")
                for k, (op, j) in enumerate(getattr(arch, kind))]

    def with_picks(self, arch, picks):
        n = len(arch.normal)
        ops = [op for _, op in picks]
        return arch._replace(
            normal=[(o, j) for o, (_, j) in zip(ops[:n], arch.normal, strict=True)],
            reduce=[(o, j) for o, (_, j) in zip(ops[n:], arch.reduce, strict=True)])

    def swap_where(self, pick: int, slot: int) -> dict:
        """Returns where a hard-target swap happened: cell kind, edge position, input."""
        kind, _, j = self.edges()[slot]
        n = 2 * self.deploy.steps
        return {"cell": kind, "edge": pick % n, "input": j}

    def instances(self, arch, *, node_adds: bool = True,
                  fused_adds: bool = False) -> list[OpInstance]:
        """Returns the deploy network's op instances (see :func:`network_instances`)."""
        return network_instances(self.deploy, arch, node_adds=node_adds,
                                 fused_adds=fused_adds)

    def prediction_instances(self, arch, lut) -> tuple[list[OpInstance], list[OpInstance]]:
        """Returns (instances a prediction from ``lut`` sums at their LUT value, node sums
        a fusing backend folds into a conv epilogue: the ``fused_add`` feature)."""
        adds, fused = node_add_rule(lut)
        insts = self.instances(arch, node_adds=adds, fused_adds=fused)
        return insts, (fused_node_adds(self.deploy, arch) if adds and fused else [])

    def enumerate_instances(self) -> list[OpInstance]:
        return enumerate_instances(self.deploy)

    def anchor_instance(self) -> OpInstance:
        return anchor_instance(self.deploy)

    def build(self, arch, **size):
        """Returns the deploy network of ``arch`` (``size``: ``C``/``num_cells`` override
        the deploy network's, e.g. for the smaller retrain copy), eval mode."""
        from nasbench.spaces.darts_network import build_network_from_genotype
        d = self.deploy
        kw = {"C": d.channels, "num_cells": d.layers, "num_classes": d.num_classes,
              "in_channels": d.in_channels, "input_size": d.input_size, **size}
        return build_network_from_genotype(arch, **kw).eval()

    def supernet(self, channels, layers, partial_k=1, *, num_classes=None,
                 in_channels=None, input_size=None):
        """Returns the DARTS (or PC-DARTS) search network: ``channels`` C, ``layers``
        cells, the deploy network's node count and multipliers."""
        from nasbench.spaces.darts_supernet import SearchNetwork
        d = self.deploy
        return SearchNetwork(C=channels, num_classes=num_classes or d.num_classes,
                             layers=layers, steps=d.steps, multiplier=d.multiplier,
                             stem_multiplier=d.stem_multiplier,
                             in_channels=in_channels or d.in_channels,
                             input_size=input_size or d.input_size, partial_k=partial_k)

    # ---- cost extras of a LUT (node sums) -----------------------------------------------

    def fixed_extra(self, lut, val) -> float:
        """Returns the cost of the deploy network's node sums from ``lut`` (0 for LUTs
        without them), each at its standalone LUT value, as the plain sum counts them."""
        adds, _ = node_add_rule(lut)
        if not adds:
            return 0.0
        return sum(self.deploy.steps * (val(node_add_instance(c).key) or 0.0)
                   for c in self.plan())

    def cost_extra(self, scale: float, val):
        """Returns the fused node-sum term of a calibrated, fusing LUT (see
        :class:`FusedAdds`)."""
        x = {k: torch.zeros(self.deploy.steps, dtype=torch.float64)
             for k in ("normal", "reduce")}
        for c in self.plan():
            x["reduce" if c.reduction else "normal"] += \
                (scale - 1.0) * (val(node_add_instance(c).key) or 0.0)
        return FusedAdds(self, x)

    # ---- sampling and encoding ------------------------------------------------------------

    def sample(self, rng: random.Random):
        ops = [p for p in self.candidate_ops if p != "none"]
        steps = self.deploy.steps

        def cell():
            edges = []
            for node in range(steps):
                for j in sorted(rng.sample(range(node + 2), 2)):
                    edges.append((rng.choice(ops), j))
            return edges

        concat = list(range(2, 2 + steps))
        return Genotype(cell(), concat, cell(), concat)

    def choices(self) -> dict[str, list]:
        ops = [p for p in self.candidate_ops if p != "none"]
        out: dict[str, list] = {}
        for kind in ("normal", "reduce"):
            for node in range(self.deploy.steps):
                out[f"{kind}/{node}/inputs"] = [f"{a},{b}" for a in range(node + 2)
                                                for b in range(a + 1, node + 2)]
                out[f"{kind}/{node}/op0"] = list(ops)
                out[f"{kind}/{node}/op1"] = list(ops)
        return out

    def encode(self, arch) -> dict:
        out = {}
        for kind in ("normal", "reduce"):
            edges = getattr(arch, kind)
            for node in range(self.deploy.steps):
                (o0, a), (o1, b) = sorted(edges[2 * node:2 * node + 2], key=lambda e: e[1])
                if a == b:
                    raise ValueError(f"{kind} node {node} reads state {a} twice; the "
                                     f"encoding needs two distinct inputs")
                out[f"{kind}/{node}/inputs"] = f"{a},{b}"
                out[f"{kind}/{node}/op0"], out[f"{kind}/{node}/op1"] = o0, o1
        return out

    def decode(self, values: dict):
        cells = {}
        for kind in ("normal", "reduce"):
            edges = []
            for node in range(self.deploy.steps):
                a, b = (int(x) for x in str(values[f"{kind}/{node}/inputs"]).split(","))
                edges += [(values[f"{kind}/{node}/op0"], a), (values[f"{kind}/{node}/op1"], b)]
            cells[kind] = edges
        concat = list(range(2, 2 + self.deploy.steps))
        g = Genotype(cells["normal"], concat, cells["reduce"], concat)
        validate_genotype(g)
        return g

    def blocks(self) -> list[list[str]]:
        """Returns PNAS's blocks: the normal cell's nodes in order (two inputs, two ops);
        as in PNAS, the reduction cell repeats the normal cell (see :meth:`complete`)."""
        return [[f"normal/{n}/inputs", f"normal/{n}/op0", f"normal/{n}/op1"]
                for n in range(self.deploy.steps)]

    def complete(self, partial: dict):
        """Returns the genotype of a partial cell: the given normal nodes, each later
        node the ``skip_connect`` sum of the two states before it (so the b-block cell's
        nodes flow to the output), and the reduction cell equal to the normal one."""
        values = dict(partial)
        for n in range(self.deploy.steps):
            if f"normal/{n}/inputs" not in values:
                values.update({f"normal/{n}/inputs": f"{n},{n + 1}",
                               f"normal/{n}/op0": "skip_connect",
                               f"normal/{n}/op1": "skip_connect"})
        for k in list(values):
            if k.startswith("normal/"):
                values["reduce/" + k[len("normal/"):]] = values[k]
        return self.decode(values)

    @classmethod
    def arch_to_dict(cls, arch) -> dict:
        return genotype_space_dict(arch)

    @classmethod
    def arch_from_dict(cls, d: dict):
        from nasbench.genotypes import genotype_from_dict
        return genotype_from_dict(d.get("genotype", d) if isinstance(d, dict) else d)

    @classmethod
    def summary(cls, arch) -> str:
        from nasbench.genotypes import summarize
        return summarize(arch)

    @classmethod
    def default_deploy(cls) -> DeployConfig:
        return DeployConfig()

    retrains_deploy = False     # the quick preset retrains a smaller copy (C=16, 8 cells)
    supernet_min_layers = 3     # two reduction cells and one normal cell

    @classmethod
    def deploy_from_options(cls, *, channels=None, layers=None, input_size=None,
                            num_classes=None, layout=None, width_mult=None,
                            batches=(1,), dtype="float32") -> DeployConfig:
        """Returns the DARTS evaluation network: ``channels`` C (36), ``layers`` cells
        (20, at least 3: two reduction cells), 32x32, 10 classes by default."""
        if layout is not None or width_mult is not None:
            raise UserError("--config/--width-mult describe the proxyless space; the DARTS "
                            "network takes --channels and --layers")
        if layers is not None and layers < 3:
            raise UserError("--layers must be at least 3 (two reduction cells)")
        return DeployConfig(channels=channels or 36, layers=layers or 20,
                            input_size=input_size or 32, num_classes=num_classes or 10,
                            batches=tuple(batches), dtype=dtype)

    @classmethod
    def supernet_deploy(cls, *, channels, cells, input_size, in_channels, num_classes,
                        batch, steps=4, multiplier=4, stem_multiplier=3) -> DeployConfig:
        return DeployConfig(channels=channels, layers=cells, input_size=input_size,
                            in_channels=in_channels, num_classes=num_classes, steps=steps,
                            multiplier=multiplier, stem_multiplier=stem_multiplier,
                            batches=(batch,))

    @classmethod
    def check_supernet(cls, layers: int, eval_layers: int) -> None:
        if layers < 3 or eval_layers < 3:
            raise UserError("layers must be at least 3 (a network has two reduction cells)")

    @classmethod
    def parse_arch(cls, text: str):
        """Returns a named genotype (DARTS_V2...), or one in JSON / a JSON file."""
        from nasbench.genotypes import NAMED
        if str(text).upper() in NAMED:
            return NAMED[str(text).upper()]
        return super().parse_arch(text)

    def draw(self, arch) -> list[str]:
        """Returns both cells as their nodes, each the sum of two ops on earlier states
        (c_{k-2}, c_{k-1} are the cell's inputs, 0..3 its nodes)."""
        names = ["c_{k-2}", "c_{k-1}"] + [f"node {i}" for i in range(self.deploy.steps)]
        lines = []
        for kind in ("normal", "reduce"):
            edges = getattr(arch, kind)
            lines.append(f"{kind} cell:")
            for n in range(len(edges) // 2):
                (o1, a), (o2, b) = edges[2 * n], edges[2 * n + 1]
                lines.append(f"  node {n} = {o1}({names[a]}) + {o2}({names[b]})")
            concat = getattr(arch, kind + "_concat")
            lines.append("  output = concat(" + ", ".join(names[i] for i in concat) + ")")
        return lines

    # ---- LUT ------------------------------------------------------------------------------

    def describe(self) -> dict:
        return self.deploy.describe()

    def deploy_text(self) -> str:
        d = self.deploy
        return f"C={d.channels}, {d.layers} cells, {d.input_size}x{d.input_size}"

    def profile_command(self, device: str, out=None) -> str:
        # darts is `nasbench profile`'s default space: the command says no --space
        return super().profile_command(device, out).replace(" --space darts", "", 1)

    def profile_options(self) -> dict:
        d = self.deploy
        return {"channels": d.channels, "layers": d.layers, "input": d.input_size,
                "classes": d.num_classes, "batch": d.batches[0]}

    @classmethod
    def deploy_from_lut(cls, lut, batch: int | None = None) -> DeployConfig:
        d = lut.provenance.get("deploy") or {}
        keys = ("channels", "layers", "input_size", "in_channels", "num_classes", "steps",
                "multiplier", "stem_multiplier")
        return DeployConfig(**{k: d[k] for k in keys if k in d}, batches=(batch or 1,),
                            dtype=lut.provenance.get("dtype", "float32"))


class FusedAdds:
    """The node sums a fusing backend folds into a conv epilogue, at their calibrated
    scale: ``x[kind][node]`` is (scale - 1) x the node's LUT sum cost over the cells of
    that kind, added when the node is fused (one of its two ops ends in conv + BN)."""

    def __init__(self, space: DartsSpace, x: dict):
        self.space, self.x = space, x
        self.epilogue = torch.tensor([float(OPS[p].add_epilogue) if p != "none" else 0.0
                                      for p in space.candidate_ops], dtype=torch.float64)

    def expected(self, probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Returns the expected extra cost under slot probabilities and weights."""
        n = num_edges(self.space.deploy.steps)
        out = torch.zeros((), dtype=torch.float64)
        for i, kind in enumerate(("normal", "reduce")):
            rows = slice(i * n, (i + 1) * n)
            out = out + (self.x[kind] * self.fused_share(probs[rows], weights[rows])).sum()
        return out

    def fused_share(self, probs: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Returns, per node [steps], the probability that the derived network fuses its
        sum: 1 - (1 - q)^2 with q the survival-weighted chance that a kept input's op
        ends in conv + BN (two inputs are kept per node)."""
        q = (probs * self.epilogue).sum(1)
        out, e = [], 0
        for node in range(self.space.deploy.steps):
            n = node + 2
            qbar = (f[e:e + n] / 2.0 * q[e:e + n]).sum()
            out.append(1.0 - (1.0 - qbar) ** 2)
            e += n
        return torch.stack(out)

    def exact(self, picks: list[tuple[int, str]]) -> float:
        """Returns the extra cost of a discrete architecture's picks."""
        total = 0.0
        n = 2 * self.space.deploy.steps
        for i, kind in enumerate(("normal", "reduce")):
            ops = [op for _, op in picks[i * n:(i + 1) * n]]
            for node, fused in enumerate(node_fuses([(o, 0) for o in ops])):
                if fused:
                    total += float(self.x[kind][node])
        return total
