"""Training and evaluation loops for the derived (evaluation) network.

The retrain follows the DARTS code: SGD with momentum 0.9, cosine learning-rate
schedule over the epochs, gradient clipping at 5, optional auxiliary head (weight
``auxiliary_weight``) and drop path whose probability grows linearly over the epochs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Returns the top-1 accuracy of a batch as a fraction in [0, 1]."""
    return float((logits.argmax(1) == labels).float().mean())


def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, *,
                auxiliary_weight: float = 0.0, grad_clip: float | None = 5.0,
                on_step: Callable[[int, int, float], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict:
    """Trains ``model`` for one pass of ``loader``; returns {"loss": mean cross-entropy
    (nats), "acc": top-1 fraction, "steps": batches done, "complete": whether the pass
    finished (False when ``should_stop`` interrupted it)}."""
    model.train()
    tot_loss = tot_correct = tot_n = steps = 0
    n = len(loader)
    complete = True
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = F.cross_entropy(logits, y)
        if aux is not None and auxiliary_weight > 0:
            loss = loss + auxiliary_weight * F.cross_entropy(aux, y)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        b = y.shape[0]
        tot_loss += float(loss.detach()) * b
        tot_correct += int((logits.detach().argmax(1) == y).sum())
        tot_n += b
        steps += 1
        if on_step:
            on_step(steps, n, float(loss.detach()))
        if should_stop is not None and should_stop():
            complete = False
            break
    return {"loss": tot_loss / max(tot_n, 1), "acc": tot_correct / max(tot_n, 1),
            "steps": steps, "complete": complete}


@torch.no_grad()
def evaluate(model: nn.Module, loader) -> dict:
    """Returns {"loss": mean cross-entropy (nats), "acc": top-1 fraction, "n": images}
    of ``model`` in eval mode over one pass of ``loader``."""
    model.eval()
    tot_loss = tot_correct = tot_n = 0
    for x, y in loader:
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        tot_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        tot_correct += int((logits.argmax(1) == y).sum())
        tot_n += y.shape[0]
    return {"loss": tot_loss / max(tot_n, 1), "acc": tot_correct / max(tot_n, 1), "n": tot_n}


def make_optimizer(model: nn.Module, lr: float, momentum: float = 0.9,
                   weight_decay: float = 3e-4) -> torch.optim.SGD:
    """Returns the DARTS retrain optimiser (SGD with momentum and weight decay)."""
    return torch.optim.SGD(model.parameters(), lr, momentum=momentum,
                           weight_decay=weight_decay)


def cosine_lr(base: float, minimum: float, epoch: int, epochs: int) -> float:
    """Returns the cosine-annealed learning rate of ``epoch`` (0-based) of ``epochs``."""
    import math
    if epochs <= 1:
        return base
    return minimum + 0.5 * (base - minimum) * (1 + math.cos(math.pi * epoch / epochs))


def retrain_parts(net: nn.Module, data, budget, channels_last: bool = False):
    """Returns (network, SGD optimiser, augmented train loader, test loader) for the
    retrain every candidate gets with ``budget`` (a RetrainBudget: the derived network
    and the reference networks train alike)."""
    from .data import TensorLoader
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = make_optimizer(net, budget.learning_rate, budget.momentum, budget.weight_decay)
    tq = TensorLoader(data.train, budget.batch_size, mean=data.mean, std=data.std,
                      augment=data.augment, cutout=budget.cutout, seed=budget.seed + 3,
                      max_steps=budget.max_steps, channels_last=channels_last)
    test_q = TensorLoader(data.test, 256, mean=data.mean, std=data.std, shuffle=False,
                          channels_last=channels_last)
    return net, opt, tq, test_q
