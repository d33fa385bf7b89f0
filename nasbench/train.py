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

from nasbench.progress import Progress


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
    from nasbench.data import TensorLoader
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = make_optimizer(net, budget.learning_rate, budget.momentum, budget.weight_decay)
    tq = TensorLoader(data.train, budget.batch_size, mean=data.mean, std=data.std,
                      augment=data.augment, cutout=budget.cutout, seed=budget.seed + 3,
                      max_steps=budget.max_steps, channels_last=channels_last)
    return net, opt, tq, eval_loader(data, channels_last)


def eval_loader(data, channels_last: bool = False):
    """Returns the loader the retrain evaluates on: ``data.test`` in batches of 256,
    unshuffled and unaugmented."""
    from nasbench.data import TensorLoader
    return TensorLoader(data.test, 256, mean=data.mean, std=data.std, shuffle=False,
                        channels_last=channels_last)


def retrain(cfg, data, space, arch, cl, state, prog, objs, interrupt_check, save_checkpoint,
             log):
    """Retrains the derived network with the run's budget (resumable mid-epoch); returns
    (network, test loader, retrain history)."""
    with torch.random.fork_rng():       # leave the global RNG stream untouched (resume)
        torch.manual_seed(cfg.seed)
        net = space.build(arch, **cfg.train_build_options()).train()
    net, opt, tq, test_q = retrain_parts(net, data, cfg.retrain_budget(), cl)
    tr = state.get("train") or {}
    objs.update(net=net, opt=opt, loader=tq, steps=0)
    if "model" in tr:
        net.load_state_dict(tr["model"])
        opt.load_state_dict(tr["opt"])
        tq.load_state_dict(tr["loader"])
    tr_history = tr.get("history", [])
    if state["phase"] != "train" or cfg.train_epochs <= 0:
        return net, test_q, tr_history
    ep_task = prog.task("retrain epochs", cfg.train_epochs, state["train_epoch"])
    st_task = prog.task("steps", len(tq))

    def on_step(i, n, loss):
        objs["steps"] += 1
        prog.update(st_task, advance=1, info=f"loss {loss:.3f}")
        interrupt_check()

    while state["train_epoch"] < cfg.train_epochs:
        e = state["train_epoch"]
        lr = cosine_lr(cfg.train_learning_rate, 0.0, e, cfg.train_epochs)
        for g in opt.param_groups:
            g["lr"] = lr
        extra = cfg.retrain_epoch(net, e)
        prog.reset(st_task, len(tq), tq._cursor if tq._cursor < len(tq) else 0,
                   description=f"retrain {e + 1}/{cfg.train_epochs}")
        if tr.pop("mid_epoch", False) and tq._cursor >= len(tq):
            # interrupted right after the epoch's last step: close it as is
            stats = {"loss": None, "acc": None, "steps": 0, "complete": True}
        else:
            stats = train_epoch(net, tq, opt, grad_clip=cfg.grad_clip, on_step=on_step,
                                **extra)
        tr_history.append({"epoch": e, "lr": lr, **stats})
        if stats["loss"] is not None:
            log(f"retrain epoch {e + 1}/{cfg.train_epochs}: loss {stats['loss']:.4f} "
                f"acc {100 * stats['acc']:.2f} %")
        state["train_epoch"] = e + 1
        state["train"] = {"model": net.state_dict(), "opt": opt.state_dict(),
                          "loader": tq.state_dict(), "history": tr_history}
        save_checkpoint()
        objs["steps"] = 0
        prog.update(ep_task, completed=state["train_epoch"])
    return net, test_q, tr_history


def train_candidate(cfg, data, space, arch, channels_last: bool = False, log=None,
                    on_epoch: Callable[[int, nn.Module], None] | None = None):
    """Trains ``arch`` as the runner retrains its derived network (:func:`retrain`: the
    same build, budget, schedule and seed), without progress bars or checkpoints, on
    ``data.train``; returns (network, loader of ``data.test``, history). The ``train``
    evaluator passes a data set whose "test" split is a held-out part of the training
    split. ``on_epoch(epoch, network)``, when given, is called after each epoch (1-based)
    with the network as trained so far; what it raises ends the training (to stop a
    candidate early). It may evaluate the network (eval mode, no gradients): training
    goes on as if it had not been called."""
    state = {"phase": "train", "train_epoch": 0, "train": None}
    objs: dict = {}

    def epoch_done():                  # retrain's checkpoint hook: after every epoch
        if on_epoch is not None:
            on_epoch(state["train_epoch"], objs["net"])

    return retrain(cfg, data, space, arch, channels_last, state, Progress(True), objs,
                   lambda: None, epoch_done, log or (lambda *_: None))
