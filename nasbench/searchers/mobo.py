"""``--method mobo``: a cost-aware multi-objective Bayesian optimisation.

In hardware-aware NAS a cell's cost is known before it is evaluated (a LUT sum, a
fitted model, a device's table); only its accuracy is uncertain. So the surrogate models
accuracy alone - a Gaussian process with an ARD Hamming kernel on the cell's decisions
(:mod:`.gp`) - and each proposal is the cell that maximises the expected hypervolume
improvement of (accuracy, cost) over the front found so far, where the cost is exact
and the accuracy is Gaussian: the improvement is then a closed-form sum over the
front's staircase (:func:`~.gp.expected_hvi`). Under a hard target the search wants the
best accuracy among the cells under it: the proposal maximises the expected improvement
over the best feasible accuracy, among the feasible cells only.

The candidates are every cell of a space small enough to enumerate (NAS-Bench-201's
15,625, those the loop would evaluate: valid, with a known cost, under a hard target),
scored at each proposal with the posterior updated incrementally; otherwise a pool of
``pool`` cells, sampled and mutated from the front, scored afresh each time. The first
``startup`` cells are uniform. Several workers share one study: each proposal leaves
out the cells the study knows (evaluated, or in flight elsewhere: :class:`~.ledger.Ledger`)
and conditions the model on the cells in flight at its own predicted mean (the
"kriging believer" lie), so concurrent proposals spread out.
"""

from __future__ import annotations

import itertools
import random
import time

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler

from nasbench.errors import UserError
from nasbench.searchers.base import register_searcher
from nasbench.searchers.bo_config import MOBOConfig
from nasbench.searchers.gp import HammingGP, Posterior, excess, expected_hvi
from nasbench.searchers.ledger import params_key
from nasbench.searchers.trials import TrialSearcher

#: a space with at most this many cells is scored whole at each proposal
ENUMERABLE = 50_000
#: the most observations the hyperparameters are fitted on (the latest ones)
FIT_MAX = 200
#: mutations of each front cell added to a sampled pool
MUTANTS = 20


class CostAwareSampler(BaseSampler):
    """Optuna's sampler protocol around the cost-aware search (see the module doc).

    ``space`` the bound space, ``cost(params) -> float | None`` the known cost of a
    cell the loop would evaluate (None: one it would not - invalid, over a hard target,
    unmeasured), ``ledger`` the loop's view of the study, ``target`` a hard cost target (EI among
    the cells under it) or None (EHVI); ``startup``, ``pool``, ``seed``."""

    def __init__(self, space, cost, ledger, *, target: float | None = None,
                 startup: int = 10, pool: int = 2000, seed: int | None = None):
        self.space, self.cost, self.ledger = space, cost, ledger
        self.target, self.startup, self.pool = target, startup, pool
        self.names = list(space.choices())
        self.options = [list(v) for v in space.choices().values()]
        self._dists = {k: CategoricalDistribution(v) for k, v in space.choices().items()}
        self._rng = random.Random(seed)
        self._seed = seed or 0
        self._cands = None                # enumerable: (codes, costs, keys)
        self._post = None                 # its posterior, and the observations in it
        self._seen = 0
        self._next_fit = startup
        self.seconds: list[float] = []    # per proposal (the model's cost)

    def __getstate__(self):
        # checkpointed with the study: the callables and the candidate arrays are the
        # run's, rebuilt on resume (the posterior from the study's trials)
        drop = ("cost", "_cands", "_post", "_costs", "_free_mask")
        return {k: (None if k in drop else v) for k, v in self.__dict__.items()} | {
            "_seen": 0, "_next_fit": self.startup}

    def reseed_rng(self) -> None:
        self._rng.seed()

    def infer_relative_search_space(self, study, trial):
        return dict(self._dists)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._rng.choice(param_distribution.choices)

    # ---- encodings -------------------------------------------------------------------

    def code(self, params: dict) -> np.ndarray:
        """Returns the category index of each decision of ``params``."""
        return np.array([opts.index(params[n]) for n, opts in
                         zip(self.names, self.options, strict=True)])

    def params(self, code) -> dict:
        """Returns the parameters of a code."""
        return {n: opts[int(i)] for n, opts, i in zip(self.names, self.options, code,
                                                       strict=True)}

    def _enumerate(self):
        """Returns (codes [m x D], costs [m], keys) of every cell the loop would
        evaluate (once per run)."""
        if self._cands is None:
            codes, costs = [], []
            for code in itertools.product(*(range(len(o)) for o in self.options)):
                c = self.cost(self.params(code))
                if c is not None:
                    codes.append(code)
                    costs.append(c)
            if not codes:
                raise UserError("--method mobo: no cell of the space is valid with a "
                                "known cost under the target")
            arr = np.array(codes)
            self._cands = (arr, np.array(costs, float),
                           {params_key(self.params(c)): i for i, c in enumerate(arr)})
        return self._cands

    def _sampled_pool(self, evaluated: list):
        """Returns (codes, costs, keys) of a fresh pool: ``pool`` sampled cells and
        mutations of the evaluated front's cells, admissible and unknown."""
        seen, out, costs = set(), [], []

        def offer(p):
            k = params_key(p)
            if k in seen or self.ledger.known(p):
                return
            seen.add(k)
            c = self.cost(p)
            if c is not None:
                out.append(p)
                costs.append(c)

        front = _front([(_acc(t), self._observed_cost(t)) for t in evaluated])
        for i in front:
            arch = self.space.decode(evaluated[i].params)
            for _ in range(MUTANTS):
                offer(self.space.encode(self.space.mutate(arch, self._rng)))
        for _ in range(self.pool * 5):
            if len(out) >= self.pool + MUTANTS * len(front):
                break
            offer(self.space.encode(self.space.sample(self._rng)))
        if not out:
            return None
        codes = np.array([self.code(p) for p in out])
        return codes, np.array(costs, float), {params_key(p): i for i, p in enumerate(out)}

    # ---- the proposal ----------------------------------------------------------------

    def sample_relative(self, study, trial, search_space):
        if not search_space:
            return {}
        evaluated = self.ledger.evaluated
        if len(evaluated) < self.startup:
            return {}                          # uniform start-up (FreshSampler draws)
        t0 = time.perf_counter()
        enumerable = self.space.size() <= ENUMERABLE
        cands = self._enumerate() if enumerable else self._sampled_pool(evaluated)
        if cands is None:
            return {}
        codes, costs, keys = cands
        post = self._posterior(evaluated, codes, fresh=not enumerable)
        mu, sd = self._with_pending(post, keys, codes)
        acc = np.array([_acc(t) for t in evaluated])
        if self.target is not None:            # EI among the feasible cells
            score = excess(mu, sd, float(acc.max()))
        else:
            obs_cost = np.array([self._observed_cost(t) for t in evaluated], float)
            front = np.c_[acc, obs_cost][_front(list(zip(acc, obs_cost, strict=True)))]
            # the bench's convention: 10 % of the range beyond the worst value
            hi = float(max(costs.max(), obs_cost.max()))
            lo = float(min(costs.min(), obs_cost.min()))
            ref = (float(acc.min() - 0.1 * np.ptp(acc)), hi + 0.1 * (hi - lo))
            score = expected_hvi(mu, sd, costs, front, ref)
        score = np.where(self._free(evaluated, keys, len(codes), enumerable), score,
                         -np.inf)
        top = np.argpartition(-score, min(63, len(score) - 1))[:64]
        for i in top[np.argsort(-score[top], kind="stable")]:
            p = self.params(codes[i])
            if np.isfinite(score[i]) and not self.ledger.known(p):
                self.seconds.append(time.perf_counter() - t0)
                return p
        return {}

    def _free(self, evaluated: list, keys: dict, m: int, keep: bool) -> np.ndarray:
        """Returns the mask of candidates not evaluated yet (kept and extended with the
        new evaluations when the candidates are the fixed enumeration, ``keep``)."""
        free, done = (self.__dict__.get("_free_mask"), self.__dict__.get("_free_n", 0)) \
            if keep else (None, 0)
        if free is None or len(free) != m:
            free, done = np.ones(m, bool), 0
        for t in evaluated[done:]:
            i = keys.get(params_key(t.params))
            if i is not None:
                free[i] = False
        if keep:
            self._free_mask, self._free_n = free, len(evaluated)
        return free

    def _observed_cost(self, t) -> float:
        """Returns the cost of an evaluated trial (memoised by trial number)."""
        memo = self.__dict__.get("_costs")
        if memo is None:
            memo = self._costs = {}
        if t.number not in memo:
            memo[t.number] = self.cost(t.params)
        return memo[t.number]

    def _posterior(self, evaluated: list, codes: np.ndarray, fresh: bool) -> Posterior:
        """Returns the posterior over ``codes`` given ``evaluated``: refits the
        hyperparameters as the data doubles, else adds the new observations."""
        n = len(evaluated)
        if fresh or self._post is None or n >= self._next_fit:
            if self._post is None or n >= self._next_fit:
                gp = self._post.gp if self._post is not None else HammingGP(len(self.names))
                recent = evaluated[-FIT_MAX:]
                gp.fit(np.array([self.code(t.params) for t in recent]),
                       np.array([_acc(t) for t in recent]),
                       restarts=2 if self._post is None else 0, seed=self._seed)
                self._next_fit = max(self._next_fit * 2, n + 1)
            else:
                gp = self._post.gp
            self._post, self._seen = Posterior(gp, codes), n
            self._post.add_all(np.array([self.code(t.params) for t in evaluated]),
                               np.array([_acc(t) for t in evaluated]))
        for t in evaluated[self._seen:]:
            self._post.add(self.code(t.params), _acc(t))
        self._seen = n
        return self._post

    def _with_pending(self, post: Posterior, keys: dict, codes: np.ndarray):
        """Returns (mean, std) of the candidates, conditioned on the cells other workers
        have in flight at the model's own mean for them (kriging believer)."""
        mu, sd = post.predict()
        flying = self.ledger.flying()
        if not flying:
            return mu, sd
        lie_codes = [self.code(p) for p in flying]
        lies = []
        for p in flying:
            i = keys.get(params_key(p))
            lies.append(float(mu[i]) if i is not None else post.gp.mean)
        return post.fantasy(lie_codes, lies)


def _acc(t) -> float:
    """Returns an evaluated trial's accuracy (%)."""
    return float(t.user_attrs["result"]["accuracy"])


def _front(points: list[tuple[float, float]]) -> list[int]:
    """Returns the indices of the (accuracy up, cost down) non-dominated points."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    out, best = [], -np.inf
    for i in order:
        if points[i][0] > best:
            out.append(i)
            best = points[i][0]
    return out


@register_searcher("mobo")
class MOBOSearcher(TrialSearcher):
    """The cost-aware multi-objective BO (see the module doc)."""

    config_class = MOBOConfig
    tries = 2

    @property
    def multi_objective(self) -> bool:
        return self.ctx.config.is_multi_objective()

    def sampler(self, seed: int | None):
        cfg, ev = self.ctx.config, self.ctx.evaluator
        metric = self.cost_metrics[0]

        def cost(params: dict) -> float | None:
            if not self.admissible(params):
                return None
            return ev.cost(self.ctx.space.decode(params)).get(metric)

        probe = self.ctx.space.encode(self.ctx.space.sample(random.Random(0)))
        try:
            known = ev.cost(self.ctx.space.decode(probe)).get(metric)
        except Exception as e:  # noqa: BLE001 - any failure: no cost model
            raise UserError(f"--method mobo needs each cell's {metric} before it is "
                            f"evaluated, and this run has no cost model for the "
                            f"{self.ctx.space.name} space ({e}): give --lut or a "
                            f"tabular --device") from None
        if known is None and self.ctx.space.size() > ENUMERABLE:
            raise UserError(f"--method mobo needs each cell's {metric}: this run's cost "
                            f"model gives none for the {self.ctx.space.name} space")
        target = self.ctx.target_ms if not cfg.is_multi_objective() else None
        return CostAwareSampler(self.ctx.space, cost, self.ledger,
                                target=target, startup=cfg.startup, pool=cfg.pool,
                                seed=seed)

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        inner = getattr(self.study.sampler, "base", self.study.sampler)
        made = self.sampler(None)              # the run's callables, bound again
        inner.cost = made.cost
