"""PNAS (Liu et al., ECCV 2018): progressive search over cells built block by block,
ranked by a learned accuracy predictor, hardware-aware.

The space groups its decisions into blocks (:meth:`~nasbench.spaces.base.SearchSpace.blocks`:
nb201's nodes in order; darts's normal-cell nodes, the reduction cell repeating the
normal one as in PNAS). A partial cell of b blocks is trained as the space completes it
(:meth:`~nasbench.spaces.base.SearchSpace.complete`: the b-th block is the output).

Stage 1 evaluates every 1-block cell. Stage b expands each of the best ``beam`` cells
of stage b-1 by every choice of block b (each child one block larger, none twice),
drops the children over the hard target by the cost function (they never cost a
training), ranks the rest with the accuracy predictor (:mod:`nasbench.predict.surrogate`)
fitted on every cell evaluated so far - with a soft target, on its predicted accuracy
times the MnasNet factor of its cost - and evaluates the top ``beam``, until the cell
is complete.

The stages are an Optuna sampler (:class:`PNASSampler`): like the other searchers it
reads the study's trials and keeps no state of its own, so a run resumes from its
study; it proposes the next member of the current stage, and each trial records its
stage and partial cell as system attributes. The stages are synchronous: a stage is
planned when the previous one has finished (one process; extra workers wait).
"""

from __future__ import annotations

import itertools
import json

from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import TrialState

from nasbench.errors import UserError
from nasbench.searchers.base import register_searcher
from nasbench.searchers.trials import TrialSearcher
from nasbench.searchers.trials_config import PNASConfig, beam_for, planned_queries  # noqa: F401

ATTR_BLOCK = "pnas_block"
ATTR_PARTIAL = "pnas_partial"


def expansions(space, partial: dict) -> list[dict]:
    """Returns every partial cell one block larger than ``partial`` (the next block of
    :meth:`blocks` set every way the space's choices allow), in a fixed order."""
    blocks, opts = space.blocks(), space.choices()
    b = next((i for i, blk in enumerate(blocks) if blk[0] not in partial), None)
    if b is None:
        return []
    names = blocks[b]
    return [{**partial, **dict(zip(names, combo, strict=True))}
            for combo in itertools.product(*(opts[n] for n in names))]






def _key(partial: dict) -> str:
    return json.dumps(partial, sort_keys=True)


class PNASSampler(BaseSampler):
    """Optuna's sampler protocol around PNAS's stages (see the module doc).

    ``space`` the bound search space, ``beam`` K, ``predictor`` a factory returning an
    unfitted :class:`~nasbench.predict.surrogate.AccuracyPredictor`, ``cost`` the cost
    function (``arch -> {metric: value}``), ``over`` the hard-target test of a cost,
    ``score(accuracy, cost)`` what the stage ranks by (the study's value)."""

    def __init__(self, space, beam: int, predictor, cost, over, score, seed=None):
        if beam < 1:
            raise UserError(f"--beam must be positive, got {beam}")
        self.space, self.beam, self.predictor = space, beam, predictor
        self.cost, self.over, self.score = cost, over, score
        self.blocks = space.blocks()
        self._dists = {k: CategoricalDistribution(v) for k, v in space.choices().items()}
        self._random = RandomSampler(seed=seed)
        self._plans: dict[int, list[dict]] = {}     # stage -> its members (in order)
        self.fits = 0                               # predictor fits (tests, logs)

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    def __getstate__(self):
        # pickled with an in-memory study (a checkpoint): the run's callables are not
        # state - the searcher binds a fresh sampler on resume, and the plans follow
        # from the study
        return {k: v for k, v in self.__dict__.items()
                if k not in ("predictor", "cost", "over", "score", "_plans")}

    def infer_relative_search_space(self, study, trial):
        return dict(self._dists)

    # ---- the stages, read from the study -------------------------------------------------

    @staticmethod
    def _staged(study) -> list:
        return [t for t in study.get_trials(deepcopy=False)
                if ATTR_BLOCK in t.system_attrs]

    def _accuracies(self, trials) -> dict[str, float]:
        """Returns {arch JSON: accuracy %} of the evaluated trials (cache hits included)."""
        out = {}
        for t in trials:
            res = t.user_attrs.get("result")
            claim = t.user_attrs.get("claim")
            if t.state == TrialState.COMPLETE and res and claim:
                out[_key(claim["arch"])] = res["accuracy"]
        return out

    def stage(self, study) -> tuple[int, list[dict], set[str]] | None:
        """Returns (stage b, its members, the members already proposed), the stage whose
        members are still to propose; None when the search is complete or the current
        stage is still being evaluated."""
        staged = self._staged(study)
        for b in range(1, len(self.blocks) + 1):
            mine = [t for t in staged if t.system_attrs[ATTR_BLOCK] == b]
            members = self.plan(b, study, staged)
            proposed = {_key(t.system_attrs[ATTR_PARTIAL]) for t in mine
                        if t.state != TrialState.WAITING}
            if any(_key(m) not in proposed for m in members):
                return b, members, proposed
            if any(t.state == TrialState.RUNNING for t in mine):
                return None                         # wait for the stage to finish
        return None

    def done(self, study) -> bool:
        """Returns True once every stage's members were proposed and finished."""
        staged = self._staged(study)
        if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in staged):
            return False
        return self.stage(study) is None

    def plan(self, b: int, study, staged) -> list[dict]:
        """Returns the partial cells of stage ``b`` (cached: the plan of a stage depends
        only on the finished earlier stages, so it is the same on resume)."""
        if b in self._plans:
            return self._plans[b]
        if b == 1:
            kids = expansions(self.space, {})
            self._plans[1] = [k for k in kids if not self._over(k)
                              and self.space.valid(self.space.complete(k))]
            return self._plans[1]
        prev = [t for t in staged if t.system_attrs[ATTR_BLOCK] == b - 1]
        # only the earlier stages count (fit, parents, duplicates): a resumed run plans
        # stage b exactly as the uninterrupted one did, whatever of b is done already
        acc = self._accuracies([t for t in staged if t.system_attrs[ATTR_BLOCK] < b])
        scored = []
        for t in prev:
            if t.state != TrialState.COMPLETE:
                continue
            arch = self.space.complete(t.system_attrs[ATTR_PARTIAL])
            a = acc.get(_key(self.space.arch_to_dict(arch)))
            if a is not None:
                scored.append((self.score(a, self.cost(arch)), t.number,
                               t.system_attrs[ATTR_PARTIAL]))
        parents = [p for *_, p in sorted(scored, key=lambda s: (-s[0], s[1]))[:self.beam]]
        seen = set(acc)
        kids, archs = [], []
        for p in parents:
            for k in expansions(self.space, p):
                arch = self.space.complete(k)
                if self._over(k, arch) or not self.space.valid(arch) or \
                        _key(self.space.arch_to_dict(arch)) in seen:
                    continue
                seen.add(_key(self.space.arch_to_dict(arch)))
                kids.append(k)
                archs.append(arch)
        if len(kids) > self.beam:
            evaluated = [(self.space.arch_from_dict(json.loads(k)), v)
                         for k, v in acc.items()]
            model = self.predictor().fit([a for a, _ in evaluated], [v for _, v in evaluated])
            self.fits += 1
            mean = model.predict(archs)[0]
            rank = sorted(range(len(kids)), key=lambda i: (
                -self.score(float(mean[i]), self.cost(archs[i])), i))
            kids = [kids[i] for i in rank[:self.beam]]
        self._plans[b] = kids
        return kids

    def _over(self, partial: dict, arch=None) -> bool:
        arch = self.space.complete(partial) if arch is None else arch
        return self.over(self.cost(arch))

    # ---- the sampler protocol -----------------------------------------------------------

    def sample_relative(self, study, trial, search_space):
        if not search_space:
            return {}
        if "fixed_params" in trial.system_attrs:
            # a trial put back after its process died or was interrupted (Optuna's
            # retry): it evaluates the failed trial's member, so it takes its stage
            src = study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(
                study._study_id, trial.system_attrs.get("failed_trial", -1))) \
                if "failed_trial" in trial.system_attrs else None
            if src is not None and ATTR_BLOCK in src.system_attrs:
                for k in (ATTR_BLOCK, ATTR_PARTIAL):
                    study._storage.set_trial_system_attr(trial._trial_id, k,
                                                         src.system_attrs[k])
            return {}
        st = self.stage(study)
        if st is None:                   # complete, or waiting on a stage: nothing to add
            return {}
        b, members, proposed = st
        partial = next(m for m in members if _key(m) not in proposed)
        study._storage.set_trial_system_attr(trial._trial_id, ATTR_BLOCK, b)
        study._storage.set_trial_system_attr(trial._trial_id, ATTR_PARTIAL, partial)
        return self.space.encode(self.space.complete(partial))

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._random.sample_independent(study, trial, param_name,
                                               param_distribution)




@register_searcher("pnas")
class PNASSearcher(TrialSearcher):
    """PNAS (see the module doc)."""

    config_class = PNASConfig
    fresh = False              # it proposes the cells of its plan, repeats included

    def sampler(self, seed):
        from nasbench.predict.surrogate import AccuracyPredictor
        cfg, ctx = self.ctx.config, self.ctx
        ev = ctx.evaluator

        def predictor():
            return AccuracyPredictor(ctx.space, cfg.predictor_kind, cfg.predictor_members,
                                     seed=cfg.seed if seed is None else seed)

        def score(acc, cost):
            return self.values({"accuracy": acc}, cost)

        return PNASSampler(ctx.space, cfg.beam, predictor, ev.cost, self._over_target,
                           score, seed=seed)

    def state_dict(self) -> dict:
        """The multi-trial state without the sampler: PNAS's stages follow from the
        study, so a resume rebuilds them (the same plans, the predictor's fits seeded)."""
        return {**super().state_dict(), "sampler": None}

    def load_state_dict(self, state: dict) -> None:
        fresh = self.study.sampler
        super().load_state_dict(state)
        self.study.sampler = fresh

    @property
    def epochs(self) -> int:
        import math
        return math.ceil(self.planned / self.ctx.config.trials_per_epoch)

    @property
    def planned(self) -> int:
        """Returns the cells this search evaluates at most (beam and budget)."""
        return min(self.ctx.config.trials, planned_queries(self.ctx.space,
                                                           self.ctx.config.beam))

    def finished(self) -> bool:
        """Returns True when PNAS's last stage is done (before the budget runs out)."""
        return self.study.sampler.done(self.study)
