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

from nasbench.errors import UserError
from nasbench.registry import EVALUATORS as _EVALUATORS

#: the registered evaluators: ``--evaluate NAME`` -> a class with a ``from_run``
#: classmethod (see :func:`register_evaluator`)
EVALUATORS = _EVALUATORS


def register_evaluator(name: str):
    """Class decorator that registers an evaluator under ``name`` (``--evaluate NAME``).
    The class has ``from_run(cfg, ctx) -> evaluator``: ``cfg`` the run's config, ``ctx``
    a :class:`~nasbench.searchers.base.SearchContext` (space, predictor, data, device,
    log; no evaluator yet). Returns the class unchanged."""

    def decorate(cls):
        EVALUATORS.add((name,), cls)
        return cls

    return decorate


def make_evaluator(cfg, ctx):
    """Returns the evaluator of a multi-trial config (``cfg.evaluate``, looked up in
    :data:`EVALUATORS`), None for a config without one (one-shot methods)."""
    kind = getattr(cfg, "evaluate", None)
    if kind is None:
        return None
    cls = EVALUATORS.get(kind)
    return cls.from_run(cfg, ctx)


def run_cost(ctx):
    """Returns the cost function of a run: ``arch -> {metric: value}`` from the tabular
    device's table (``--device hw-nas-bench:DEV``), else from the predictor (the run's
    calibrated LUT)."""
    from nasbench.benchmarks.tabular import TabularDevice
    return ctx.device.cost if isinstance(ctx.device, TabularDevice) else ctx.predictor.cost


@register_evaluator("table")
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

    @classmethod
    def from_run(cls, cfg, ctx) -> TableEvaluator:
        """Returns the table evaluator of a run (NAS-Bench-201 CIFAR-10 at
        ``cfg.fidelity`` epochs from ``cfg.benchmark_dir``; cost: :func:`run_cost`)."""
        from nasbench.benchmarks.nb201 import NB201Bench
        return cls(NB201Bench(cfg.benchmark_dir), "cifar10", run_cost(ctx), cfg.fidelity)

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
