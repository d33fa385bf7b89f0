"""Searchers: each registered with :func:`register_searcher`, run by the one runner
(:mod:`nasbench.run`). A searcher owns only its algorithm (see :mod:`.base`)."""

from .base import (
    SEARCHERS,
    Outcome,
    SearchContext,
    Searcher,
    get_searcher,
    register_searcher,
)
from .darts import DartsSearcher
from .evolution import EvolutionSearcher, RegularizedEvolutionSampler
from .nsga2 import NSGA2Searcher
from .proxyless import ProxylessSearcher
from .random_search import RandomSearcher
from .tpe import TPESearcher
from .trials import TrialConfig, TrialSearcher

__all__ = ["SEARCHERS", "Outcome", "SearchContext", "Searcher", "get_searcher",
           "register_searcher", "DartsSearcher", "ProxylessSearcher", "RandomSearcher",
           "TrialConfig", "TrialSearcher", "EvolutionSearcher", "NSGA2Searcher",
           "TPESearcher", "RegularizedEvolutionSampler"]
