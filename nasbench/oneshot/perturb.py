"""DARTS-PT's perturbation-based selection (Wang et al., ICLR 2021).

The magnitude of an architecture weight does not say how much its op matters to the
supernet: the parameter-free ops (skip, pooling, ``none``) gain weight because they
make the mixture easy to optimise, not because the network needs them. DARTS-PT asks the
supernet instead: remove one op from one edge and measure how much the supernet's
validation accuracy drops. The op whose removal hurts most is the edge's choice.

Here every (edge, op) is scored once against the trained supernet (no progressive
fine-tuning between edge decisions, the paper's cheaper variant), and the space derives
the best valid cell from the scores (:meth:`derive` of the supernet).
"""

from __future__ import annotations

import torch
from torch import nn


def slot_parameters(model) -> list[nn.Parameter]:
    """Returns the architecture parameters whose rows are the cost table's slots (those
    :meth:`slot_logits` concatenates: 2-D, one column per candidate)."""
    n = model.slot_logits().shape[-1]
    return [p for p in model.arch_parameters() if p.dim() == 2 and p.shape[-1] == n]


@torch.no_grad()
def perturbation_scores(model, batches) -> torch.Tensor:
    """Returns [slots x candidates] float64: the drop of the supernet's accuracy
    (percentage points, on ``batches`` of (images, labels), BatchNorm on batch
    statistics) when each candidate of each slot is removed (its logit set to -inf, the
    others renormalised). Positive: the op matters. The supernet is left as it was."""
    params = slot_parameters(model)
    base = model.path_accuracy(None, batches)
    rows = []
    for p in params:
        saved = p.data.clone()
        out = torch.zeros(p.shape, dtype=torch.float64)
        for s in range(p.shape[0]):
            for o in range(p.shape[1]):
                p.data[s, o] = float("-inf")
                out[s, o] = base - model.path_accuracy(None, batches)
                p.data.copy_(saved)
        rows.append(out)
    return torch.cat(rows)
