"""Search spaces: each registered with :func:`register_space`, looked up with
:func:`get_space`. A space owns its topology once (see :mod:`nasbench.spaces.base`)."""

from .base import (
    SPACES,
    Arch,
    SearchSpace,
    Slot,
    arch_id,
    get_space,
    lut_space,
    register_space,
    space_for,
    space_names,
)
from .darts import DartsSpace
from .nb201 import NB201Space
from .proxyless import ProxylessSpace

__all__ = ["SPACES", "Arch", "SearchSpace", "Slot", "arch_id", "get_space", "lut_space",
           "register_space", "space_for",
           "space_names", "DartsSpace", "ProxylessSpace", "NB201Space"]
