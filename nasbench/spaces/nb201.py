"""The NAS-Bench-201 search space (Dong & Yang, ICLR 2020), registered as ``nb201``: the
6 edges of the cell are the decision slots (one cell shared by all 15 cells of the
network, so a slot's instances are that edge in every cell), each with the 5 ops
``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``.
The geometry is :mod:`.nb201_cells` (re-exported here); 5^6 = 15,625 cells."""

from __future__ import annotations

import functools
import itertools
import random

from nasbench.errors import UserError
from nasbench.spaces.base import OpInstance, SearchSpace, Slot, register_space
from nasbench.spaces.nb201_cells import (  # noqa: F401 - the geometry, re-exported
    EDGES,
    NB201_OPS,
    NODES,
    SPACE,
    NB201Arch,
    NB201DeployConfig,
    StageGeometry,
    arch_instances,
    edge_instance,
    enumeration,
    fixed_instances,
    stage_plan,
)

#: the cell's input-to-output paths, as edge sequences
PATHS = (((0, 3),), ((0, 1), (1, 3)), ((0, 2), (2, 3)), ((0, 1), (1, 2), (2, 3)))


def live_paths(arch) -> list[tuple]:
    """Returns the input-to-output paths of ``arch`` with no ``none`` edge (the ones
    that carry signal), as edge sequences."""
    return [p for p in PATHS if all(arch.ops[EDGES.index(e)] != "none" for e in p)]


def used_edges(arch) -> set[tuple[int, int]]:
    """Returns the edges whose result reaches the cell's output through non-``none``
    edges: the others compute something no one reads, and a graph compiler drops them
    (measured on HW-NAS-Bench: they explain most of edgegpu's, edgetpu's, raspi4's and
    pixel3's departure from an additive sum)."""
    reaches = {NODES - 1}
    for op, (i, j) in reversed(list(zip(arch.ops, EDGES, strict=True))):
        if op != "none" and j in reaches:
            reaches.add(i)
    return {(i, j) for i, j in EDGES if j in reaches}


@functools.lru_cache(maxsize=len(NB201_OPS) ** len(EDGES))
def cell_cost_features(ops: tuple[str, ...]) -> dict[str, float]:
    """Returns :meth:`NB201Space.cost_features` of the cell of ``ops`` (cached: the
    space has 15,625 cells; callers get a copy)."""
    arch = NB201Arch(ops)
    used = used_edges(arch)
    real = NB201_OPS[1:]
    ops = [op if e in used else "none" for op, e in zip(arch.ops, EDGES, strict=True)]
    out = {f"n:{o}": float(arch.ops.count(o)) for o in real}
    out |= {f"used:{o}": float(ops.count(o)) for o in real}
    for op, (i, j) in zip(ops, EDGES, strict=True):
        out |= {f"{i}->{j}={o}": float(op == o) for o in real}
    sib = dict.fromkeys(itertools.combinations_with_replacement(real, 2), 0.0)
    for n in range(NODES - 1):
        outs = sorted((op for op, e in zip(ops, EDGES, strict=True)
                       if e[0] == n and op != "none"), key=real.index)
        for pair in itertools.combinations(outs, 2):
            sib[pair] += 1.0
    out |= {f"sib:{a}+{b}": v for (a, b), v in sib.items()}
    return out


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 on its deploy network (see the module doc). Encoding: one
    categorical per edge, keyed ``i->j``; :meth:`all_archs` enumerates the space."""

    candidate_ops = NB201_OPS
    arch_type = NB201Arch
    #: the supernet derives a cell from any per-op scores (:func:`best_cell`)
    derives_from_scores = True

    def slots(self) -> list[Slot]:
        return [Slot(f"{i}->{j}", NB201_OPS) for i, j in EDGES]

    def slot_instances(self, slot: int, op: str) -> list[OpInstance]:
        return [edge_instance(st, op) for st in stage_plan(self.deploy)
                for _ in range(st.cells)]

    def fixed_instances(self) -> list[OpInstance]:
        return fixed_instances(self.deploy)

    def picks(self, arch) -> list[tuple[int, str]]:
        return list(enumerate(arch.ops))

    def with_picks(self, arch, picks):
        return NB201Arch(tuple(op for _, op in picks))

    def instances(self, arch) -> list[OpInstance]:
        return arch_instances(self.deploy, arch)

    def anchor_instance(self) -> OpInstance:
        """Returns the first stage's ``nor_conv_3x3`` (a real, mid-sized op)."""
        return edge_instance(stage_plan(self.deploy)[0], "nor_conv_3x3")

    def build(self, arch, **_):
        from nasbench.spaces.nb201_network import NB201Network
        return NB201Network(arch, self.deploy).eval()

    def supernet(self, channels, layers, partial_k=1, *, num_classes=None,
                 in_channels=None, input_size=None):
        """Returns the NAS-Bench-201 supernet: ``channels`` C, ``layers`` N cells per
        stage (:mod:`nasbench.spaces.nb201_supernet`)."""
        from nasbench.spaces.nb201_supernet import NB201SearchNetwork
        d = self.deploy
        return NB201SearchNetwork(C=channels, N=layers,
                                  num_classes=num_classes or d.num_classes,
                                  in_channels=in_channels or d.in_channels,
                                  input_size=input_size or d.input_size,
                                  partial_k=partial_k)

    def sample(self, rng: random.Random):
        return NB201Arch(tuple(rng.choice(NB201_OPS) for _ in EDGES))

    def valid(self, arch) -> bool:
        """Returns whether the cell's output depends on its input (a path of non-``none``
        edges from node 0 to node 3): 15,284 of the 15,625 cells. The other 341 output
        zeros whatever the image (chance accuracy)."""
        return arch.connected()

    def enumerate_picks(self):
        """Returns (all 15,625 cells, their op columns [cells x 6], connected mask)."""
        return enumeration()

    def all_archs(self) -> list[NB201Arch]:
        """Returns all 15,625 cells (first edge varying slowest)."""
        return list(enumeration()[0])

    def choices(self) -> dict[str, list]:
        return {f"{i}->{j}": list(NB201_OPS) for i, j in EDGES}

    def encode(self, arch) -> dict:
        return {f"{i}->{j}": op for op, (i, j) in zip(arch.ops, EDGES, strict=True)}

    def decode(self, values: dict):
        return NB201Arch(tuple(values[f"{i}->{j}"] for i, j in EDGES))

    def features(self, arch) -> list[float]:
        """Returns the surrogate's inputs: the one-hot of each edge's op after edges on
        no live path are set to ``none`` (they do not change what the cell computes),
        the path encoding (which op sequence each of the 4 input-output paths carries,
        paths through ``none`` absent), and counts on the live paths (paths, convs per
        path, pools, live ops of each kind)."""
        live = live_paths(arch)
        on = {e for path in live for e in path}
        canon = [op if e in on else "none" for op, e in zip(arch.ops, EDGES, strict=True)]
        out = [1.0 if op == o else 0.0 for op in canon for o in NB201_OPS]
        real = NB201_OPS[1:]
        for path in PATHS:
            seq = tuple(arch.ops[EDGES.index(e)] for e in path)
            out += [1.0 if seq == c else 0.0
                    for c in itertools.product(real, repeat=len(path))]
        seqs = [tuple(arch.ops[EDGES.index(e)] for e in p) for p in live]
        c3 = [s.count("nor_conv_3x3") for s in seqs]
        c1 = [s.count("nor_conv_1x1") for s in seqs]
        out += [len(seqs), max(c3, default=0), sum(c3), max(c1, default=0), sum(c1),
                sum(s.count("avg_pool_3x3") for s in seqs),
                max((a + b for a, b in zip(c3, c1, strict=True)), default=0)]
        out += [sum(1 for op in canon if op == o) for o in real]
        return [float(v) for v in out]

    def cost_features(self, arch) -> dict[str, float]:
        """Returns the cell's structural cost terms (counts per cell; every cell of the
        network repeats them): ``n:op`` all ops, ``used:op`` the ops whose result
        reaches the output (:func:`used_edges`), ``i->j=op`` each edge's op when used
        (else ``none``: one-hot), and ``sib:a+b`` pairs of used ops reading the same
        node (a fusing backend batches or merges them; the interaction that explains
        most of edgegpu's non-additivity)."""
        return dict(cell_cost_features(arch.ops))

    def blocks(self) -> list[list[str]]:
        """Returns the cell's nodes in order as PNAS's blocks: node j's incoming edges."""
        return [[f"{i}->{jj}" for i, jj in EDGES if jj == j] for j in range(1, NODES)]

    def complete(self, partial: dict):
        """Returns the cell whose output is the last node of ``partial`` (nodes 1..b
        given): the later nodes pass it on by ``skip_connect`` and hold ``none``
        elsewhere, so the cell computes exactly the b-block cell."""
        b = max((int(k.split("->")[1]) for k in partial), default=0)
        values = {}
        for i, j in EDGES:
            key = f"{i}->{j}"
            # nodes after b: a chain of skips (i = j - 1) carries node b to the output
            values[key] = partial[key] if key in partial else \
                ("skip_connect" if j > b and i == j - 1 else "none")
        return self.decode(values)

    @classmethod
    def arch_to_dict(cls, arch) -> dict:
        return {"space": SPACE, "arch": arch.to_str(), "ops": list(arch.ops)}

    @classmethod
    def arch_from_dict(cls, d: dict):
        if isinstance(d, dict) and "arch" in d:
            return NB201Arch.from_str(d["arch"])
        if isinstance(d, dict) and "ops" in d:
            return NB201Arch(tuple(d["ops"]))
        raise ValueError("a NAS-Bench-201 architecture is {'arch': '|op~0|+...'}")

    @classmethod
    def summary(cls, arch) -> str:
        return arch.to_str()

    @classmethod
    def default_deploy(cls) -> NB201DeployConfig:
        return NB201DeployConfig()

    @classmethod
    def deploy_from_options(cls, *, channels=None, layers=None, input_size=None,
                            num_classes=None, layout=None, width_mult=None,
                            batches=(1,), dtype="float32") -> NB201DeployConfig:
        """Returns the NAS-Bench-201 network: ``channels`` C (16), 3 stages of 5 cells,
        ``input_size`` 32 (16 with 120 classes: ImageNet16-120), 10 classes."""
        if layers is not None:
            raise UserError("--layers describes the DARTS network; NAS-Bench-201 has 3 "
                            "stages of 5 cells")
        if layout is not None or width_mult is not None:
            raise UserError("--config/--width-mult describe the proxyless space")
        deploy = NB201DeployConfig(channels=channels or 16, input_size=input_size or 32,
                                   num_classes=num_classes or 10, batches=tuple(batches),
                                   dtype=dtype)
        deploy.validate()
        return deploy

    @classmethod
    def supernet_deploy(cls, *, channels, cells, input_size, in_channels, num_classes,
                        batch, **geometry) -> NB201DeployConfig:
        return NB201DeployConfig(channels=channels, cells=cells,
                                 input_size=input_size or 32, in_channels=in_channels,
                                 num_classes=num_classes, batches=(batch,))

    supernet_default_layers = 2     # cells per stage: 3 x 2 cells

    @classmethod
    def supernet_settings(cls, preset: str, method: str) -> dict:
        """Returns what a supernet search of this space changes: the deploy network is
        NAS-Bench-201's (C=16, N=5 cells per stage) and is itself retrained (no smaller
        copy); the supernet is that network at C=8, N=2 (quick) or itself (paper: the
        NAS-Bench-201 paper's one-shot setting, batch 64, its DARTS architecture learning
        rate 3e-4 (PC-DARTS: its own setting); retrain: its 200-epoch schedule, SGD lr
        0.1, batch 256, wd 5e-4, no cutout). The DARTS reference networks are not cells
        of this space: none by default. A config keeps the keys it has."""
        out = dict(eval_channels=16, eval_layers=5, train_channels=None, train_layers=None,
                   references="", auxiliary_weight=0.0, drop_path_prob=0.0)
        if preset == "quick":
            out.update(channels=8, layers=2)
            return out
        out.update(channels=16, layers=5, batch_size=64, train_epochs=200,
                   train_batch_size=256, train_learning_rate=0.1, train_weight_decay=5e-4,
                   cutout=0, arch_learning_rate=3e-4)
        if method == "pcdarts":
            out.update(batch_size=256, learning_rate=0.1, learning_rate_min=0.0,
                       arch_learning_rate=6e-4, warmup_epochs=15, epochs=35)
        return out

    @classmethod
    def parse_arch(cls, text: str):
        """Returns the cell of a NAS-Bench-201 string (or of its JSON)."""
        t = str(text).strip()
        if t.startswith("|"):
            return NB201Arch.from_str(t)
        return super().parse_arch(t)

    def draw(self, arch) -> list[str]:
        """Returns the cell as its nodes, each with the ops on its incoming edges."""
        lines = ["node 0: the cell's input"]
        for j in range(1, NODES):
            ins = [f"{op}(node {i})" for op, (i, jj) in zip(arch.ops, EDGES, strict=True)
                   if jj == j]
            lines.append(f"node {j} = " + " + ".join(ins))
        return lines + [f"output: node {NODES - 1}"]

    def deploy_text(self) -> str:
        d = self.deploy
        return (f"C={d.channels}, {d.cells} cells per stage, "
                f"{d.input_size}x{d.input_size}")

    def profile_options(self) -> dict:
        d = self.deploy
        return {"channels": d.channels, "input": d.input_size, "classes": d.num_classes,
                "batch": d.batches[0]}

    @classmethod
    def deploy_from_lut(cls, lut, batch: int | None = None) -> NB201DeployConfig:
        d = dict(lut.provenance.get("deploy") or {})
        keys = ("channels", "cells", "input_size", "in_channels", "num_classes")
        return NB201DeployConfig(**{k: d[k] for k in keys if k in d}, batches=(batch or 1,),
                                 dtype=lut.provenance.get("dtype", "float32"))
