"""Multi-trial search on Optuna: the loop every sampler-based searcher shares.

A multi-trial searcher is an Optuna study over the space's categorical encoding
(``space.choices()``): each trial asks the sampler for one value per decision, decodes
the architecture, filters it by the hard cost target (a candidate over the target by
the cost function is never evaluated: the trial is pruned and costs no query), asks the
run's evaluator (:mod:`.evaluate`) for its accuracy and cost, and tells the study. A
subclass only names its sampler (:meth:`TrialSearcher.sampler`) - Optuna's sampler
protocol is the strategy hook.

The budget is ``trials`` distinct evaluations (the evaluator's query cache answers a
repeated architecture for free and counts it as a cache hit); ``trials_per_epoch`` of
them form one history record and checkpoint. The result is the visited architecture
with the best accuracy among those meeting the target (the cheapest one, marked as
missing it, when none does); with a soft target and one objective, the best value
(accuracy x (latency / target)^-0.07, MnasNet's soft reward).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

from ..errors import UserError
from ..run.config import RunConfig
from .base import Outcome, SearchContext, Searcher

#: trials (asks) allowed per distinct query before the loop gives up (a sampler that
#: keeps proposing cached or over-target cells)
ASK_FACTOR = 20


@dataclass
class TrialConfig(RunConfig):
    """The multi-trial settings on top of :class:`~nasbench.run.config.RunConfig`:
    ``trials`` (distinct evaluations), ``trials_per_epoch`` (one history record and
    checkpoint each), the evaluator (``table``: NAS-Bench-201's accuracy at
    ``fidelity`` epochs, needs ``benchmark_dir``)."""

    METHODS: ClassVar[tuple[str, ...]] = ("random", "evolution", "tpe", "nsga2")

    method: str = "random"
    space: str = "nb201"
    trials: int = 100
    trials_per_epoch: int = 25
    evaluate: str = "table"
    fidelity: int = 12
    population: int = 50                  # evolution, nsga2
    sample_size: int = 10                 # evolution's tournament
    soft_exponent: float = -0.07          # soft target: acc x (lat/target)^w (MnasNet)
    references: str = ""
    train_epochs: int = 0

    def validate(self) -> None:
        super().validate()
        from .evaluate import EVALUATORS
        if not 1 <= self.sample_size <= self.population:
            raise UserError(f"--sample-size must be in 1..population ({self.population}), "
                            f"got {self.sample_size}")
        for name in ("trials", "trials_per_epoch"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be positive, got "
                                f"{getattr(self, name)}")
        if self.evaluate not in EVALUATORS:
            raise UserError(f"--evaluate must be one of {', '.join(EVALUATORS)}, got "
                            f"{self.evaluate!r}")
        if self.evaluate == "table" and (self.space != "nb201" or not self.benchmark_dir):
            raise UserError("--evaluate table reads NAS-Bench-201's accuracies: use "
                            "--space nb201 and --benchmark-dir")

    def deploy(self, num_classes: int = 10, in_channels: int = 3):
        """Returns the space's default deploy network at the run's input, classes and
        batch (nb201: NAS-Bench-201's C=16, N=5)."""
        import dataclasses

        from ..spaces import get_space
        d = get_space(self.space).default_deploy()
        want = {"input_size": self.input_size or 32, "num_classes": num_classes,
                "in_channels": in_channels, "batches": (self.deploy_batch,)}
        names = {f.name for f in dataclasses.fields(d)}
        return dataclasses.replace(d, **{k: v for k, v in want.items() if k in names})

    def headline(self) -> str:
        return f"{self.method} ({self.trials} trials, {self.evaluate} evaluator)"


class TrialSearcher(Searcher):
    """Base of the Optuna searchers (see the module doc); subclasses define
    :meth:`sampler`."""

    config_class = TrialConfig
    plain_state = ("step", "acc", "study", "asks")
    #: accuracy and each cost as separate objectives (NSGA-II), else one value
    multi_objective = False

    def sampler(self, seed: int):
        """Returns the Optuna sampler (the strategy) for a run seeded ``seed``."""
        raise NotImplementedError

    def setup(self, ctx: SearchContext) -> None:
        import optuna
        super().setup(ctx)
        if getattr(ctx, "evaluator", None) is None:
            raise UserError(f"--method {ctx.config.method} needs an evaluator "
                            f"(--evaluate table with --space nb201 --benchmark-dir)")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        dirs = ["maximize"] + (["minimize"] * len(self.cost_metrics)
                               if self.multi_objective else [])
        self.study = optuna.create_study(directions=dirs,
                                         sampler=self.sampler(ctx.config.seed))
        self.choices = ctx.space.choices()
        self.step, self.acc, self.asks = 0, None, 0

    @property
    def epochs(self) -> int:
        cfg = self.ctx.config
        return math.ceil(cfg.trials / cfg.trials_per_epoch)

    @property
    def steps_per_epoch(self) -> int:
        return self.ctx.config.trials_per_epoch

    @property
    def cost_metrics(self) -> list[str]:
        """Returns the objective's cost metrics (at least latency)."""
        return list(self.ctx.metrics) or ["latency"]

    def values(self, res: dict, cost: dict):
        """Returns what the study is told for an evaluated candidate: [accuracy, costs...]
        (multi-objective), else the accuracy, times (lat/target)^w with a soft target
        (MnasNet's soft form)."""
        acc = res["accuracy"]
        if self.multi_objective:
            return [acc] + [cost.get(m) if cost.get(m) is not None else float("inf")
                            for m in self.cost_metrics]
        t, lat = self.ctx.target_ms, cost.get("latency")
        if t is not None and not self.ctx.config.hard_target and lat:
            return acc * (lat / t) ** self.ctx.config.soft_exponent
        return acc

    def _over_target(self, cost: dict) -> bool:
        t = self.ctx.target_ms
        lat = cost.get("latency")
        return t is not None and self.ctx.config.hard_target and lat is not None and lat > t

    def ask(self):
        """Returns (trial, architecture) of the sampler's next proposal."""
        trial = self.study.ask()
        values = {k: trial.suggest_categorical(k, v) for k, v in self.choices.items()}
        return trial, self.ctx.space.decode(values)

    def run_epoch(self, epoch: int, on_step) -> dict:
        from optuna.trial import TrialState
        cfg, ev = self.ctx.config, self.ctx.evaluator
        acc = self.acc = self.acc or {"t0": time.time(), "pruned": 0, "evaluated": 0,
                                      "unmeasured": 0}
        goal = min(cfg.trials_per_epoch, cfg.trials - epoch * cfg.trials_per_epoch)
        while self.step < goal:
            if self.asks >= ASK_FACTOR * cfg.trials:
                self.ctx.log(f"stopping early: {self.asks} proposals gave only "
                             f"{ev.queries} distinct cells within the target")
                break
            self.asks += 1
            trial, arch = self.ask()
            cost = ev.cost(arch)
            if self._over_target(cost):        # never evaluated: costs no query
                self.study.tell(trial, state=TrialState.PRUNED)
                acc["pruned"] += 1
                continue
            if any(v is None for v in cost.values()):
                # a tabular device that never measured this cell: outside its space
                self.study.tell(trial, state=TrialState.PRUNED)
                acc["unmeasured"] += 1
                continue
            res = ev(arch)
            if res["accuracy"] is None:        # a cell the table lacks at this fidelity
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            if self.ctx.target_ms is not None and cost.get("latency") is not None:
                # Optuna's constraint (<= 0 feasible): NSGA-II ranks by it
                trial.set_constraint("latency", cost["latency"] - self.ctx.target_ms)
            value = self.values(res, cost)
            self.study.tell(trial, value)
            if res["cached"]:
                continue
            self.note_visit(arch, epoch=epoch, query=ev.queries, accuracy=res["accuracy"],
                            cost=res["cost"], value=value)
            acc["evaluated"] += 1
            self.step += 1
            on_step(self.step, f"best {self.best()['accuracy']:.2f} %")
        best = self.best()
        record = {"epoch": epoch, "queries": ev.queries, "cache_hits": ev.cache_hits,
                  "pruned": acc["pruned"], "unmeasured": acc["unmeasured"],
                  "best_accuracy": best["accuracy"] if best else None,
                  "best": best["arch"] if best else None,
                  "seconds": time.time() - acc["t0"]}
        return self.close_epoch(record)

    def best(self) -> dict | None:
        """Returns the choice so far: with a soft target and one objective, the best
        value (accuracy x the MnasNet factor); otherwise the best accuracy among the
        visited records that meet the target (None when none does)."""
        t = self.ctx.target_ms
        if t is not None and not self.ctx.config.hard_target and not self.multi_objective:
            return max(self._visited, key=lambda v: v["value"], default=None)
        ok = [v for v in self._visited
              if t is None or (v["cost"].get("latency") or 0.0) <= t]
        return max(ok, key=lambda v: v["accuracy"], default=None)

    def epoch_line(self, h: dict) -> str:
        best = f"{h['best_accuracy']:.2f} %" if h["best_accuracy"] is not None else "none"
        return (f"trials {h['queries']}/{self.ctx.config.trials}: best accuracy {best}; "
                f"{h['cache_hits']} cache hits, {h['pruned']} over the target")

    def state_dict(self) -> dict:
        return {**super().state_dict(), "evaluator": self.ctx.evaluator.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.ctx.evaluator.load_state_dict(state["evaluator"])

    def result(self) -> Outcome:
        best = self.best()
        if best is None:
            if not self._visited:
                raise UserError("the search evaluated no architecture (every proposal was "
                                "over the target?)")
            best = min(self._visited, key=lambda v: v["cost"].get("latency") or 0.0)
        return Outcome(self.ctx.space.arch_from_dict(best["arch"]),
                       extra={"accuracy": best["accuracy"], "query": best["query"]},
                       cost=best["cost"])
