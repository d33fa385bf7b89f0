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
from .proxyless import ProxylessSearcher
from .random_search import RandomSearcher
from .trials import TrialConfig, TrialSearcher

__all__ = ["SEARCHERS", "Outcome", "SearchContext", "Searcher", "get_searcher",
           "register_searcher", "DartsSearcher", "ProxylessSearcher", "RandomSearcher",
           "TrialConfig", "TrialSearcher"]
