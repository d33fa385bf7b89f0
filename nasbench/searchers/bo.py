"""``--method bo``: Gaussian-process Bayesian optimisation through Optuna's
``GPSampler`` on the space's categorical encoding - log expected improvement of the
accuracy under a hard target (the cells over it are never proposed: their cost is
known), log expected hypervolume improvement of accuracy and cost otherwise (the cost
is modelled like the accuracy: that is what ``mobo`` improves on). A proposal's cost is
the GP's fit and the acquisition's optimisation: seconds at a few hundred trials."""

from __future__ import annotations

import warnings

import optuna

from nasbench.searchers.base import register_searcher
from nasbench.searchers.bo_config import BOConfig
from nasbench.searchers.trials import TrialSearcher


@register_searcher("bo")
class BOSearcher(TrialSearcher):
    """Optuna's GPSampler (see the module doc)."""

    config_class = BOConfig
    tries = 3                 # each proposal fits the GP: a few, then a uniform draw

    @property
    def multi_objective(self) -> bool:
        return self.ctx.config.is_multi_objective()

    def sampler(self, seed: int | None):
        cfg = self.ctx.config
        constraints = None
        if self.ctx.target_ms is not None and not cfg.hard_target:
            # a soft target: Optuna's constrained form on the trial's own constraint
            def constraints(t):
                return [t.constraints.get("latency", 0.0)] if t.constraints else [0.0]
        with warnings.catch_warnings():   # deterministic_objective is "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(
                seed=seed, n_startup_trials=cfg.startup, constraints_func=constraints,
                deterministic_objective=cfg.evaluate == "table",
                warn_independent_sampling=False)
