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
from .enas import ENASConfig, ENASSearcher
from .evolution import EvolutionSearcher, RegularizedEvolutionSampler
from .nsga2 import NSGA2Searcher
from .pnas import PNASConfig, PNASSearcher
from .proxyless import ProxylessSearcher
from .random_search import RandomSearcher
from .spos import SupernetEvaluator
from .tpe import TPESearcher
from .train_eval import TrainEvaluator
from .trials import TrialConfig, TrialSearcher

__all__ = ["PNASConfig", "PNASSearcher", "SEARCHERS", "Outcome", "SearchContext",
           "Searcher", "get_searcher", "register_searcher", "DartsSearcher",
           "ProxylessSearcher", "RandomSearcher", "TrialConfig", "TrialSearcher",
           "EvolutionSearcher", "NSGA2Searcher", "TPESearcher",
           "RegularizedEvolutionSampler", "ENASConfig", "ENASSearcher", "SupernetEvaluator",
           "TrainEvaluator"]
