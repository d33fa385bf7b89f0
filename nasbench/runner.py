"""DARTS / PC-DARTS searches through the one runner (:mod:`nasbench.run`), and the names
this module has always offered (``search_architecture``, ``SearchResult``...)."""

from __future__ import annotations

import json
from pathlib import Path

from .genotypes import Genotype, genotype_from_dict
from .run.measure import conv_linear_macs, count_complexity, measure_deploy  # noqa: F401
from .run.result import RESULT_SCHEMA, SearchResult, load_result, summary_lines  # noqa: F401
from .run.runner import complete_run, resolve_lut, run_search  # noqa: F401
from .run.util import (  # noqa: F401
    Logger,
    Progress,
    atomic_torch_save,
    new_run_dir,
    rng_state,
    seed_everything,
    set_rng_state,
    write_json,
)
from .search.config import DARTSConfig
from .spaces.darts import DartsSpace, DeployConfig


def search_architecture(config: DARTSConfig | None = None, *, resume: str | Path | None = None,
                        quiet: bool = False, lut: str | Path | None = None,
                        _interrupt_after_steps: int | None = None) -> SearchResult:
    """Runs a DARTS / PC-DARTS search (see :func:`nasbench.run.runner.run_search`);
    returns the :class:`SearchResult`."""
    if config is None and resume is None:
        config = DARTSConfig()
    return run_search(config, resume=resume, quiet=quiet, lut=lut,
                      _interrupt_after_steps=_interrupt_after_steps)


def build_cost_model(lut, lut_path: Path, deploy: DeployConfig, metrics: list[str],
                     device: str):
    """Returns the DARTS CostModel of ``metrics`` read through the space's predictor
    (calibrated when ``lut calibrate`` fitted one); raises UserError naming missing
    entries."""
    from .predict.predictor import Predictor
    from .search.cost import CostModel
    return CostModel(Predictor.from_lut(DartsSpace(deploy), lut, metrics, device,
                                        lut_path).table)


def predict_costs(lut, deploy: DeployConfig, genotype: Genotype) -> dict:
    """Returns the LUT prediction of the deploy network of ``genotype`` (see
    :meth:`nasbench.predict.predictor.Predictor.predict`)."""
    from .predict.predictor import predict_costs as predict
    return predict(DartsSpace(deploy), lut, genotype)


def genotype_of_run(run_dir: str | Path) -> Genotype:
    """Returns the genotype.json genotype of a run."""
    d = json.loads((Path(run_dir) / "genotype.json").read_text())
    return genotype_from_dict(d["genotype"])
