"""Differentiable architecture search: DARTS / PC-DARTS supernet, architect, cost model,
derivation and configuration."""

from .config import DARTSConfig
from .derive import derive_genotype
from .supernet import MixedOp, SearchCell, SearchNetwork

__all__ = ["DARTSConfig", "SearchNetwork", "SearchCell", "MixedOp", "derive_genotype"]
