"""``--evaluate zc``: each multi-trial candidate is scored by zero-cost proxies on the
run's own images, at initialisation, in about a second on a CPU and without training.

The score is :mod:`nasbench.proxies`' (``--proxy``: one proxy or an aggregate such as
the default ``jacob_cov+naswot+params``), computed on one minibatch of ``--zc-batch``
images of the training split (never the test split) with the network initialised from
``--zc-seed``. So that every searcher can use it as it uses an accuracy (higher is
better, MnasNet's reward multiplies it), the evaluator reports it on a 0-100 scale:
the proxies' robust z-scores against a reference of ``--zc-reference`` valid cells of
the space (sampled with ``--zc-seed``, scored once and cached), averaged and mapped
through the normal CDF; 50 is the reference's median, 0 a network whose output ignores
its input. The run's seed does not enter the score, so the on-disk proxy cache serves
every seed, run and worker. Costs come from the run's cost function
(:func:`~nasbench.searchers.evaluate.run_cost`).

Counters: ``queries`` distinct architectures answered in this run, ``computed`` those
whose network was run here (the rest came from the cache), ``cache_hits`` repeats.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from nasbench.proxies import parse_proxy
from nasbench.proxies.scorer import Aggregate, ProxyScorer
from nasbench.searchers.evaluate import register_evaluator, run_cost


@register_evaluator("zc")
class ZeroCostEvaluator:
    """Scores each candidate with zero-cost proxies (see the module doc):
    ``evaluator(arch) -> {"accuracy": score 0-100, "cost": {metric: value}, "proxies":
    {name: raw value}, "cached": bool}``, ``cost(arch)``, ``prepare()`` (scores the
    reference once), ``state_dict`` / ``load_state_dict``."""

    #: what its "accuracy" is (the finalists' records and the summary say so)
    accuracy_kind = "zero-cost"

    def __init__(self, scorer: ProxyScorer, proxy: str, cost: Callable[[object], dict], *,
                 reference: int = 50, log=None):
        self.scorer, self.proxy, self.cost = scorer, proxy, cost
        self.members = parse_proxy(proxy)
        self.reference_n = reference
        self.log = log or (lambda *_: None)
        self.aggregate: Aggregate | None = None
        self.cache: dict[str, dict] = {}
        self.queries = self.cache_hits = 0

    @classmethod
    def check_config(cls, cfg) -> None:
        """Raises UserError (one line) for a bad ``--proxy`` before any work."""
        parse_proxy(cfg.proxy)

    @classmethod
    def from_run(cls, cfg, ctx) -> ZeroCostEvaluator:
        """Returns the zc evaluator of a run: the space's deploy network at the data's
        input size on the run's training images; cost: :func:`run_cost`."""
        deploy = ctx.space.deploy
        if getattr(deploy, "input_size", None) not in (None, ctx.data.input_size):
            deploy = dataclasses.replace(deploy, input_size=ctx.data.input_size)
        scorer = ProxyScorer(type(ctx.space)(deploy), ctx.data, batch=cfg.zc_batch,
                             seed=cfg.zc_seed)
        return cls(scorer, cfg.proxy, run_cost(ctx), reference=cfg.zc_reference,
                   log=lambda line: ctx.log(line))

    @property
    def signal(self) -> str:
        """Returns what the search sees, in words."""
        return (f"zero-cost score {self.proxy} on {self.scorer.batch} training images at "
                f"initialisation (0-100; 50 = the median of {self.reference_n} reference "
                f"cells)")

    def prepare(self, on_step=None) -> None:
        """Scores the reference cells (from the cache when it has them) and fits the
        0-100 scale on them; idempotent."""
        if self.aggregate is not None:
            return
        cells = self.scorer.space.sample_distinct(random.Random(self.scorer.seed),
                                                  self.reference_n, valid=True)
        before = self.scorer.computed
        rows = []
        for i, a in enumerate(cells, 1):
            rows.append(self.scorer.scores(a, self.members))
            if on_step is not None:
                on_step(0, f"zc reference {i}/{len(cells)}")
        self.aggregate = Aggregate.fit(self.members, rows)
        self.log(f"zc evaluator: {self.proxy} standardised on {len(cells)} reference "
                 f"cells ({self.scorer.computed - before} scored now, the rest cached in "
                 f"{self.scorer.folder})")

    def score(self, arch) -> tuple[float, dict]:
        """Returns (the 0-100 score, {proxy: raw value}) of ``arch`` (uncounted)."""
        self.prepare()
        raw = self.scorer.scores(arch, self.members)
        return self.aggregate(raw), raw

    def __call__(self, arch) -> dict:
        key = self.scorer.space.arch_id(arch)
        if key in self.cache:
            self.cache_hits += 1
            return {**self.cache[key], "cached": True}
        self.queries += 1
        score, raw = self.score(arch)
        out = {"accuracy": score, "cost": self.cost(arch), "proxies": raw}
        self.cache[key] = out
        return {**out, "cached": False}

    @property
    def computed(self) -> int:
        """Returns the networks run by this evaluator's scorer (not from the cache)."""
        return self.scorer.computed

    def state_dict(self) -> dict:
        """Returns the run's answers, counters and 0-100 scale (resume: the scores
        already told keep their scale, whatever the cache holds by then)."""
        return {"cache": dict(self.cache), "queries": self.queries,
                "cache_hits": self.cache_hits,
                "aggregate": self.aggregate.to_dict() if self.aggregate else None}

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict`."""
        self.cache = dict(state["cache"])
        self.queries, self.cache_hits = state["queries"], state["cache_hits"]
        if state.get("aggregate"):
            self.aggregate = Aggregate(**state["aggregate"])
