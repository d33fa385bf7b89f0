"""The derived (evaluation) network of the DARTS space: ``NetworkCIFAR`` of the DARTS
paper, built from a :class:`~nasbench.genotypes.Genotype` and the op registry."""

from __future__ import annotations

import torch
from torch import nn

from nasbench.genotypes import Genotype, validate_genotype
from nasbench.ops import Identity
from nasbench.spaces.darts_cells import (
    CellGeometry,
    OpInstance,
    cell_fixed_instances,
    cell_plan,
    edge_instance,
    edge_stride,
    reduction_layers,
)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Returns x with whole samples zeroed with probability ``drop_prob`` (rescaled)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x.div(keep) * mask


class Cell(nn.Module):
    """A discrete cell: two preprocessed inputs, ``len(ops)//2`` nodes each summing two
    op outputs, output the concatenation of ``concat`` states. Every module is built
    from the op instance the space places there (the LUT's keys are these modules)."""

    def __init__(self, genotype: Genotype, c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool, geometry: CellGeometry | None = None):
        super().__init__()
        # the network passes its cell plan's geometry; alone, sizes do not matter
        geometry = geometry or CellGeometry(0, c_pp, c_p, c, 0, 0, reduction, reduction_prev)
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = (i.build() for i in cell_fixed_instances(geometry))
        edges = genotype.reduce if reduction else genotype.normal
        self._concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.multiplier = len(self._concat)
        self._steps = len(edges) // 2
        self._indices = [i for _, i in edges]
        self._ops = nn.ModuleList()
        for name, index in edges:
            self._ops.append(edge_instance(geometry, name, index).build())

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self._steps):
            op1, op2 = self._ops[2 * i], self._ops[2 * i + 1]
            h1 = op1(states[self._indices[2 * i]])
            h2 = op2(states[self._indices[2 * i + 1]])
            if self.training and drop_prob > 0.0:
                if not isinstance(op1, Identity):
                    h1 = drop_path(h1, drop_prob)
                if not isinstance(op2, Identity):
                    h2 = drop_path(h2, drop_prob)
            states.append(h1 + h2)
        return torch.cat([states[i] for i in self._concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """Auxiliary classifier of the DARTS paper, on the 8x8 maps after 2/3 of the cells."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class NetworkCIFAR(nn.Module):
    """The DARTS evaluation network. ``forward`` returns logits, or ``(logits,
    aux_logits)`` in training mode when the auxiliary head is on."""

    def __init__(self, genotype: Genotype, C: int = 36, num_classes: int = 10,
                 layers: int = 20, auxiliary: bool = False, drop_path_prob: float = 0.0,
                 in_channels: int = 3, input_size: int = 32, stem_multiplier: int = 3):
        super().__init__()
        validate_genotype(genotype)
        self.genotype = genotype
        self._auxiliary = auxiliary
        self.drop_path_prob = drop_path_prob
        multiplier = len(genotype.normal_concat)
        if len(genotype.reduce_concat) != multiplier:
            raise ValueError("normal and reduce cells must concatenate the same number of states")
        plan = cell_plan(C, layers, input_size, multiplier, stem_multiplier)
        self.stem = OpInstance("stem", in_channels, stem_multiplier * C, input_size,
                               input_size).build()
        self.cells = nn.ModuleList()
        c_aux = None
        for g in plan:
            cell = Cell(genotype, g.c_prev_prev, g.c_prev, g.c, g.reduction, g.reduction_prev,
                        geometry=g)
            self.cells.append(cell)
            if g.index == reduction_layers(layers)[1]:
                c_aux = multiplier * g.c
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        last = plan[-1]
        self.head = OpInstance("gap_linear", multiplier * last.c, num_classes, last.h_out,
                               last.h_out).build()
        self._aux_index = reduction_layers(layers)[1]

    def forward(self, x):
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_index and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.head(s1)
        if logits_aux is not None:
            return logits, logits_aux
        return logits


def build_network_from_genotype(genotype: Genotype, C: int = 36, num_cells: int = 20,
                                num_classes: int = 10, auxiliary: bool = False,
                                drop_path_prob: float = 0.0, **kwargs) -> NetworkCIFAR:
    """Returns the DARTS evaluation network (CIFAR variant) for ``genotype``."""
    return NetworkCIFAR(genotype, C=C, num_classes=num_classes, layers=num_cells,
                        auxiliary=auxiliary, drop_path_prob=drop_path_prob, **kwargs)


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True) -> int:
    """Returns the number of parameters (the DARTS convention: auxiliary head excluded)."""
    return sum(p.numel() for n, p in model.named_parameters()
               if not (exclude_auxiliary and "auxiliary" in n))


__all__ = ["NetworkCIFAR", "Cell", "AuxiliaryHeadCIFAR", "build_network_from_genotype",
           "count_parameters", "drop_path", "edge_stride"]
