"""nasbench: hardware-aware benchmarking and profiling for Neural Architecture Search."""

from .genotypes import DARTS_V1, DARTS_V2, PC_DARTS, Genotype
from .models.network import build_network_from_genotype
from .models.proxyless import build_proxyless_network
from .predict.predictor import Predictor
from .proxyless_runner import search_proxyless
from .run.config import RunConfig
from .run.result import SearchResult
from .run.runner import run_search
from .runner import search_architecture
from .search.config import DARTSConfig
from .search.proxyless import ProxylessArch
from .search.proxyless_config import ProxylessConfig
from .searchers import Outcome, Searcher, get_searcher, register_searcher
from .spaces import Arch, SearchSpace, Slot, get_space, register_space
from .spaces.proxyless import ProxylessDeployConfig

__version__ = "0.1.0"

__all__ = ["Genotype", "DARTS_V1", "DARTS_V2", "PC_DARTS", "build_network_from_genotype",
           "DARTSConfig", "search_architecture", "SearchResult", "ProxylessArch",
           "ProxylessConfig", "ProxylessDeployConfig", "build_proxyless_network",
           "search_proxyless", "run_search", "RunConfig", "Predictor", "Searcher",
           "Outcome", "register_searcher", "get_searcher", "SearchSpace", "Slot", "Arch",
           "register_space", "get_space", "__version__"]
