"""NSGA-II (Deb et al., 2002) through Optuna's ``NSGAIISampler``: truly multi-objective -
accuracy (maximised) and each cost of the objective (minimised) are separate
directions, not a weighted sum - with the latency target as an Optuna constraint
(``lat - target <= 0``: feasible solutions dominate infeasible ones). With a hard target
(the default) a candidate over it by the cost function is also never evaluated."""

from __future__ import annotations

import optuna

from .base import register_searcher
from .trials import TrialSearcher


@register_searcher("nsga2")
class NSGA2Searcher(TrialSearcher):
    """NSGA-II (see the module doc): population ``population`` (default 50)."""

    multi_objective = True

    def sampler(self, seed: int):
        # the latency constraint is each trial's own (Trial.set_constraint)
        return optuna.samplers.NSGAIISampler(population_size=self.ctx.config.population,
                                             seed=seed)
