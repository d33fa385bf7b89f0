"""TPE: Optuna's Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011) over the
space's categorical decisions, the Bayesian-optimisation searcher."""

from __future__ import annotations

import optuna

from nasbench.searchers.base import register_searcher
from nasbench.searchers.trials import TrialSearcher


@register_searcher("tpe")
class TPESearcher(TrialSearcher):
    """Optuna's Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011) over the
    space's categorical decisions (multivariate, 10 random start-up trials)."""

    def sampler(self, seed: int):
        return optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                          n_startup_trials=10)
