"""Evaluators: what a multi-trial searcher calls to learn a candidate's accuracy and cost.

An evaluator is a callable ``evaluator(arch) -> {"accuracy": %, "cost": {metric: value},
"cached": bool}``; it keeps its own query cache (by architecture) and counts
``queries`` (distinct architectures evaluated) and ``cache_hits`` (repeats answered from
the cache for free), so a budget in queries is counted honestly.

* :class:`TableEvaluator` (``--evaluate table``): NAS-Bench-201's accuracy table, free
  and instant; the search sees validation accuracy (12-epoch by default), never test.
  Costs come from a cost function (a HW-NAS-Bench device's table, or the predictor).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UserError

EVALUATORS = ("table",)


class TableEvaluator:
    """The NAS-Bench-201 table as an evaluator (see the module doc). ``fidelity``:
    ``12`` (12-epoch validation accuracy, every data set) or ``200`` (200-epoch CIFAR-10
    validation accuracy; cells the table lacks answer None). ``cost(arch)`` returns
    ``{metric: value}``."""

    def __init__(self, bench, dataset: str, cost: Callable[[object], dict],
                 fidelity: int = 12):
        if fidelity not in (12, 200):
            raise UserError(f"--fidelity must be 12 or 200 (epochs), got {fidelity}")
        self.bench, self.dataset, self.cost, self.fidelity = bench, dataset, cost, fidelity
        self.values = bench.val_accuracy(dataset, fidelity)    # checks the data set
        self.cache: dict[str, dict] = {}
        self.queries = self.cache_hits = 0

    @property
    def signal(self) -> str:
        """Returns what the search sees, in words."""
        return f"{self.fidelity}-epoch {self.dataset} validation accuracy (NAS-Bench-201)"

    def accuracy(self, arch) -> float | None:
        """Returns the search signal of a cell (validation accuracy, %), uncounted."""
        v = float(self.values.at[self.bench.index(arch)])
        return None if v != v else v            # NaN: a cell the table lacks

    def __call__(self, arch) -> dict:
        key = arch.to_str()
        if key in self.cache:
            self.cache_hits += 1
            return {**self.cache[key], "cached": True}
        self.queries += 1
        out = {"accuracy": self.accuracy(arch), "cost": self.cost(arch)}
        self.cache[key] = out
        return {**out, "cached": False}

    def state_dict(self) -> dict:
        """Returns the cache and counters (resume)."""
        return {"cache": self.cache, "queries": self.queries, "cache_hits": self.cache_hits}

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict`."""
        self.cache = dict(state["cache"])
        self.queries, self.cache_hits = state["queries"], state["cache_hits"]
