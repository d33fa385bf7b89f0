"""What the multi-trial loop knows of its study, kept up to date incrementally.

A study's trials only ever change in two ways: new trials appear (numbered 0, 1, ...) and
unfinished ones finish. :class:`Ledger` reads the new trials and re-reads only the
unfinished ones, so keeping the loop's tallies, the cells it knows and the evaluated
history costs O(1) amortised per trial, whatever the study's size (the old loop scanned
every trial at every ask: O(n^2) over a run). The read itself is Optuna's: its RDB
storage caches finished trials and fetches only new and unfinished ones.

:class:`FreshSampler` wraps any Optuna sampler so that a proposal the ledger already
knows (a cell evaluated, in flight, over the target or invalid) is redrawn instead of
becoming a trial: a study holds about as many trials as evaluations. Only a race between
two processes proposing one cell at once still makes a cache hit.
"""

from __future__ import annotations

import json
import random
import threading

from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

#: what a sampler may hold that does not pickle
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))

#: what a trial of the study can be (see :func:`trial_kind`)
KINDS = ("queries", "stopped", "cache_hits", "pruned", "unmeasured", "failed",
         "in_flight", "asked", "waiting")
#: kinds that no longer change
FINAL = frozenset(("queries", "stopped", "cache_hits", "pruned", "unmeasured", "failed"))
#: proposals of the wrapped sampler tried before a uniform draw of an unknown cell
TRIES = 20
#: uniform draws tried before a known cell is let through (a nearly spent space)
UNIFORM_TRIES = 2000


def trial_kind(t) -> str:
    """Returns what a trial of the study is: ``queries`` (evaluated: COMPLETE with a
    result), ``stopped`` (evaluated, then stopped early by the study's pruner),
    ``cache_hits`` (COMPLETE, a copy of an evaluated one), ``pruned`` (over the hard
    target, or not a valid network), ``unmeasured`` (a cell the device's table lacks),
    ``in_flight`` (RUNNING and claimed), ``waiting`` (to be asked again), ``failed`` or
    ``asked`` (RUNNING, not yet claimed)."""
    a = t.user_attrs
    if t.state == TrialState.COMPLETE:
        return "cache_hits" if a.get("cached_from") is not None else "queries"
    if t.state == TrialState.PRUNED:
        if "stopped" in a:
            return "stopped"
        return "unmeasured" if a.get("pruned") == "unmeasured" else "pruned"
    if t.state == TrialState.RUNNING:
        return "in_flight" if "claim" in a else "asked"
    if t.state == TrialState.WAITING:
        return "waiting"
    return "failed"


def params_key(params: dict) -> str:
    """Returns a hashable key of a trial's parameters (the cell's encoding)."""
    return json.dumps(params, sort_keys=True, default=str)


class Ledger:
    """The loop's incremental view of a study (see the module doc): ``counts`` (trials
    per kind, and ``asks``: all of them), ``evaluated`` (the evaluated trials in the
    order this process saw them finish), :meth:`known` cells and :meth:`evaluation` of a
    cell."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forgets everything (the next :meth:`sync` reads the whole study)."""
        self.kinds: dict[int, str] = {}
        self.pending: set[int] = set()        # numbers of trials not yet final
        self.read = 0                         # trials 0 .. read-1 have been seen
        self.counts = dict.fromkeys(KINDS, 0)
        self.evaluated: list = []
        self._done: dict[str, object] = {}    # cell -> its evaluated trial
        self._closed: set[str] = set()        # cells pruned or unmeasured
        self._claims: dict[str, set[int]] = {}   # cell -> trials in flight on it

    @property
    def asks(self) -> int:
        """Returns the number of trials seen (every proposal that became a trial)."""
        return len(self.kinds)

    @property
    def spent(self) -> int:
        """Returns the evaluations that count against the budget (stopped ones too)."""
        return self.counts["queries"] + self.counts["stopped"]

    def sync(self, trials: list) -> None:
        """Takes in a fresh read of the study's trials (sorted by number, as Optuna
        returns them): the new trials and those that were unfinished."""
        # Optuna numbers a study's trials 0, 1, ... and returns them in that order
        fresh = [trials[n] for n in sorted(self.pending) if n < len(trials)]
        fresh += trials[self.read:]
        self.read = max(self.read, len(trials))
        # the order evaluations finished in (one read can bring several)
        fresh.sort(key=lambda t: (t.datetime_complete is None,
                                  t.datetime_complete or t.datetime_start, t.number))
        for t in fresh:
            self.observe(t)

    def observe(self, t) -> str:
        """Records trial ``t`` as it is now (idempotent); returns its kind."""
        kind, old = trial_kind(t), self.kinds.get(t.number)
        if old == kind:
            return kind
        key = params_key(t.params) if t.params else None
        if old is not None:
            self.counts[old] -= 1
            if old == "in_flight":
                self._claims.get(key, set()).discard(t.number)
        self.kinds[t.number] = kind
        self.counts[kind] += 1
        if kind in FINAL:
            self.pending.discard(t.number)
        else:
            self.pending.add(t.number)
        if key is not None:
            if kind == "in_flight":
                self._claims.setdefault(key, set()).add(t.number)
            elif kind == "queries":
                self._done.setdefault(key, t)
                self.evaluated.append(t)
            elif kind in ("pruned", "unmeasured"):
                self._closed.add(key)
        return kind

    def evaluation(self, params: dict):
        """Returns the evaluated trial of the cell ``params`` (None: not evaluated)."""
        return self._done.get(params_key(params))

    def claimed(self, params: dict, but: int | None = None) -> bool:
        """Returns whether a trial other than ``but`` has the cell in flight."""
        return bool(self._claims.get(params_key(params), set()) - {but})

    def flying(self) -> list[dict]:
        """Returns the parameters of the cells in flight (claimed, not evaluated)."""
        return [json.loads(k) for k, nums in self._claims.items()
                if nums and k not in self._done]

    def known(self, params: dict) -> bool:
        """Returns whether the cell was evaluated, closed (over the target, invalid,
        unmeasured) or is being evaluated: proposing it again teaches nothing."""
        key = params_key(params)
        return key in self._done or key in self._closed or bool(self._claims.get(key))


class FreshSampler(BaseSampler):
    """An Optuna sampler around ``base`` that never proposes a cell ``ledger`` knows,
    nor one that ``admissible(params)`` refuses (not a valid network, over the hard
    target: the loop would not evaluate it; see the module doc): the base's proposal is
    redrawn up to ``tries`` times, then a uniform draw over ``choices`` (the space's
    categorical decisions). Decisions the base leaves to independent sampling (random
    search, TPE's start-up, NSGA-II's first generation) are drawn uniformly here, seeded
    by ``seed``. When nothing fits, the last draw goes through (the loop then closes it
    unevaluated)."""

    def __init__(self, base: BaseSampler, choices: dict, ledger: Ledger | None = None,
                 seed: int | None = None, tries: int = TRIES, admissible=None):
        self.base, self.ledger, self.tries = base, ledger, tries
        self.admissible = admissible
        self._choices = {k: list(v) for k, v in choices.items()}
        self._dists = {k: CategoricalDistribution(v) for k, v in choices.items()}
        self._rng = random.Random(seed)

    def __getstate__(self):
        # checkpointed with the study: the predicate is the run's (re-bound on resume);
        # the base's thread locks (Optuna's NSGAIISampler holds one) do not pickle, so
        # they are left out and made anew on load
        base = self.base.__getstate__()          # the base's own choice of state
        if not isinstance(base, dict):
            return {**self.__dict__, "admissible": None}
        locks = [k for k, v in base.items() if isinstance(v, _LOCK_TYPES)]
        plain = {k: v for k, v in base.items() if k not in locks}
        return {**self.__dict__, "admissible": None,
                "base": (type(self.base), plain, locks)}

    def __setstate__(self, state: dict) -> None:
        base = state["base"]
        if isinstance(base, tuple):
            cls, plain, locks = base
            obj = cls.__new__(cls)
            obj.__setstate__({**plain, **{k: threading.Lock() for k in locks}}) \
                if hasattr(cls, "__setstate__") else obj.__dict__.update(plain)
            for k in locks:
                obj.__dict__.setdefault(k, threading.Lock())
            state = {**state, "base": obj}
        self.__dict__.update(state)

    def reseed_rng(self) -> None:
        self._rng.seed()
        self.base.reseed_rng()

    def _fits(self, params: dict) -> bool:
        if self.ledger is not None and self.ledger.known(params):
            return False
        return self.admissible is None or self.admissible(params)

    def infer_relative_search_space(self, study, trial):
        return dict(self._dists)

    def _uniform(self) -> dict:
        return {k: self._rng.choice(v) for k, v in self._choices.items()}

    def sample_relative(self, study, trial, search_space):
        if not search_space:
            return {}
        inner = self.base.infer_relative_search_space(study, trial)
        params: dict = {}
        for _ in range(self.tries):
            got = self.base.sample_relative(study, trial, inner) if inner else {}
            if not got:                      # the base samples independently: uniform
                break
            params = {**self._uniform(), **got}
            if self._fits(params):
                return params
        for _ in range(UNIFORM_TRIES):
            params = self._uniform()
            if self._fits(params):
                return params
        return params                        # the space is nearly spent: a repeat

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.base.after_trial(study, trial, state, values)
