"""Regularized (aging) evolution (Real et al., AAAI 2019) as an Optuna sampler.

The population is the ``population`` most recently completed trials of the study (the
oldest dies as each new child completes), so the sampler keeps no state of its own: any
number of workers sharing one study (a database storage) evolve one population. Until
the population is full, parents are uniform samples; after that each trial takes a
tournament of ``sample_size`` members drawn from the population, and mutates the
fittest one through the space's own ``mutate`` (one decision changed).
"""

from __future__ import annotations

import random

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import TrialState

from nasbench.searchers.base import register_searcher
from nasbench.searchers.trials import TrialSearcher


class RegularizedEvolutionSampler(BaseSampler):
    """Optuna's sampler protocol around aging evolution on a space's encoding.

    ``space`` gives ``choices()`` (the categorical decisions), ``decode``/``encode`` and
    ``mutate``; single-objective studies only (the first objective is the fitness).
    ``ledger`` (a :class:`~.ledger.Ledger` the loop keeps): the population is read from
    it in O(1) instead of from the study's trials."""

    def __init__(self, space, population: int = 50, sample_size: int = 10,
                 seed: int | None = None, ledger=None):
        if population < 1 or not 1 <= sample_size <= population:
            raise ValueError("need 1 <= sample_size <= population")
        self.space, self.population, self.sample_size = space, population, sample_size
        self.ledger = ledger
        self._rng = random.Random(seed)
        self._random = RandomSampler(seed=seed)
        self._dists = {k: CategoricalDistribution(v) for k, v in space.choices().items()}

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study, trial):
        return dict(self._dists)

    def members(self, study) -> list:
        """Returns the living population: the last ``population`` completed trials."""
        if self.ledger is not None:
            return self.ledger.evaluated[-self.population:]
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return sorted(done, key=lambda t: t.datetime_complete or t.datetime_start
                      )[-self.population:]

    def sample_relative(self, study, trial, search_space):
        if not search_space:
            return {}
        pop = self.members(study)
        if len(pop) < self.population:
            return {}                           # initial population: uniform samples
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
        tournament = self._rng.sample(pop, self.sample_size)
        parent = max(tournament, key=lambda t: sign * t.values[0])
        child = self.space.mutate(self.space.decode(parent.params), self._rng)
        trial.set_user_attr("parent", parent.number)
        return self.space.encode(child)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._random.sample_independent(study, trial, param_name,
                                               param_distribution)


@register_searcher("evolution")
class EvolutionSearcher(TrialSearcher):
    """Regularized evolution (see the module doc): population ``population`` (default
    50), tournament ``sample_size`` (10)."""

    def sampler(self, seed: int):
        cfg = self.ctx.config
        return RegularizedEvolutionSampler(self.ctx.space, cfg.population, cfg.sample_size,
                                           seed=seed, ledger=self.ledger)
