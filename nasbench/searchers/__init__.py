"""Searchers and evaluators: each registered by name (:data:`nasbench.registry.SEARCHERS`,
:data:`~nasbench.registry.EVALUATORS`), run by the one runner (:mod:`nasbench.run`). A
searcher owns only its algorithm (see :mod:`.base`); its settings are declared in a light
``*_config.py`` module, so ``--help`` never imports torch or optuna.

The names below are loaded on first use (PEP 562)."""

from __future__ import annotations

from nasbench.registry import lazy_exports

_PUBLIC = {
    "SEARCHERS": "nasbench.searchers.base", "Outcome": "nasbench.searchers.base",
    "SearchContext": "nasbench.searchers.base", "Searcher": "nasbench.searchers.base",
    "get_searcher": "nasbench.searchers.base",
    "register_searcher": "nasbench.searchers.base",
    "DartsSearcher": "nasbench.searchers.darts",
    "ENASConfig": "nasbench.searchers.enas_config",
    "ENASSearcher": "nasbench.searchers.enas",
    "EvolutionSearcher": "nasbench.searchers.evolution",
    "RegularizedEvolutionSampler": "nasbench.searchers.evolution",
    "NSGA2Searcher": "nasbench.searchers.nsga2",
    "PNASConfig": "nasbench.searchers.trials_config",
    "PNASSearcher": "nasbench.searchers.pnas",
    "ProxylessSearcher": "nasbench.searchers.proxyless",
    "RandomSearcher": "nasbench.searchers.random_search",
    "SupernetEvaluator": "nasbench.searchers.spos",
    "TPESearcher": "nasbench.searchers.tpe",
    "TrainEvaluator": "nasbench.searchers.train_eval",
    "TrialConfig": "nasbench.searchers.trials_config",
    "TrialSearcher": "nasbench.searchers.trials",
}

__all__ = list(_PUBLIC)


__getattr__ = lazy_exports(__name__, _PUBLIC)
