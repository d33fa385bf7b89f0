"""nasbench: hardware-aware benchmarking and profiling for Neural Architecture Search."""

from .genotypes import DARTS_V1, DARTS_V2, PC_DARTS, Genotype
from .models.network import build_network_from_genotype
from .runner import SearchResult, search_architecture
from .search.config import DARTSConfig

__version__ = "0.1.0"

__all__ = ["Genotype", "DARTS_V1", "DARTS_V2", "PC_DARTS", "build_network_from_genotype",
           "DARTSConfig", "search_architecture", "SearchResult", "__version__"]
