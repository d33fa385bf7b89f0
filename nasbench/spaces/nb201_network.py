"""The NAS-Bench-201 network of a cell (NAS-Bench-201's ``TinyNetwork`` skeleton), built
from the op instances the ``nb201`` space places, so the LUT's keys are the modules that
run."""

from __future__ import annotations

from torch import nn

from nasbench.spaces.nb201_cells import (
    EDGES,
    NODES,
    NB201Arch,
    NB201DeployConfig,
    edge_instance,
    fixed_instances,
    stage_plan,
)


class NB201Cell(nn.Module):
    """A cell: node j is the sum of the ops on its incoming edges (zeros included, as
    NAS-Bench-201 computes them); the output is the last node."""

    def __init__(self, arch: NB201Arch, stage):
        super().__init__()
        self.edges = nn.ModuleList(edge_instance(stage, op).build() for op in arch.ops)

    def forward(self, x):
        nodes = [x]
        for j in range(1, NODES):
            s = None              # tensor + tensor only (no 0 + ...: traceable adds)
            for op, (i, jj) in zip(self.edges, EDGES, strict=True):
                if jj == j:
                    y = op(nodes[i])
                    s = y if s is None else s + y
            nodes.append(s)
        return nodes[-1]


class NB201Network(nn.Module):
    """Stem, three stages of cells with residual blocks between them, BN-ReLU, global
    pooling and the classifier; returns logits."""

    def __init__(self, arch: NB201Arch, cfg: NB201DeployConfig = NB201DeployConfig()):
        super().__init__()
        fixed = {i.op: i for i in fixed_instances(cfg) if i.op != "resnet_block"}
        blocks = [i for i in fixed_instances(cfg) if i.op == "resnet_block"]
        self.stem = fixed["stem"].build()
        layers: list[nn.Module] = []
        for st in stage_plan(cfg):
            if st.index:
                layers.append(blocks[st.index - 1].build())
            layers += [NB201Cell(arch, st) for _ in range(st.cells)]
        self.cells = nn.Sequential(*layers)
        self.lastact = fixed["bn_relu"].build()
        self.head = fixed["gap_linear"].build()

    def forward(self, x):
        return self.head(self.lastact(self.cells(self.stem(x))))
