"""ProxylessNAS searches through the one runner (:mod:`nasbench.run`), and the names this
module has always offered."""

from __future__ import annotations

from pathlib import Path

from .run.result import SearchResult, summary_lines
from .run.runner import run_search
from .search.proxyless import ProxylessArch
from .search.proxyless_config import ProxylessConfig
from .spaces.proxyless import ProxylessDeployConfig, ProxylessSpace


def search_proxyless(config: ProxylessConfig | None = None, *,
                     resume: str | Path | None = None, quiet: bool = False,
                     lut: str | Path | None = None,
                     _interrupt_after_steps: int | None = None) -> SearchResult:
    """Runs a ProxylessNAS search (see :func:`nasbench.run.runner.run_search`); returns
    the :class:`SearchResult`."""
    if config is None and resume is None:
        config = ProxylessConfig()
    return run_search(config, resume=resume, quiet=quiet, lut=lut,
                      expect_method=("proxyless",),
                      _interrupt_after_steps=_interrupt_after_steps)


def predict_arch_costs(lut, deploy: ProxylessDeployConfig, arch: ProxylessArch) -> dict:
    """Returns the LUT prediction of ``arch``'s network (calibrated when fitted)."""
    from .predict.predictor import predict_costs
    return predict_costs(ProxylessSpace(deploy), lut, arch)


#: the one summary serves every method
proxyless_summary_lines = summary_lines

__all__ = ["search_proxyless", "predict_arch_costs", "proxyless_summary_lines"]
