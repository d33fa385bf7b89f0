"""The NAS-Bench-201 search network for DARTS and PC-DARTS (the NAS-Bench-201 paper's
one-shot setting: one cell of 6 mixed edges shared by every cell of the network).

The skeleton (stem, residual blocks between the stages, BN-ReLU, classifier) is the
deploy network's own geometry (:func:`~nasbench.spaces.nb201_cells.fixed_instances` and
:func:`~nasbench.spaces.nb201_cells.stage_plan` at the proxy's channels and cells), so
the supernet and the networks it derives cannot drift apart. Each edge is the DARTS
supernet's :class:`~nasbench.spaces.darts_supernet.MixedOp` over the 5 NAS-Bench-201 ops
(``none`` computed as nothing, the ReLU of the conv ops shared per node). With
``partial_k = K > 1`` (PC-DARTS) an edge runs on 1/K of the channels, and each node
weighs its incoming edges by ``n x softmax(beta)`` over them (n inputs: uniform betas
give the plain sum the derived cell computes).

Given a cell, ``forward(x, arch=cell)`` runs its single path on the shared weights
(SPOS, ENAS): each edge its one op, ``none`` contributing nothing (a node no op feeds is
zeros, as in the derived cell); see :mod:`.supernet`.

Derivation follows the NAS-Bench-201 paper's DARTS: every edge keeps the argmax of its
alphas over all five ops, ``none`` included (a node sums all its edges, so there is no
top-2 rule), with one constraint: the cell must be connected (its output depends on its
input). When the argmax cell is not, the derivation is the connected cell with the
largest summed log-probability (exact: the 15,625 cells are enumerated).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.spaces.darts_supernet import MixedOp, Supernet, channel_shuffle, path_node
from nasbench.spaces.nb201_cells import (
    EDGES,
    NB201_OPS,
    NODES,
    NB201Arch,
    NB201DeployConfig,
    best_cell,
    fixed_instances,
    stage_plan,
)

#: for each node j >= 1, the positions in EDGES of its incoming edges
NODE_EDGES = [[e for e, (_, jj) in enumerate(EDGES) if jj == j] for j in range(1, NODES)]


class NB201SearchCell(nn.Module):
    """The mixed cell: node j = sum over i < j of MixedOp_{i,j}(node i)."""

    def __init__(self, c: int, partial_k: int = 1):
        super().__init__()
        self.k = partial_k
        self.edges = nn.ModuleList(MixedOp(c, 1, NB201_OPS, partial_k) for _ in EDGES)

    def forward(self, x, weights=None, edge_weights=None, path=None):
        """Returns the cell output (the last node): the mixed cell under ``weights``
        [6 x 5] (and PC-DARTS's ``edge_weights`` [6]), or, given ``path`` (an op index
        into NB201_OPS per edge; ``partial_k`` 1), that single cell."""
        k = self.k
        states = [x]
        ins = [x if k == 1 else x[:, :x.shape[1] // k].contiguous()]
        relus = [F.relu(ins[0])]
        for edges in NODE_EDGES:
            if path is not None:
                s = path_node([(self.edges[e], EDGES[e][0], path[e]) for e in edges],
                              ins, relus)
                states.append(s)
                ins.append(s)
                relus.append(F.relu(s))
                continue
            part = rest = None
            for e in edges:
                i = EDGES[e][0]
                w = weights[e] if edge_weights is None else weights[e] * edge_weights[e]
                y = self.edges[e](ins[i], relus[i], w)
                part = y if part is None else part + y
                if k > 1:
                    r = edge_weights[e] * self.edges[e].passthrough(states[i])
                    rest = r if rest is None else rest + r
            s = part if k == 1 else channel_shuffle(torch.cat([part, rest], 1), k)
            states.append(s)
            ins.append(s if k == 1 else s[:, :s.shape[1] // k].contiguous())
            relus.append(F.relu(ins[-1]))
        return states[-1]


class NB201SearchNetwork(Supernet):
    """The NAS-Bench-201 supernet at ``C`` channels and ``N`` cells per stage.

    ``forward(x)`` returns logits. Architecture parameters: ``alphas`` [6 edges x 5 ops]
    and, for PC-DARTS, ``betas`` [6]; the searcher-facing interface is the DARTS
    supernet's (``arch_parameters``, ``weights``, ``arch_weights``, ``slot_logits``,
    ``slot_weights``, ``genotype``)."""

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, in_channels: int = 3,
                 input_size: int = 32, partial_k: int = 1):
        super().__init__()
        self.primitives, self.partial_k = list(NB201_OPS), partial_k
        self._hparams = dict(C=C, N=N, num_classes=num_classes, in_channels=in_channels,
                             input_size=input_size, partial_k=partial_k)
        geo = NB201DeployConfig(channels=C, cells=N, input_size=input_size,
                                in_channels=in_channels, num_classes=num_classes)
        fixed = fixed_instances(geo)
        blocks = [i for i in fixed if i.op == "resnet_block"]
        by_op = {i.op: i for i in fixed}
        self.stem = by_op["stem"].build()
        layers: list[nn.Module] = []
        for st in stage_plan(geo):
            if st.index:
                layers.append(blocks[st.index - 1].build())
            layers += [NB201SearchCell(st.c, partial_k) for _ in range(st.cells)]
        self.cells = nn.ModuleList(layers)
        self.lastact = by_op["bn_relu"].build()
        self.head = by_op["gap_linear"].build()
        self.alphas = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(NB201_OPS)))
        self.betas = nn.Parameter(1e-3 * torch.randn(len(EDGES))) if partial_k > 1 else None

    def new(self) -> NB201SearchNetwork:
        """Returns a fresh network of the same shape, with this one's alphas copied."""
        other = NB201SearchNetwork(**self._hparams)
        for a, b in zip(other.arch_parameters(), self.arch_parameters(), strict=True):
            a.data.copy_(b.data)
        return other

    def arch_parameters(self) -> list[nn.Parameter]:
        """Returns the architecture parameters (alphas, then PC-DARTS's betas)."""
        return [self.alphas] + ([self.betas] if self.betas is not None else [])

    def edge_weights(self) -> torch.Tensor | None:
        """Returns PC-DARTS's edge weights [6]: n x softmax(beta) over each node's n
        inputs (1 for uniform betas); None for DARTS."""
        if self.betas is None:
            return None
        out = torch.empty_like(self.betas)
        for edges in NODE_EDGES:
            out[edges] = len(edges) * F.softmax(self.betas[edges], -1)
        return out

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Returns ``cell``: softmax(alphas) [6 x 5] and, for PC-DARTS, ``edge_cell``."""
        out = {"cell": F.softmax(self.alphas, dim=-1)}
        if self.betas is not None:
            out["edge_cell"] = self.edge_weights()
        return out

    def slot_logits(self) -> torch.Tensor:
        """Returns the cost table's slot logits: the alphas [6 edges x 5 ops]."""
        return self.alphas

    def slot_weights(self) -> torch.Tensor | None:
        """Returns the cost table's slot weights: None (every edge is kept in the derived
        cell, whatever PC-DARTS's betas say)."""
        return None

    def forward(self, x, arch=None):
        """Returns the logits of the mixed network under the alphas, or, given ``arch``
        (an NB201Arch), of that cell's single path on the shared weights."""
        if arch is not None:
            w, ew, path = None, None, self.path_of(arch)["cell"]
        else:
            w, ew, path = F.softmax(self.alphas, dim=-1), self.edge_weights(), None
        s = self.stem(x)
        for layer in self.cells:
            s = layer(s, w, ew, path) if isinstance(layer, NB201SearchCell) else layer(s)
        return self.head(self.lastact(s))

    def path_of(self, arch) -> dict:
        """Returns the single path of a cell: ``{"cell": [op index into NB201_OPS per
        edge]}``; raises ValueError for a PC-DARTS network or an unknown op."""
        if self.partial_k > 1:
            raise ValueError("single paths need a DARTS supernet (partial_k 1)")
        if len(arch.ops) != len(EDGES):
            raise ValueError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got "
                             f"{len(arch.ops)}")
        return {"cell": [self.primitives.index(op) for op in arch.ops]}

    def derive(self, scores: torch.Tensor) -> NB201Arch:
        """Returns the connected cell with the largest summed ``scores`` [6 x 5] (e.g.
        DARTS-PT's accuracy drops)."""
        return best_cell(scores)

    def genotype(self) -> NB201Arch:
        """Returns the derived cell: the most likely connected cell under the alphas
        (each edge's argmax op, ``none`` included, when that cell is connected; else
        the connected cell of the largest summed log-probability)."""
        with torch.no_grad():
            return best_cell(F.log_softmax(self.alphas.double(), -1))
