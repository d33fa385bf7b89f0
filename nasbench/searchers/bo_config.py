"""The Bayesian-optimisation methods' settings and declarations (light: no optuna, no
numpy): ``bo`` (Optuna's GPSampler, :mod:`.bo`) and ``mobo`` (the cost-aware expected
hypervolume improvement, :mod:`.mobo`)."""

from __future__ import annotations

from dataclasses import dataclass

from nasbench.config import parse_objective
from nasbench.errors import UserError
from nasbench.options import option
from nasbench.registry import declare_searcher
from nasbench.searchers.trials_config import TrialConfig


@dataclass
class BOConfig(TrialConfig):
    """Settings of ``bo``: ``startup`` uniform cells before the Gaussian process
    proposes. With a hard target the study has one objective (accuracy; log EI),
    otherwise accuracy and each cost (log EHVI)."""

    method: str = "bo"
    startup: int = option(10, "bo, mobo: uniform cells before the model proposes.", min=1)

    def is_multi_objective(self) -> bool:
        """Returns whether the study optimises accuracy and cost together (no hard
        target) rather than accuracy alone among the cells under a hard target."""
        return not (self.latency_target_ms is not None and self.hard_target)

    def check(self) -> None:
        super().check()
        if self.is_multi_objective() and not parse_objective(self.objective):
            raise UserError(f"--method {self.method} without a hard target optimises "
                            f"accuracy against a cost: give --objective acc+latency (or "
                            f"acc+energy), or a --latency-target")


@dataclass
class MOBOConfig(BOConfig):
    """Settings of ``mobo``: ``startup`` as for bo, and ``pool`` the candidates scored
    per proposal on a space too large to enumerate (sampled and mutated cells)."""

    method: str = "mobo"
    pool: int = option(2000, "mobo: candidates scored per proposal on a space too large "
                       "to enumerate (nb201's 15,625 cells are all scored).", min=10)

    def check(self) -> None:
        if not parse_objective(self.objective):
            raise UserError("--method mobo knows each cell's cost before evaluating it: "
                            "give --objective acc+latency (or acc+energy)")
        super().check()


declare_searcher("bo", config=BOConfig, impl="nasbench.searchers.bo:BOSearcher",
                 summary="Gaussian-process BO (Optuna's GPSampler): log EI, or log EHVI "
                         "over accuracy and cost.")
declare_searcher("mobo", config=MOBOConfig, impl="nasbench.searchers.mobo:MOBOSearcher",
                 summary="Cost-aware BO: a GP on accuracy, the known cost, the expected "
                         "hypervolume improvement over every cell.")
