"""nasbench: hardware-aware benchmarking and profiling for Neural Architecture Search.

Importing the package is cheap: the public names below are loaded on first use (PEP 562),
so ``nasbench --help`` and tools that only read files never import torch or optuna."""

from __future__ import annotations

from nasbench.registry import lazy_exports

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "Genotype": "nasbench.genotypes", "DARTS_V1": "nasbench.genotypes",
    "DARTS_V2": "nasbench.genotypes", "PC_DARTS": "nasbench.genotypes",
    "build_network_from_genotype": "nasbench.spaces.darts_network",
    "build_proxyless_network": "nasbench.spaces.proxyless_network",
    "Predictor": "nasbench.predict.predictor",
    "RunConfig": "nasbench.config",
    "DARTSConfig": "nasbench.searchers.darts_config",
    "ProxylessConfig": "nasbench.searchers.proxyless_config",
    "ProxylessArch": "nasbench.oneshot.proxyless",
    "ProxylessDeployConfig": "nasbench.spaces.proxyless",
    "SearchResult": "nasbench.run.result",
    "run_search": "nasbench.run.runner",
    "search_architecture": "nasbench.api", "search_proxyless": "nasbench.api",
    "Searcher": "nasbench.searchers.base", "Outcome": "nasbench.searchers.base",
    "register_searcher": "nasbench.searchers.base",
    "get_searcher": "nasbench.searchers.base",
    "SearchSpace": "nasbench.spaces.base", "Slot": "nasbench.spaces.base",
    "Arch": "nasbench.spaces.base", "register_space": "nasbench.spaces.base",
    "get_space": "nasbench.spaces.base",
}

__all__ = [*_PUBLIC, "__version__"]


__getattr__ = lazy_exports(__name__, _PUBLIC)
