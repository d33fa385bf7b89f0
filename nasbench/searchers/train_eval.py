"""``--evaluate train``: each multi-trial candidate is trained for real and scored.

A candidate is the space's deploy network (built at the run's training input, e.g.
16x16 for digits), trained with the run's retrain budget (``train_epochs``,
``train_max_steps``, ``train_batch_size``, ``train_learning_rate``, ...: the runner's
own retrain, :func:`nasbench.train.train_candidate`) on the training half of the
training split, and scored by its top-1 accuracy (%) on the other half (the same
split the one-shot searchers use: ``train_portion``, ``seed``). The test split is never
seen by the search.

Results are cached on disk (``<cache dir>/train-eval/<key>.json``, the cache dir being
``$NASBENCH_CACHE_DIR`` or the user cache folder) under a key of the architecture's
stable id, the space's deploy network, the data set, the budget, the split and the
seed (and torch's version): a later run with the same settings reuses a candidate's
accuracy without training it. Costs come from the run's cost function
(:func:`~nasbench.searchers.evaluate.run_cost`).

Counters: ``queries`` distinct architectures answered in this run, ``trained`` those
trained here, ``cache_hits`` answers that cost no training (the on-disk cache, or a
repeat within the run), ``stopped`` candidates stopped early by a pruner.

Early stopping (``--pruner``, :mod:`.pruning`): ``evaluator(arch, report)`` measures the
candidate's held-out accuracy after every epoch but the last and calls ``report(epoch,
accuracy %)`` (epoch 1-based); what ``report`` raises (``optuna.TrialPruned``) stops the
training and propagates, and a stopped candidate is neither cached on disk nor in the
run (a later run without a pruner trains it fully). The last epoch is not reported:
stopping there would save nothing and throw a fully trained result away; its accuracy
is the answer, as without a reporter (the same number: evaluating between epochs does
not change the training). A candidate answered from the cache is returned as is,
``report`` uncalled (its full accuracy is known: stopping it would save nothing).
Without ``report`` nothing is evaluated between epochs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from nasbench.errors import UserError, read_state
from nasbench.searchers.evaluate import register_evaluator, run_cost
from profilers.lut import atomic_write_text

CACHE_FOLDER = "train-eval"
#: held-out images the per-epoch accuracy of ``--pruner`` is measured on (the answer,
#: after the last epoch, is on all of them)
REPORT_IMAGES = 512


def _pruned(e: BaseException) -> bool:
    """Returns whether ``e`` is Optuna's TrialPruned (a pruner stopped the candidate)."""
    from optuna import TrialPruned
    return isinstance(e, TrialPruned)


@register_evaluator("train")
class TrainEvaluator:
    """Trains each candidate with the run's retrain budget and returns its held-out
    validation accuracy (see the module doc): ``evaluator(arch) -> {"accuracy": %,
    "cost": {metric: value}, "cached": bool}``, ``cost(arch)``, ``state_dict`` /
    ``load_state_dict``. ``space`` is bound to the network to train (the deploy network
    at the data's input size); ``cfg`` gives the budget, split and seed.
    ``evaluator(arch, report)``: stopped early when ``report`` raises (module doc)."""

    #: takes ``report(epoch, accuracy)`` and stops a candidate early (``--pruner``)
    prunable = True

    def __init__(self, cfg, space, data, cost: Callable[[object], dict], *,
                 channels_last: bool = False, log=None, cache_dir: Path | None = None):
        self.cfg, self.space, self.cost = cfg, space, cost
        self.channels_last, self.log = channels_last, log or (lambda *_: None)
        train, val = data.search_splits(cfg.train_portion, cfg.seed)
        # the runner's retrain reads .train and evaluates .test: here the held-out half
        self.data = dataclasses.replace(data, train=train, test=val)
        self.val_n = len(val)
        if cache_dir is None:
            from nasbench.luts import cache_dir as user_cache
            cache_dir = user_cache()
        self.folder = Path(cache_dir) / CACHE_FOLDER
        self.ident = {"space": space.describe(), "data": data.describe(),
                      "budget": dataclasses.asdict(cfg.retrain_budget()),
                      "build": cfg.train_build_options(), "portion": cfg.train_portion,
                      "split_seed": cfg.seed, "torch": torch.__version__}
        self.cache: dict[str, dict] = {}
        self.queries = self.trained = self.cache_hits = self.stopped = 0

    @classmethod
    def check_config(cls, cfg) -> None:
        """Raises UserError (one line) when the run's budget trains nothing."""
        if cfg.train_epochs < 1:
            raise UserError("--evaluate train trains every candidate with the run's "
                            "retrain budget: give --train-epochs 1 or more")

    @classmethod
    def from_run(cls, cfg, ctx) -> TrainEvaluator:
        """Returns the train evaluator of a run: the space's deploy network at the data's
        input size, the run's data, budget and seed; cost: :func:`run_cost`."""
        cls.check_config(cfg)
        deploy = ctx.space.deploy
        if getattr(deploy, "input_size", None) not in (None, ctx.data.input_size):
            deploy = dataclasses.replace(deploy, input_size=ctx.data.input_size)
        space = type(ctx.space)(deploy)
        return cls(cfg, space, ctx.data, run_cost(ctx), channels_last=ctx.channels_last,
                   log=lambda line: ctx.log(line))      # the run's log once it is open

    @property
    def signal(self) -> str:
        """Returns what the search sees, in words."""
        return (f"validation accuracy after training each candidate "
                f"({self.cfg.retrain_budget().describe()}) on {len(self.data.train)} "
                f"training images, on {self.val_n} held-out training images (not the "
                f"test split)")

    def key(self, arch) -> str:
        """Returns the cache key of ``arch`` under this run's settings (24 hex digits of
        a sha256): architecture id, network, data set, budget, split, seed, torch."""
        ident = {**self.ident, "arch": self.space.arch_id(arch)}
        text = json.dumps(ident, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def _read(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.is_file():
            return None

        def reader(p):
            rec = json.loads(Path(p).read_text())
            float(rec["accuracy"])                   # a record without one is damaged
            return rec

        return read_state(path, reader, "train-evaluator cache entry",
                          "delete it and the candidate is trained again")

    def _write(self, key: str, rec: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._path(key), json.dumps(rec, indent=1) + "\n")

    def accuracy(self, arch, report: Callable[[int, float], None] | None = None) -> dict:
        """Trains ``arch`` and returns {"accuracy": held-out top-1 %, "val_n": images,
        "steps": training steps, "seconds"} (uncounted, uncached). With ``report``, the
        held-out accuracy after each epoch but the last goes to ``report(epoch, %)``;
        what it raises stops the training and propagates."""
        from nasbench.train import eval_loader, evaluate, train_candidate
        t0 = time.time()
        on_epoch = None
        if report is not None:
            # a fixed share of the held-out half: with short epochs a full pass after
            # each one costs more training time than the pruner saves (measured: 15
            # steps of 32 images an epoch against 1,864 held-out images)
            part = self.data.test
            if len(part) > REPORT_IMAGES:
                part = part.subset(torch.arange(REPORT_IMAGES))
            held_out = eval_loader(dataclasses.replace(self.data, test=part),
                                   self.channels_last)
            last = self.cfg.train_epochs

            def on_epoch(epoch, net):
                if epoch < last:            # the last one is the answer (module doc)
                    report(epoch, 100.0 * evaluate(net, held_out)["acc"])

        net, val_q, history = train_candidate(self.cfg, self.data, self.space, arch,
                                              self.channels_last, on_epoch=on_epoch)
        ev = evaluate(net, val_q)
        return {"accuracy": 100.0 * ev["acc"], "val_n": ev["n"],
                "steps": sum(h.get("steps", 0) for h in history),
                "seconds": time.time() - t0}

    def __call__(self, arch, report: Callable[[int, float], None] | None = None) -> dict:
        """Returns {"accuracy": held-out %, "cost": {metric: value}, "cached": bool} of
        ``arch``: from this run's answers or the disk cache (``report`` uncalled), else
        trained (``report``: per-epoch accuracies; what it raises propagates, nothing
        cached, counted in ``stopped``)."""
        key = self.key(arch)
        if key in self.cache:                         # a repeat within this run
            self.cache_hits += 1
            return {**self.cache[key], "cached": True}
        rec = self._read(key)
        summary = self.space.summary(arch)
        if rec is not None:
            self.cache_hits += 1
            self.log(f"train evaluator: {summary}: {rec['accuracy']:.2f} % (cached in "
                     f"{self._path(key)})")
        else:
            try:
                trained = self.accuracy(arch) if report is None else \
                    self.accuracy(arch, report)
            except Exception as e:
                if report is not None and _pruned(e):
                    self.stopped += 1
                    self.log(f"train evaluator: {summary}: stopped early ({e})")
                raise
            rec = {**trained, "arch": self.space.arch_to_dict(arch),
                   "arch_id": self.space.arch_id(arch), "settings": self.ident}
            self._write(key, rec)
            self.trained += 1
            self.log(f"train evaluator: {summary}: {rec['accuracy']:.2f} % on "
                     f"{rec['val_n']} held-out images after {rec['steps']} steps "
                     f"({rec['seconds']:.1f} s)")
        self.queries += 1
        out = {"accuracy": float(rec["accuracy"]), "cost": self.cost(arch)}
        self.cache[key] = out
        return {**out, "cached": False}

    def state_dict(self) -> dict:
        """Returns the run's answers and counters (resume)."""
        return {"cache": dict(self.cache), "queries": self.queries,
                "trained": self.trained, "cache_hits": self.cache_hits,
                "stopped": self.stopped}

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict`."""
        self.cache = dict(state["cache"])
        self.queries, self.cache_hits = state["queries"], state["cache_hits"]
        self.trained = state.get("trained", 0)
        self.stopped = state.get("stopped", 0)
