"""Random search: uniform samples from the space (Optuna's ``RandomSampler`` over the
space's categorical encoding). The baseline every NAS method must beat (Li & Talwalkar,
UAI 2019); on NAS-Bench-201 it is within a fraction of a point of the best methods."""

from __future__ import annotations

from nasbench.searchers.base import register_searcher
from nasbench.searchers.trials import TrialSearcher


@register_searcher("random")
class RandomSearcher(TrialSearcher):
    """Uniform random search (see the module doc)."""

    def sampler(self, seed: int):
        import optuna
        return optuna.samplers.RandomSampler(seed=seed)
