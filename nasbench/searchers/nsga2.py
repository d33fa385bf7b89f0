"""NSGA-II (Deb et al., 2002) through Optuna's ``NSGAIISampler``: truly multi-objective -
accuracy (maximised) and each cost of the objective (minimised) are separate
directions, not a weighted sum - with the latency target as an Optuna constraint
(``lat - target <= 0``: feasible solutions dominate infeasible ones). With a hard target
(the default) a candidate over it by the cost function is also never evaluated.

Optuna keeps NSGA-II's elitist survival (non-dominated sorting, then crowding distance);
the children are made by the space's own operator (``variation="mutate"``, the default):
a binary tournament by Deb's crowded comparison (constrained non-domination rank, then
crowding distance) picks a parent from the survivors and ``space.mutate`` changes one
decision, retried while the child is a cell the study has
already seen (a repeat costs no query but teaches nothing). Optuna's own operator
(``variation="optuna"``: uniform crossover, then each parameter resampled with
probability 1/n) treats a cell as a bag of unrelated categoricals; on NAS-Bench-201 it
left 1.0-1.7 % of the true front's hypervolume at 200 queries where the mutation leaves
0.5-1.0 % (README, issue 16's figures). The default population is 10: with 200 queries
that is 20 generations instead of Optuna's 50 (4 generations).
"""

from __future__ import annotations

import math
import random
import warnings

import optuna
from optuna.study import StudyDirection

from nasbench.searchers.base import register_searcher
from nasbench.searchers.trials import TrialSearcher
from nasbench.searchers.trials_config import NSGA2Config

#: mutations tried per child before it falls back to a uniform sample
RETRIES = 30


def _violation(t) -> float:
    """Returns a trial's total constraint violation (0: feasible)."""
    return sum(max(0.0, c) for c in (t.constraints or {}).values())


def dominates(a, b, directions) -> bool:
    """Returns True when trial ``a`` dominates ``b`` under constraints (Deb's rule, as
    Optuna's NSGA-II ranks): the smaller violation wins; between equally (in)feasible
    trials, Pareto dominance of their values in the study's ``directions``."""
    va, vb = _violation(a), _violation(b)
    if va != vb:
        return va < vb
    sa = [v if d == StudyDirection.MINIMIZE else -v
          for v, d in zip(a.values, directions, strict=True)]
    sb = [v if d == StudyDirection.MINIMIZE else -v
          for v, d in zip(b.values, directions, strict=True)]
    pairs = list(zip(sa, sb, strict=True))
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def rank_and_crowding(trials, directions) -> tuple[list[int], list[float]]:
    """Returns each trial's non-domination rank (0: not dominated, by :func:`dominates`)
    and its crowding distance within its rank (NSGA-II's: the sum over objectives of the
    neighbours' normalised gap; infinite at a rank's extremes)."""
    n, rank, left, r = len(trials), [0] * len(trials), set(range(len(trials))), 0
    while left:
        front = {i for i in left
                 if not any(dominates(trials[j], trials[i], directions) for j in left)}
        for i in front:
            rank[i] = r
        left, r = left - front, r + 1
    crowd = [0.0] * n
    for level in set(rank):
        idx = [i for i in range(n) if rank[i] == level]
        for m in range(len(directions)):
            idx.sort(key=lambda i: trials[i].values[m])
            lo, hi = trials[idx[0]].values[m], trials[idx[-1]].values[m]
            crowd[idx[0]] = crowd[idx[-1]] = math.inf
            for a in range(1, len(idx) - 1):
                if hi > lo:
                    crowd[idx[a]] += (trials[idx[a + 1]].values[m]
                                      - trials[idx[a - 1]].values[m]) / (hi - lo)
    return rank, crowd


class SpaceMutation:
    """NSGA-II's child generation by the space's mutation (see the module doc): an
    Optuna ``child_generation_strategy``; returns the child's parameters."""

    def __init__(self, space, tournament: int = 2, seed: int | None = None, ledger=None,
                 admissible=None):
        self.space, self.tournament, self.ledger = space, tournament, ledger
        self.admissible = admissible       # the loop's: valid, within the hard target
        self._rng = random.Random(seed)
        self._scored: tuple = ((), None)   # the last population and its ranks

    def __getstate__(self):
        # checkpointed with the study: the predicate is the run's (bound on resume)
        return {**self.__dict__, "admissible": None, "_scored": ((), None)}

    def __call__(self, study, search_space, parent_population) -> dict:
        if self.ledger is not None:            # the loop's: O(1) per child
            seen = self.ledger.known
        else:
            keys = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)}
            seen = lambda p: tuple(sorted(p.items())) in keys    # noqa: E731
        key = tuple(t.number for t in parent_population)
        if self._scored[0] != key:          # O(p^2): once per generation, not per child
            self._scored = (key, rank_and_crowding(parent_population, study.directions))
        scores = self._scored[1]
        for _ in range(RETRIES):
            parent = self._select(parent_population, *scores)
            child = self.space.encode(self.space.mutate(self.space.decode(parent.params),
                                                        self._rng))
            if not seen(child) and (self.admissible is None or self.admissible(child)):
                return child
        return self.space.encode(self.space.sample_valid(self._rng))   # the neighbourhood is spent

    def _select(self, population, rank, crowd):
        """Returns the winner of a tournament of ``tournament`` survivors by Deb's
        crowded comparison: the lower non-domination rank, then the larger crowding
        distance (a front's extremes first), then at random."""
        group = self._rng.sample(range(len(population)),
                                 min(self.tournament, len(population)))
        best = min((rank[i], -crowd[i]) for i in group)
        return population[self._rng.choice([i for i in group
                                            if (rank[i], -crowd[i]) == best])]




@register_searcher("nsga2")
class NSGA2Searcher(TrialSearcher):
    """NSGA-II (see the module doc)."""

    config_class = NSGA2Config
    multi_objective = True

    def sampler(self, seed: int | None):
        cfg = self.ctx.config
        # the latency constraint is each trial's own (Trial.set_constraint)
        if cfg.variation == "optuna":
            return optuna.samplers.NSGAIISampler(population_size=cfg.population, seed=seed)
        with warnings.catch_warnings():   # child_generation_strategy is "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.NSGAIISampler(
                population_size=cfg.population, seed=seed,
                child_generation_strategy=SpaceMutation(self.ctx.space, cfg.sample_size,
                                                        seed, self.ledger,
                                                        self.admissible))

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        inner = getattr(self.study.sampler, "base", self.study.sampler)
        strategy = getattr(inner, "_child_generation_strategy", None)
        if isinstance(strategy, SpaceMutation):
            strategy.admissible = self.admissible
