"""Multi-trial search on Optuna: the loop every sampler-based searcher shares.

A multi-trial searcher is an Optuna study over the space's categorical encoding
(``space.choices()``): each trial asks the sampler for one value per decision, decodes
the architecture, filters it by the hard cost target (a candidate over the target by
the cost function is never evaluated: the trial is pruned and costs no query, as is an
architecture the space says is not a valid network), asks the
run's evaluator (:mod:`.evaluate`) for its accuracy and cost, and tells the study. A
subclass only names its sampler (:meth:`TrialSearcher.sampler`) - Optuna's sampler
protocol is the strategy hook.

The study lives in a storage (:mod:`.storage`: the run's SQLite ``study.db``, or a
database shared by ``nasbench worker`` processes on any machine; in memory for
``nasbench bench``), and its trials are the truth for every count: each process runs
the same loop on the same study, and the history, the visited list and the result are
read from it. The budget is ``trials`` distinct evaluations; ``trials_per_epoch`` of them
form one history record and checkpoint. Every cell is evaluated at most once, and
the budget never overrun, by claim-then-read: before evaluating, a trial writes a
``claim`` user attribute (the architecture and the worker), then reads the study. A
cell with an evaluated trial is a cache hit (the trial is told the same values, free);
a cell claimed by another trial in flight, or a budget whose remaining queries are all
claimed, makes the trial step back (FAIL, ``deferred``). Of two processes claiming at
once, the later reader always sees the earlier claim, so at most one goes on (rarely
both step back; the sampler proposes again). The result is the visited architecture
with the best accuracy among those meeting the target (the cheapest one, marked as
missing it, when none does); with a soft target and one objective, the best value
(accuracy x (latency / target)^-0.07, MnasNet's soft reward).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nasbench.candidates import score_text
from nasbench.errors import UserError
from nasbench.searchers.base import Outcome, SearchContext, Searcher
from nasbench.searchers.ledger import TRIES, FreshSampler, Ledger
from nasbench.searchers.storage import (
    ATTR_CONFIG,
    ATTR_RUN,
    ATTR_TRIALS,
    default_url,
    heartbeat,
    load_study,
    open_storage,
    retry_trial,
    show_url,
)
from nasbench.searchers.trials_config import TrialConfig

#: trials (asks) allowed per distinct query before the loop gives up (a sampler that
#: keeps proposing cached or over-target cells)
ASK_FACTOR = 20
#: seconds a process waits before it looks again at trials in flight elsewhere
POLL_S = 0.2




class TrialSearcher(Searcher):
    """Base of the Optuna searchers (see the module doc); subclasses define
    :meth:`sampler`."""

    config_class = TrialConfig
    plain_state = ("step", "acc")
    #: accuracy and each cost as separate objectives (NSGA-II), else one value
    multi_objective = False
    #: the Optuna RDB storage of the study (None: an in-memory study, e.g. ``nasbench
    #: bench``'s); set by :meth:`setup` (``--storage``), :meth:`bind` or :meth:`join`
    storage = None
    #: a worker's time limit (``time.time()`` seconds; None: none)
    deadline: float | None = None
    #: whether a proposal of a cell the study knows is redrawn (:class:`FreshSampler`);
    #: False for a strategy that plans its own cells (PNAS)
    fresh = True
    #: proposals of the strategy tried before a uniform draw (fewer where each costs a
    #: model fit: bo, mobo)
    tries = TRIES

    def sampler(self, seed: int | None):
        """Returns the Optuna sampler (the strategy) for a run seeded ``seed`` (None: an
        unseeded one, e.g. a worker's); :attr:`ledger` is there to read."""
        raise NotImplementedError

    def _sampler(self, seed: int | None):
        """Returns :meth:`sampler` with a fresh :attr:`ledger`, wrapped so that it never
        proposes a cell the study knows (unless :attr:`fresh` is False)."""
        self.ledger = Ledger()
        inner = self.sampler(seed)
        if not self.fresh:
            return inner
        return FreshSampler(inner, self.choices, self.ledger, seed=seed, tries=self.tries,
                            admissible=self.admissible)

    def admissible(self, params: dict) -> bool:
        """Returns whether the loop would evaluate the cell of ``params``: a valid
        network whose cost is known and within the hard target (costs are known before
        any evaluation, so a sampler need not propose the others)."""
        try:
            arch = self.ctx.space.decode(params)
        except ValueError:
            return False
        if not self.ctx.space.valid(arch):
            return False
        cost = self.ctx.evaluator.cost(arch)
        return not self._over_target(cost) and not self._unmeasured(cost)

    def _unmeasured(self, cost: dict) -> bool:
        """Returns whether a cost the objective needs is missing (a tabular device that
        never measured the cell; a metric outside the objective, e.g. pixel3's energy in
        HW-NAS-Bench, may be missing)."""
        return any(cost.get(m) is None for m in self.cost_metrics)

    def setup(self, ctx: SearchContext) -> None:
        """Builds an in-memory study (:meth:`bind` or :meth:`join` moves it into a
        storage); opens ``--storage`` at once, so an unreachable database fails before
        the run directory exists."""
        super().setup(ctx)
        if getattr(ctx, "evaluator", None) is None:
            raise UserError(f"--method {ctx.config.method} needs an evaluator "
                            f"(--evaluate table with --space nb201 --benchmark-dir)")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cfg = ctx.config
        self.choices = ctx.space.choices()
        self.step, self.acc = 0, None
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._reaped = 0.0
        if cfg.storage:
            self.storage = open_storage(cfg.storage, cfg.heartbeat_s, cfg.grace_s)
        self.study = optuna.create_study(directions=self.directions,
                                         sampler=self._sampler(cfg.seed),
                                         pruner=self._pruner())

    def _pruner(self):
        """Returns the study's pruner (``--pruner``; None: Optuna's default, which no
        trial consults unless its evaluator trains)."""
        if self._pruner_name() == "none":
            return None
        from nasbench.searchers.pruning import make_pruner
        return make_pruner(self.ctx.config)

    @property
    def directions(self) -> list[str]:
        """Returns the study's directions: accuracy maximised (and each cost minimised,
        multi-objective)."""
        return ["maximize"] + (["minimize"] * len(self.cost_metrics)
                               if self.multi_objective else [])

    def bind(self, run_dir) -> None:
        """Puts the study in its storage (``--storage``, else the run's own SQLite
        ``study.db``) under the run directory's name, with the run's config, directory
        and budget as study attributes (what a worker needs to join); a resume finds the
        study there."""
        cfg = self.ctx.config
        url = cfg.storage or default_url(run_dir)
        if self.storage is None:
            self.storage = open_storage(url, cfg.heartbeat_s, cfg.grace_s)
        name = Path(run_dir).name
        self.study = optuna.create_study(storage=self.storage, study_name=name,
                                         directions=self.directions,
                                         sampler=self.study.sampler,
                                         pruner=self.study.pruner, load_if_exists=True)
        attrs = {ATTR_CONFIG: cfg.to_dict(), ATTR_RUN: str(Path(run_dir).resolve()),
                 ATTR_TRIALS: cfg.trials}
        for k, v in attrs.items():
            if self.study.user_attrs.get(k) != v:
                self.study.set_user_attr(k, v)
        self.ctx.log(f"study {name} in {show_url(url)}; more workers join with: nasbench "
                     f"worker {run_dir if not cfg.storage else name}"
                     + (f" --storage {show_url(url)}" if cfg.storage else ""))

    def join(self, name: str, seed: int | None = None) -> None:
        """Joins the study ``name`` of the storage of ``--storage`` (a worker), with a
        sampler seeded ``seed``; raises UserError when there is no such study."""
        self.study = load_study(self.storage, name, self.ctx.config.storage,
                                sampler=self._sampler(seed), pruner=self._pruner())

    def finished(self) -> bool:
        """Returns True when the strategy has nothing more to propose before the budget
        is spent (PNAS's last stage done); the loop then ends. Default: False."""
        return False

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
        from nasbench.oneshot.cost import mnasnet_reward
        if self.ctx.config.hard_target:       # a hard target filters; it does not score
            return acc
        return mnasnet_reward(acc, cost.get("latency") or None, self.ctx.target_ms,
                              hard=False, exponent=self.ctx.config.soft_exponent)

    def _over_target(self, cost: dict) -> bool:
        t = self.ctx.target_ms
        lat = cost.get("latency")
        if t is not None and self.ctx.config.hard_target and lat is not None and lat > t:
            return True
        # a memory target is always hard: memory over it does not run at all
        mt = getattr(self.ctx.config, "memory_target_bytes", None)
        mem = cost.get("memory")
        return mt is not None and mem is not None and mem > mt

    def ask(self):
        """Returns (trial, architecture) of the sampler's next proposal (a waiting trial
        first: one re-asked after its worker died)."""
        with warnings.catch_warnings():    # ask/tell with heartbeats: we beat ourselves
            warnings.simplefilter("ignore", UserWarning)
            trial = self.study.ask()
        values = {k: trial.suggest_categorical(k, v) for k, v in self.choices.items()}
        return trial, self.ctx.space.decode(values)

    # ---- the loop ------------------------------------------------------------------------

    def sync(self) -> None:
        """Reads the study's new and unfinished trials into :attr:`ledger` (every
        worker's; O(1) amortised per trial)."""
        self.ledger.sync(self.study.get_trials(deepcopy=False))

    def counts(self) -> dict:
        """Returns the study's tallies (every worker's), read now: ``queries`` (trials
        evaluated), ``stopped`` (evaluated, then stopped early by the pruner),
        ``cache_hits``, ``pruned`` (over the hard target, or invalid), ``unmeasured``,
        ``failed``, ``in_flight`` (claimed and being evaluated), ``waiting``, ``asks``
        (trials)."""
        self.sync()
        return {**self.ledger.counts, "asks": self.ledger.asks}

    def advance(self, goal: int, on_step) -> None:
        """Runs trials until the study holds ``goal`` evaluations (every worker's), the
        ask limit or :attr:`deadline`; calls ``on_step(evaluations)`` after each
        evaluation of this process. With the budget claimed by trials in flight
        elsewhere it waits for them (a dead worker's is failed after the grace period
        and asked again). The tallies are those of the last read of the study (each
        claim reads it)."""
        cfg, led = self.ctx.config, self.ledger
        self.sync()
        while True:
            if led.spent >= goal or (self.deadline and time.time() >= self.deadline):
                return
            if self.finished():
                return
            if led.asks >= ASK_FACTOR * cfg.trials:
                self.ctx.log(f"stopping early: {led.asks} proposals gave only "
                             f"{led.spent} distinct cells within the target")
                return
            if led.spent + led.counts["in_flight"] >= cfg.trials:
                self._reap(force=True)
                time.sleep(POLL_S)
                self.sync()
                continue
            if self.trial() in ("queries", "stopped"):
                on_step(led.spent)

    def trial(self) -> str:
        """Runs one trial: ask, hard-target filter, claim, evaluate, tell; returns what
        became of it, a kind of :func:`~.ledger.trial_kind`: ``queries`` (evaluated),
        ``stopped`` (evaluated, stopped early), ``cache_hits`` (the study knew the
        cell), ``pruned``, ``unmeasured`` or ``failed`` (another worker has the cell or
        the budget's last queries in flight; the table lacks the cell). A trial cut by
        Ctrl-C is failed and put back in the study (asked again on resume)."""
        self._reap()
        trial, arch = self.ask()
        try:
            with heartbeat(self.storage, trial._trial_id):
                frozen = self._judge(trial, arch)
        except KeyboardInterrupt:
            self._abandon(trial, retry=True)
            raise
        except BaseException:
            self._abandon(trial, retry=False)
            raise
        return self.ledger.observe(frozen)

    def _judge(self, trial, arch):
        """Decides, claims, evaluates and tells one trial; returns it finished."""
        cfg, ev, led = self.ctx.config, self.ctx.evaluator, self.ledger
        if not self.ctx.space.valid(arch):     # its output ignores its input: never
            return self._close(trial, TrialState.PRUNED, "pruned", "not a valid network")
        cost = ev.cost(arch)
        if self._over_target(cost):            # never evaluated: costs no query
            return self._close(trial, TrialState.PRUNED, "pruned", "over the target")
        if self._unmeasured(cost):
            # a tabular device that never measured this cell: outside its space
            return self._close(trial, TrialState.PRUNED, "pruned", "unmeasured")
        # claim, then read: of two processes claiming one cell (or the budget's last
        # query) at once, the later reader sees the other's claim and steps back
        trial.set_user_attr("claim", {"arch": self.ctx.space.arch_to_dict(arch),
                                      "worker": self.worker})
        self.sync()                            # our own trial is in flight now
        done = led.evaluation(trial.params)
        if done is not None:                   # the study knows it: a cache hit, free
            trial.set_user_attr("cached_from", done.number)
            return self._tell(trial, done.user_attrs["result"]["accuracy"], cost)
        if led.claimed(trial.params, but=trial.number):
            return self._close(trial, TrialState.FAIL, "deferred", "being evaluated")
        if led.spent + led.counts["in_flight"] - 1 >= cfg.trials:
            return self._close(trial, TrialState.FAIL, "deferred", "budget spent")
        report, last = self._reporter(trial)
        try:
            res = ev(arch) if report is None else ev(arch, report=report)
        except optuna.TrialPruned:                # the pruner stopped its training
            trial.set_user_attr("stopped", {"epoch": last.get("epoch")})
            trial.set_user_attr("result", {"accuracy": last.get("accuracy"),
                                           "cost": cost})
            return self.study.tell(trial, state=TrialState.PRUNED)
        if res["accuracy"] is None:            # a cell the table lacks at this fidelity
            return self._close(trial, TrialState.FAIL, "deferred", "no accuracy")
        trial.set_user_attr("result", {"accuracy": res["accuracy"], "cost": res["cost"]})
        return self._tell(trial, res["accuracy"], cost)

    def _reporter(self, trial):
        """Returns (report, last): the evaluator's per-epoch hook when the study has a
        pruner and the evaluator trains (else None), and the dict of what it last
        reported (``epoch``, ``accuracy``)."""
        last: dict = {}
        if self._pruner_name() == "none" or not getattr(self.ctx.evaluator, "prunable",
                                                        False):
            return None, last
        from nasbench.searchers.pruning import reporter
        inner = reporter(trial)

        def report(epoch: int, accuracy: float) -> None:
            last.update(epoch=epoch, accuracy=accuracy)
            inner(epoch, accuracy)

        return report, last

    def _pruner_name(self) -> str:
        return getattr(self.ctx.config, "pruner", "none") or "none"

    def _tell(self, trial, accuracy: float, cost: dict):
        if self.ctx.target_ms is not None and cost.get("latency") is not None:
            # Optuna's constraint (<= 0 feasible): NSGA-II ranks by it
            trial.set_constraint("latency", cost["latency"] - self.ctx.target_ms)
        return self.study.tell(trial, self.values({"accuracy": accuracy}, cost))

    def _close(self, trial, state, what: str, why: str):
        """Ends a trial unevaluated (``state``, user attribute ``what`` = ``why``);
        returns it finished."""
        trial.set_user_attr(what, why)
        return self.study.tell(trial, state=state)

    def _abandon(self, trial, retry: bool) -> None:
        """Fails a trial cut short (``retry``: puts its parameters back in the study)."""
        with contextlib.suppress(Exception):
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            if retry:
                retry_trial(self.study, self.study.trials[trial.number])

    def _reap(self, force: bool = False) -> None:
        """Fails the trials whose worker stopped beating (Optuna then asks them again);
        at most once per heartbeat interval unless ``force``."""
        if self.storage is None:
            return
        now = time.time()
        if not force and now - self._reaped < self.ctx.config.heartbeat_s:
            return
        self._reaped = now
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)

    def run_epoch(self, epoch: int, on_step) -> dict:
        cfg = self.ctx.config
        acc = self.acc = self.acc or {"t0": time.time()}
        start = epoch * cfg.trials_per_epoch
        goal = min(cfg.trials, start + cfg.trials_per_epoch)
        if hasattr(self.ctx.evaluator, "prepare"):   # e.g. SPOS: trains once, resumable
            self.ctx.evaluator.prepare(on_step)

        def stepped(queries: int):
            self.step = min(queries, goal) - start
            best = self.best()                 # no read: the last claim's
            kind = getattr(self.ctx.evaluator, "accuracy_kind", "validation")
            on_step(self.step, f"best {score_text(best['accuracy'], kind)}" if best else "")

        self.advance(goal, stepped)
        return self.close_epoch(self.record(epoch, time.time() - acc["t0"]))

    def record(self, epoch: int, seconds: float) -> dict:
        """Returns the history record of the study now (its tallies, every worker's, and
        the best choice so far) for epoch ``epoch``."""
        n = self.counts()
        visited, best = self._records(), self.best()
        workers = {v["worker"] for v in visited}
        return {"epoch": epoch, "queries": n["queries"], "stopped": n["stopped"],
                "cache_hits": n["cache_hits"], "pruned": n["pruned"],
                "unmeasured": n["unmeasured"], "asks": n["asks"],
                "workers": len(workers),
                "best_accuracy": best["accuracy"] if best else None,
                "best": best["arch"] if best else None, "seconds": seconds}

    def visited(self) -> list[dict]:
        """Returns the study's evaluated trials (every worker's, read now) in the order
        they completed: ``arch``, ``query`` (1, 2, ...), ``epoch``, ``accuracy``,
        ``cost``, ``value`` (what the study was told), ``trial`` (its number),
        ``worker``."""
        if not hasattr(self, "study"):
            return super().visited()
        self.sync()
        return list(self._records())

    def _records(self) -> list[dict]:
        """Returns the visited records of the ledger's evaluated trials, extended with
        the ones it gained since the last call (and the running best updated)."""
        led = self.ledger
        if getattr(self, "_recs_of", None) is not led or len(self._recs) > len(led.evaluated):
            self._recs, self._best_rec, self._recs_of = [], None, led
        per = self.ctx.config.trials_per_epoch
        for t in led.evaluated[len(self._recs):]:
            q = len(self._recs) + 1
            rec = {"arch": t.user_attrs["claim"]["arch"], "epoch": (q - 1) // per,
                   "query": q, "accuracy": t.user_attrs["result"]["accuracy"],
                   "cost": t.user_attrs["result"]["cost"],
                   "value": t.values[0] if len(t.values) == 1 else list(t.values),
                   "trial": t.number, "worker": t.user_attrs["claim"]["worker"]}
            self._recs.append(rec)
            rank = self._rank(rec)
            if rank is not None and (self._best_rec is None
                                     or rank > self._rank(self._best_rec)):
                self._best_rec = rec
        return self._recs

    def _rank(self, v: dict) -> float | None:
        """Returns what :meth:`best` maximises for a record (None: not eligible)."""
        t = self.ctx.target_ms
        if t is not None and not self.ctx.config.hard_target and not self.multi_objective:
            return v["value"]
        if t is None or (v["cost"].get("latency") or 0.0) <= t:
            return v["accuracy"]
        return None

    def best(self, visited: list[dict] | None = None) -> dict | None:
        """Returns the choice so far among ``visited`` (default: every evaluated trial
        this process has read): with a soft target and one objective, the best value
        (accuracy x the MnasNet factor); otherwise the best accuracy among the records
        that meet the target (None when none does)."""
        if visited is None:
            self._records()
            return self._best_rec
        ranked = [(r, v) for v in visited if (r := self._rank(v)) is not None]
        return max(ranked, key=lambda rv: rv[0], default=(None, None))[1]

    def epoch_line(self, h: dict) -> str:
        best = f"{h['best_accuracy']:.2f} %" if h["best_accuracy"] is not None else "none"
        workers = f", {h['workers']} workers" if h.get("workers", 1) > 1 else ""
        stopped = h.get("stopped") or 0
        early = f" ({stopped} stopped early)" if stopped else ""
        return (f"trials {h['queries'] + stopped}/{self.ctx.config.trials}{early}: best "
                f"accuracy {best}; {h['cache_hits']} cache hits, {h['pruned']} over the "
                f"target{workers}")

    def state_dict(self) -> dict:
        """The study lives in its storage; the checkpoint keeps the sampler (its random
        state: a resume proposes what an uninterrupted run would), the evaluator's
        state and, for an in-memory study only, the study itself."""
        own = {"sampler": self.study.sampler, "evaluator": self.ctx.evaluator.state_dict()}
        if self.storage is None:
            own["study"] = self.study
        return {**super().state_dict(), **own}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.ctx.evaluator.load_state_dict(state["evaluator"])
        if self.storage is None and state.get("study") is not None:
            self.study = state["study"]                 # an in-memory study's checkpoint
        elif "sampler" not in state:
            raise UserError("this run's checkpoint holds its study itself (it predates "
                            "study databases): start the run again (its config.json "
                            "holds the settings)")
        if state.get("sampler") is not None:
            self.study.sampler = state["sampler"]
        # the ledger the sampler reads (pickled with it), read again from the study
        if isinstance(self.study.sampler, FreshSampler):
            self.study.sampler.admissible = self.admissible
        self.ledger = getattr(self.study.sampler, "ledger", None) or Ledger()
        self.ledger.reset()
        self.sync()

    def result(self) -> Outcome:
        self.sync()
        best = self.best()
        if best is None:
            visited = self.visited()
            if not visited:
                raise UserError("the search evaluated no architecture (every proposal was "
                                "over the target?)")
            best = min(visited, key=lambda v: v["cost"].get("latency") or 0.0)
        return Outcome(self.ctx.space.arch_from_dict(best["arch"]),
                       extra={"accuracy": best["accuracy"], "query": best["query"]},
                       cost=best["cost"])
