"""The Python API in a few names: run a search through the one runner, predict a
network's cost from a LUT. ``import nasbench`` exposes these lazily (``nasbench.run_search``
...), so importing the package costs nothing until one is used."""

from __future__ import annotations

import json
from pathlib import Path

from nasbench.genotypes import Genotype, genotype_from_dict
from nasbench.oneshot.proxyless import ProxylessArch
from nasbench.predict.predictor import Predictor
from nasbench.predict.predictor import predict_costs as _predict
from nasbench.run.measure import measure_deploy
from nasbench.run.result import SearchResult, load_result, summary_lines
from nasbench.run.runner import run_search
from nasbench.searchers.darts_config import DARTSConfig
from nasbench.searchers.proxyless_config import ProxylessConfig
from nasbench.spaces.darts import DartsSpace, DeployConfig
from nasbench.spaces.proxyless import ProxylessDeployConfig, ProxylessSpace


def search_architecture(config: DARTSConfig | None = None, *, resume: str | Path | None = None,
                        quiet: bool = False, lut: str | Path | None = None,
                        _interrupt_after_steps: int | None = None) -> SearchResult:
    """Runs a DARTS / PC-DARTS search (see :func:`nasbench.run.runner.run_search`);
    returns the :class:`SearchResult`."""
    if config is None and resume is None:
        config = DARTSConfig()
    return run_search(config, resume=resume, quiet=quiet, lut=lut,
                      _interrupt_after_steps=_interrupt_after_steps)


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


def build_cost_model(lut, lut_path: Path, deploy: DeployConfig, metrics: list[str],
                     device: str):
    """Returns the DARTS CostModel of ``metrics`` read through the space's predictor
    (calibrated when ``lut calibrate`` fitted one); raises UserError naming missing
    entries."""
    from nasbench.oneshot.cost import CostModel
    return CostModel(Predictor.from_lut(DartsSpace(deploy), lut, metrics, device,
                                        lut_path).table)


def predict_costs(lut, deploy: DeployConfig, genotype: Genotype) -> dict:
    """Returns the LUT prediction of the deploy network of ``genotype`` (see
    :meth:`nasbench.predict.predictor.Predictor.predict`)."""
    return _predict(DartsSpace(deploy), lut, genotype)


def predict_arch_costs(lut, deploy: ProxylessDeployConfig, arch: ProxylessArch) -> dict:
    """Returns the LUT prediction of ``arch``'s ProxylessNAS network (calibrated when
    fitted)."""
    return _predict(ProxylessSpace(deploy), lut, arch)


def genotype_of_run(run_dir: str | Path) -> Genotype:
    """Returns the genotype.json genotype of a run."""
    d = json.loads((Path(run_dir) / "genotype.json").read_text())
    return genotype_from_dict(d["genotype"])


__all__ = ["search_architecture", "search_proxyless", "run_search", "build_cost_model",
           "predict_costs", "predict_arch_costs", "genotype_of_run", "measure_deploy",
           "load_result", "summary_lines", "SearchResult"]
