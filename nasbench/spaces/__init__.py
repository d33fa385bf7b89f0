"""Search spaces: each registered by name (:data:`nasbench.registry.SPACES`), looked up
with :func:`get_space`. A space owns its topology once - decisions, op instances, deploy
network, supernet, sample / mutate / encode (see :mod:`nasbench.spaces.base`).

The names below are loaded on first use (PEP 562), so importing the package is cheap."""

from __future__ import annotations

from nasbench.registry import lazy_exports

_PUBLIC = {**{n: "nasbench.spaces.base" for n in (
    "SPACES", "Arch", "SearchSpace", "Slot", "arch_id", "get_space", "lut_space",
    "register_space", "space_for", "space_names")},
    "DartsSpace": "nasbench.spaces.darts", "NB201Space": "nasbench.spaces.nb201",
    "ProxylessSpace": "nasbench.spaces.proxyless"}

__all__ = list(_PUBLIC)


__getattr__ = lazy_exports(__name__, _PUBLIC)
