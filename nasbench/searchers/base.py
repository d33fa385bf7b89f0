"""The searcher protocol and its registry.

The runner (:mod:`nasbench.run.runner`) owns the loop and everything around it; a
searcher owns only its algorithm, in the shape of NNI's Strategy and Optuna's sampler.
It answers a few hooks::

    @register_searcher("mine")
    class Mine(Searcher):
        config_class = MyConfig            # a RunConfig subclass: only its own fields

        def setup(self, ctx): ...          # space, predictor, data, config, log...
        def run_epoch(self, epoch, on_step) -> dict: ...   # one history record
        def result(self) -> Outcome: ...   # the architecture (+ slot logits/weights)

plus ``epochs`` / ``steps_per_epoch`` (for progress), ``visited()`` (what it evaluated,
for the report), ``epoch_line(record)`` (the log line) and ``state_dict()`` /
``load_state_dict()`` (everything needed to resume, mid-epoch included: the runner
saves it with the global RNG states in the run's checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from nasbench.registry import SEARCHERS as _SEARCHERS

#: the searcher registry (:mod:`nasbench.registry`)
SEARCHERS = _SEARCHERS
#: the checkpoint entries the runner writes beside a searcher's state_dict()
RUNNER_KEYS = ("history", "rng", "config", "phase", "epoch", "train", "train_epoch",
               "durations", "wall")


def register_searcher(*names: str):
    """Class decorator that registers a :class:`Searcher` under each of ``names`` (one
    class may serve several methods, e.g. darts and pcdarts); returns the class."""

    def decorate(cls):
        config = cls.config_class
        SEARCHERS.add(names, cls, config=config, kind=getattr(config, "KIND", "one-shot"),
                      summary=(cls.__doc__ or "").strip().split("\n")[0])
        cls.methods = tuple(dict.fromkeys((*getattr(cls, "methods", ()), *names)))
        return cls

    return decorate


def get_searcher(method: str) -> type[Searcher]:
    """Returns the searcher class of ``method``; raises UserError naming the known ones."""
    return SEARCHERS.get(method)


@dataclass
class SearchContext:
    """What the runner hands a searcher in :meth:`Searcher.setup`: the run config, the
    space bound to the deploy network, the predictor of the objective's metrics
    (calibrated LUT), the dataset, the objective's cost metrics and latency target (ms),
    the log, the device handle, ``channels_last`` (CPU: faster convolutions) and, for
    multi-trial searchers, the evaluator."""

    config: Any
    space: Any
    predictor: Any
    data: Any
    metrics: list[str]
    target_ms: float | None
    log: Any
    device: Any
    channels_last: bool = False
    #: multi-trial searchers: the candidate evaluator (:mod:`.evaluate`), else None
    evaluator: Any = None


@dataclass
class Outcome:
    """A searcher's answer: the architecture (the space's value), and where it has them
    the slot logits [slots x candidates] and weights [slots] of its final distribution
    (the expected cost and the hard-target repair's scores use them), and ``cost``."""

    arch: Any
    logits: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)
    #: the cost the searcher itself judged the architecture by ({metric: value}, e.g. a
    #: multi-trial evaluator's); given, the runner checks the target with it and does
    #: not repair (the searcher already filtered by it)
    cost: dict | None = None
    #: the repair's preference [slots x candidates] (positive) when it is not the
    #: logits' (e.g. DARTS-PT's exp(accuracy drop))
    preference: torch.Tensor | None = None

    def scores(self) -> torch.Tensor | None:
        """Returns the repair's preference per slot and candidate (:attr:`preference`,
        else probabilities times slot weights; any per-slot monotone score works), None
        without logits."""
        if self.preference is not None:
            return self.preference.detach().double()
        if self.logits is None:
            return None
        p = torch.softmax(self.logits.detach().double(), -1)
        return p if self.weights is None else p * self.weights.detach().double().unsqueeze(1)


def epoch_lr(optimizer, cfg, epoch: int, total: int | None = None) -> float:
    """Sets ``optimizer``'s learning rate to the one-shot weights' cosine schedule at
    ``epoch`` (``cfg.learning_rate`` down to ``cfg.learning_rate_min`` over ``total``
    epochs, default ``cfg.epochs``); returns it (per step)."""
    from nasbench.train import cosine_lr
    lr = cosine_lr(cfg.learning_rate, cfg.learning_rate_min, epoch, total or cfg.epochs)
    for g in optimizer.param_groups:
        g["lr"] = lr
    return lr


def tally(acc: dict, loss: float, logits: torch.Tensor, y: torch.Tensor) -> None:
    """Adds one training batch to an epoch's running sums (``loss`` x samples,
    ``correct``, ``n``), the figures one-shot searchers report per epoch; in a
    data-parallel run (torchrun) the whole batch's, summed over every rank's slice."""
    from nasbench.distributed import global_sums
    loss_sum, correct, n = global_sums(loss * y.shape[0],
                                       int((logits.argmax(1) == y).sum()), y.shape[0])
    acc["loss"] += loss_sum
    acc["correct"] += int(correct)
    acc["n"] += int(n)


class Searcher:
    """Base class of the searchers (see the module doc)."""

    methods: ClassVar[tuple[str, ...]] = ()
    config_class: ClassVar[type] = object
    #: attributes saved through their own state_dict() (modules, optimisers, loaders)
    stateful: ClassVar[tuple[str, ...]] = ()
    #: attributes saved as they are (torch.save-able values)
    plain_state: ClassVar[tuple[str, ...]] = ("step", "acc")
    #: steps done in the current epoch (progress and resume)
    step: int = 0

    def setup(self, ctx: SearchContext) -> None:
        """Builds the searcher's state for a run (called once, before any resume)."""
        self.ctx = ctx
        self._visited: list[dict] = []

    def bind(self, run_dir) -> None:
        """Called by the runner once the run directory exists (a new run or a resume),
        before a resume's :meth:`load_state_dict`: a searcher that keeps state outside
        the checkpoint (a multi-trial study in its database) opens it here. Default:
        nothing."""

    def close_epoch(self, record: dict, argmax=None) -> dict:
        """Ends an epoch: resets the in-epoch ``step`` and ``acc``, notes the epoch's
        ``argmax`` architecture as visited (one-shot methods); returns ``record``."""
        self.step, self.acc = 0, None
        if argmax is not None:
            self.note_visit(argmax, epoch=record["epoch"], kind="argmax after the epoch")
        return record

    def note_visit(self, arch, **info) -> None:
        """Records an architecture the searcher evaluated (see :meth:`visited`)."""
        self._visited.append({"arch": self.ctx.space.arch_to_dict(arch), **info})

    @property
    def epochs(self) -> int:
        """Returns the number of epochs (history records) of the search."""
        return self.ctx.config.epochs

    @property
    def steps_per_epoch(self) -> int:
        """Returns the steps of one epoch (for progress)."""
        return 1

    def run_epoch(self, epoch: int, on_step) -> dict:
        """Runs (the rest of) epoch ``epoch``, calling ``on_step(step, info)`` after each
        step; returns the epoch's history record (JSON-ready)."""
        raise NotImplementedError

    def epoch_line(self, record: dict) -> str:
        """Returns the log line of a history record."""
        return f"epoch {record.get('epoch', 0) + 1}/{self.epochs}"

    def result(self) -> Outcome:
        """Returns the searched architecture (after the last epoch)."""
        raise NotImplementedError

    def visited(self) -> list[dict]:
        """Returns the architectures the searcher evaluated, as ``{"arch": space JSON,
        "epoch": int, ...}`` records (one-shot methods: the argmax after each epoch)."""
        return list(getattr(self, "_visited", []))

    def state_dict(self) -> dict:
        """Returns everything needed to resume (torch.save-able): by default the
        ``stateful`` attributes' state dicts, the ``plain_state`` attributes and the
        visited list. It is stored beside the runner's own entries
        (:data:`RUNNER_KEYS`), which its keys must avoid; ``step`` is the steps done in
        the current epoch."""
        out = {n: getattr(self, n).state_dict() for n in self.stateful}
        out.update({n: getattr(self, n) for n in self.plain_state})
        return out | {"visited": self.visited()}

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict`."""
        for n in self.stateful:
            getattr(self, n).load_state_dict(state[n])
        for n in self.plain_state:
            setattr(self, n, state[n])
        self._visited = list(state.get("visited", []))
