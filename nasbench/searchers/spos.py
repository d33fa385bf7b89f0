"""SPOS (Guo et al., ECCV 2020) as an evaluator: ``--evaluate supernet``.

The run's space's supernet (``space.supernet``, DARTS cells or NAS-Bench-201's, at
``supernet_channels`` / ``supernet_layers``) is trained once per run with uniformly
sampled single paths (``space.sample``: one architecture per step, only its ops run and
learn) on the train half of the run's data, ``supernet_epochs`` epochs of at most
``supernet_steps`` batches, SGD at ``supernet_lr`` cosine to 0 over the steps (momentum
and weight decay of the run). A candidate is then answered with inherited weights: its
BatchNorm statistics are recomputed on the first ``bn_batches`` training batches (as
SPOS does: the running statistics of a supernet are a mixture over paths), and its
top-1 accuracy (%) on the validation half is the search signal; the answers are cached
by architecture. Costs come from the run's cost function (:func:`.evaluate.run_cost`).

The training is chunked into atomic steps (``prepare(on_step)``, called by the
multi-trial loop before its first proposal): a Ctrl-C mid-training checkpoints the
evaluator's state (supernet, optimiser, loader position, path sampler, steps done) with
the run and a resume continues where it stopped. A process that asks for an accuracy
before training (a ``nasbench worker`` joining the study) trains its own copy first, from
the same seed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import torch

from nasbench.errors import UserError
from nasbench.files import deferred_interrupt
from nasbench.oneshot.architect import weight_step
from nasbench.searchers.evaluate import register_evaluator, run_cost
from nasbench.train import cosine_lr


@register_evaluator("supernet")
class SupernetEvaluator:
    """A SPOS supernet as a multi-trial evaluator (see the module doc): ``evaluator(arch)
    -> {"accuracy": %, "cost": {metric: value}, "cached": bool}``, ``cost(arch)``,
    ``queries`` and ``cache_hits``, ``prepare(on_step)`` (the training) and
    ``state_dict``/``load_state_dict``."""

    def __init__(self, space, data, cost: Callable[[object], dict], *, channels: int = 8,
                 layers: int = 2, epochs: int = 3, steps: int | None = 20,
                 lr: float = 0.05, batch_size: int = 32, momentum: float = 0.9,
                 weight_decay: float = 3e-4, grad_clip: float | None = 5.0,
                 train_portion: float = 0.5, seed: int = 0, bn_batches: int = 4,
                 val_batches: int | None = None, eval_batch: int = 256,
                 channels_last: bool = False, log=None):
        from nasbench.data import TensorLoader
        self.space, self.cost, self.log = space, cost, log or (lambda *_: None)
        self.grad_clip = grad_clip
        model = space.supernet(channels, layers, 1, num_classes=data.num_classes,
                               in_channels=data.in_channels, input_size=data.input_size)
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        self.opt = torch.optim.SGD(self.model.weights(), lr, momentum=momentum,
                                   weight_decay=weight_decay)
        self.lr = lr
        train_half, val_half = data.search_splits(train_portion, seed)
        kw = dict(mean=data.mean, std=data.std, channels_last=channels_last)
        self.train_q = TensorLoader(train_half, batch_size, augment=data.augment,
                                    seed=seed + 1, max_steps=steps, **kw)
        # fixed batches: every candidate is calibrated and scored on the same images
        self.calibrate = list(TensorLoader(train_half, batch_size, shuffle=False,
                                           max_steps=bn_batches, **kw))
        self.val = list(TensorLoader(val_half, eval_batch, shuffle=False,
                                     max_steps=val_batches, **kw))
        self.val_n = sum(int(y.shape[0]) for _, y in self.val)
        self.total = epochs * len(self.train_q)
        self.sampler = random.Random(seed + 5)
        self.size = {"channels": channels, "layers": layers, "epochs": epochs,
                     "steps_per_epoch": len(self.train_q), "bn_batches": bn_batches}
        self.trained, self.train_loss, self.seconds = 0, [], 0.0
        self.cache: dict[str, dict] = {}
        self.queries = self.cache_hits = 0

    @classmethod
    def check_config(cls, cfg) -> None:
        """Raises UserError (one line) for settings the evaluator cannot run, before any
        work (a space without a DARTS-style supernet, a size or budget out of range)."""
        from nasbench.spaces.base import get_space, supernet_spaces
        if not get_space(cfg.space).has_supernet():
            raise UserError(f"--evaluate supernet trains single paths of a DARTS-style "
                            f"supernet (--space {' or '.join(supernet_spaces())}); the "
                            f"{cfg.space} space has none")
        # the sizes, budget and learning rate are declared options (trials_config.py)
        least = get_space(cfg.space).supernet_min_layers
        if cfg.supernet_layers is not None and cfg.supernet_layers < least:
            raise UserError(f"--supernet-layers must be at least {least} on the {cfg.space} "
                            f"space, got {cfg.supernet_layers}")

    @classmethod
    def from_run(cls, cfg, ctx) -> SupernetEvaluator:
        """Returns the SPOS evaluator of a run: the space's supernet at
        ``cfg.supernet_channels``/``supernet_layers`` (None: C=8 with nb201's N=2 cells
        per stage, or 5 DARTS cells), trained on ``ctx.data`` for ``supernet_epochs`` x
        ``supernet_steps`` at ``supernet_lr`` (batch, momentum, weight decay, grad clip,
        train portion and seed of the run); cost: :func:`run_cost`."""
        if ctx.data is None:
            raise UserError("--evaluate supernet trains a supernet on the run's images: "
                            "it needs a data set")
        cls.check_config(cfg)
        layers = cfg.supernet_layers or type(ctx.space).supernet_default_layers
        return cls(ctx.space, ctx.data, run_cost(ctx), channels=cfg.supernet_channels,
                   layers=layers, epochs=cfg.supernet_epochs, steps=cfg.supernet_steps,
                   lr=cfg.supernet_lr, batch_size=cfg.batch_size, momentum=cfg.momentum,
                   weight_decay=cfg.train_weight_decay, grad_clip=cfg.grad_clip,
                   train_portion=cfg.train_portion, seed=cfg.seed,
                   channels_last=ctx.channels_last,
                   log=lambda line: ctx.log(line))   # the run's log once it is open

    @property
    def signal(self) -> str:
        """Returns what the search sees, in words."""
        s = self.size
        return (f"validation accuracy with inherited weights of a SPOS supernet (C="
                f"{s['channels']}, {s['layers']} layers, {s['epochs']} epochs x "
                f"{s['steps_per_epoch']} steps; BatchNorm recalibrated on "
                f"{s['bn_batches']} batches; {self.val_n} images)")

    def prepare(self, on_step=None) -> None:
        """Trains the supernet to its budget (nothing once trained), one atomic step at a
        time (a uniformly sampled path, one SGD step at the step's cosine rate), calling
        ``on_step(step, info)`` after each (the runner's: progress and Ctrl-C)."""
        if self.trained >= self.total:
            return
        if self.trained == 0:
            self.log(f"training the SPOS supernet: {self.total} steps of single paths")
        self.model.train()
        while self.trained < self.total:
            t0 = time.time()
            with deferred_interrupt():
                for g in self.opt.param_groups:
                    g["lr"] = cosine_lr(self.lr, 0.0, self.trained, self.total)
                x, y = next(iter(self.train_q))
                arch = self.space.sample_valid(self.sampler)
                loss, _ = weight_step(self.model, self.opt, x, y, self.grad_clip, arch=arch)
                self.train_loss.append(loss)
                self.trained += 1
                self.seconds += time.time() - t0
            n = len(self.train_q)
            if self.trained % n == 0:
                tail = self.train_loss[-n:]
                self.log(f"SPOS supernet epoch {self.trained // n}/{self.total // n}: loss "
                         f"{sum(tail) / n:.3f}")
            if on_step is not None:
                on_step(self.trained, f"supernet step {self.trained}/{self.total} loss "
                                      f"{loss:.3f}")
        self.log(f"SPOS supernet trained: {self.total} steps in {self.seconds:.0f} s")

    def accuracy(self, arch) -> float:
        """Returns the search signal of ``arch`` (validation accuracy, %, uncounted and
        uncached): the trained supernet's path with recalibrated BatchNorm."""
        self.prepare()
        return self.model.path_accuracy(arch, self.val, calibrate=self.calibrate)

    def __call__(self, arch) -> dict:
        key = self.space.arch_id(arch)
        if key in self.cache:
            self.cache_hits += 1
            return {**self.cache[key], "cached": True}
        out = {"accuracy": self.accuracy(arch), "cost": self.cost(arch)}
        self.queries += 1
        self.cache[key] = out
        return {**out, "cached": False}

    def state_dict(self) -> dict:
        """Returns the supernet, its optimiser, the loader's position, the path
        sampler's state, the steps done, the cache and the counters (resume)."""
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "train_q": self.train_q.state_dict(), "sampler": self.sampler.getstate(),
                "trained": self.trained, "train_loss": list(self.train_loss),
                "seconds": self.seconds, "cache": dict(self.cache),
                "queries": self.queries, "cache_hits": self.cache_hits}

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.train_q.load_state_dict(state["train_q"])
        self.sampler.setstate(state["sampler"])
        self.trained, self.train_loss = state["trained"], list(state["train_loss"])
        self.seconds = state["seconds"]
        self.cache = dict(state["cache"])
        self.queries, self.cache_hits = state["queries"], state["cache_hits"]
