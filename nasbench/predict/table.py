"""The cost table of a space's deploy network: fixed cost plus slots x candidates.

For each LUT metric m (latency ms, energy J, memory B) and a space's slots (see
:mod:`nasbench.spaces.base`)::

    E[m] = fixed_m + sum_slots w_s * sum_candidates p_{s,o} * T_m[s, o]  (+ extra_m)

* ``T_m[s, o]`` is the LUT cost of every instance candidate ``o`` places at slot ``s``
  (summed over repetitions: a DARTS edge recurs in every cell of its kind); columns are
  the space's ``candidate_ops``; a candidate not allowed at a slot (DARTS's ``none``,
  ProxylessNAS's ``zero`` without a shortcut) is masked: probability 0, cost 0.
* ``p`` is the softmax of a searcher's logits over the allowed candidates, ``w`` the
  slots' weights (the space's defaults, or a searcher's, e.g. PC-DARTS's edge
  normalisation), so E[m] is differentiable in both.
* ``fixed_m`` is the architecture-independent part (and a calibrated LUT's intercept);
  ``extra_m`` an optional space term (DARTS: node sums a fusing backend folds into a
  conv epilogue, at their calibrated scale).

A discrete architecture costs ``fixed + sum over its picks of T[s, o] (+ extra)``, the
same number as the sum over its op instances. :meth:`CostTable.repair` is the one greedy
hard-target repair every method shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

UNITS = {"latency": "ms", "energy": "J", "memory": "B"}


@dataclass
class RepairResult:
    """Outcome of :meth:`CostTable.repair`: the architecture after repair (the space's
    value), its cost before and after (LUT units: ms for latency), the target, whether
    it is met, the swaps made, the cheapest cost with the same slots and a one-line
    message. (``genotype`` is ``arch``, the name DARTS code reads.)"""

    arch: object
    before_ms: float
    after_ms: float
    target_ms: float
    met: bool
    swaps: list[dict]
    lower_bound_ms: float
    message: str

    @property
    def genotype(self):
        return self.arch


@dataclass
class CostTable:
    """LUT costs of a space's deploy network arranged per slot and candidate.

    ``tables[m]``: float64 [slots x candidates] (0 where masked); ``allowed``: bool
    [slots x candidates]; ``weights``: float64 [slots]; ``fixed[m]``: float;
    ``reference[m]``: E[m] under uniform logits and the default weights; ``extra[m]``:
    an object with ``expected(probs, weights)`` and ``exact(picks)``, or absent."""

    space: object
    metrics: list[str]
    batch: int
    candidates: list[str]
    allowed: torch.Tensor
    weights: torch.Tensor
    tables: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_lut(cls, space, lut, metrics, batch: int | None = None) -> CostTable:
        """Returns the table of ``space``'s deploy network read from ``lut`` (a LUT or a
        calibrated view); raises ``KeyError(metric, missing full keys)`` when the LUT
        does not cover the fixed parts and every candidate of every slot."""
        from nasbench.predict.calibration import fused_add_scale
        deploy = space.deploy
        batch = batch or deploy.batches[0]
        slots = space.slots()
        cands = list(space.candidate_ops)
        allowed = torch.tensor([[op in s.candidates for op in cands] for s in slots])
        weights = torch.tensor([s.weight for s in slots], dtype=torch.float64)
        ct = cls(space, list(metrics), batch, cands, allowed, weights)
        fixed = space.fixed_instances()
        cells = [[space.slot_instances(i, op) if allowed[i, o] else [] for o, op in
                  enumerate(cands)] for i in range(len(slots))]
        keys = [i.key for i in fixed] + [i.key for row in cells for c in row for i in c]
        keys = list(dict.fromkeys(keys))
        for m in ct.metrics:
            missing = lut.missing(keys, batch, m, deploy.dtype)
            if missing:
                raise KeyError(m, missing)
        for m in ct.metrics:
            def val(key, m=m):
                return lut.value(key, batch, m, deploy.dtype)
            t = torch.zeros(len(slots), len(cands), dtype=torch.float64)
            for s, row in enumerate(cells):
                for o, insts in enumerate(row):
                    for inst in insts:
                        t[s, o] += val(inst.key)
            ct.tables[m] = t
            # a calibrated LUT view adds its per-network overhead (ms) to the fixed part
            ct.fixed[m] = (sum(val(i.key) for i in fixed) + space.fixed_extra(lut, val)
                           + getattr(lut, "intercept", {}).get(m, 0.0))
            scale = fused_add_scale(lut) if m == "latency" else None
            extra = space.cost_extra(scale, val) if scale is not None else None
            if extra is not None:
                ct.extra[m] = extra
        uniform = torch.zeros(len(slots), len(cands), dtype=torch.float64)
        for m in ct.metrics:
            ct.reference[m] = float(ct.expected(uniform)[m])
        return ct

    # ---- expectations -------------------------------------------------------------------

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Returns softmax(logits) over each slot's allowed candidates (float64)."""
        return torch.softmax(logits.double().masked_fill(~self.allowed, float("-inf")), -1)

    def expected(self, logits: torch.Tensor, weights: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
        """Returns {metric: E[metric]} (0-dim float64 tensors in LUT units: ms, J, B),
        differentiable in ``logits`` [slots x candidates] and ``weights`` [slots]."""
        p = self.probs(logits)
        w = self.weights if weights is None else weights.double()
        out = {}
        for m in self.metrics:
            out[m] = self.fixed[m] + (w * (p * self.tables[m]).sum(1)).sum()
            if m in self.extra:
                out[m] = out[m] + self.extra[m].expected(p, w)
        return out

    # ---- discrete architectures ---------------------------------------------------------

    def column(self, op: str) -> int:
        """Returns the column of candidate ``op``."""
        return self.candidates.index(op)

    def pick_costs(self, picks: list[tuple[int, str]], metric: str = "latency") -> list[float]:
        """Returns the table cost (LUT units) of every pick."""
        t = self.tables[metric]
        return [float(t[s, self.column(op)]) for s, op in picks]

    def picks_cost(self, picks: list[tuple[int, str]]) -> dict[str, float]:
        """Returns {metric: cost of the network of ``picks``} (ms, J, B)."""
        out = {}
        for m in self.metrics:
            out[m] = self.fixed[m] + sum(self.pick_costs(picks, m))
            if m in self.extra:
                out[m] += self.extra[m].exact(picks)
        return out

    def cost(self, arch) -> dict[str, float]:
        """Returns {metric: LUT cost of ``arch``'s deploy network} (ms, J, B)."""
        return self.picks_cost(self.space.picks(arch))

    def bounds(self, metric: str = "latency") -> tuple[float, float]:
        """Returns (cheapest, dearest) cost with every slot used once at its weight 1
        (the space's cost range when every slot is a decision, as in ProxylessNAS)."""
        t = self.tables[metric]
        lo = t.masked_fill(~self.allowed, float("inf")).min(1).values.sum()
        hi = t.masked_fill(~self.allowed, float("-inf")).max(1).values.sum()
        return self.fixed[metric] + float(lo), self.fixed[metric] + float(hi)

    def _valid_with(self, arch, picks, i: int, o: int) -> bool:
        """Returns whether ``arch`` with pick ``i`` set to candidate column ``o`` is a
        valid network (:meth:`~nasbench.spaces.base.SearchSpace.valid`)."""
        trial = list(picks)
        trial[i] = (trial[i][0], self.candidates[o])
        return self.space.valid(self.space.with_picks(arch, trial))

    def _exact_costs(self, archs, exact) -> torch.Tensor:
        """Returns ``exact(arch)`` for every architecture (inf where it has none),
        computed once per ``exact`` function."""
        cache = getattr(self, "_exact_cache", None)
        if cache is None or cache[0] is not exact:
            vals = [exact(a) for a in archs]
            cache = (exact, torch.tensor([float("inf") if v is None or v != v else float(v)
                                          for v in vals], dtype=torch.float64))
            self._exact_cache = cache
        return cache[1]

    def _best_valid(self, picks, target: float, scores: torch.Tensor, metric: str, enum,
                    exact=None):
        """Returns (picks, cost, cheapest valid cost) of the valid architecture of an
        enumerable space with the largest summed log-score whose cost meets ``target``
        (ties: the fewest changed decisions); the cheapest valid one when none does."""
        archs, cols, ok = enum
        slots = torch.arange(cols.shape[1])
        colmap = torch.tensor([self.column(op) for op in self.space.candidate_ops])
        cols = colmap[cols]
        cost = self.fixed[metric] + self.tables[metric][slots, cols].sum(1)
        if exact is not None:
            cost = self._exact_costs(archs, exact)
        elif metric in self.extra:
            cost = cost + torch.tensor([self.extra[metric].exact(self.space.picks(a))
                                        for a in archs], dtype=torch.float64)
        logs = torch.log(scores.clamp_min(1e-300))
        # equal scores (no preference): keep as many of the derived decisions as possible
        same = (cols == torch.tensor([self.column(op) for _, op in picks])).sum(1)
        total = logs[slots, cols].sum(1) + 1e-9 * same
        feasible = ok & (cost <= target)
        lower = float(cost[ok].min())       # (inf: no valid architecture has a cost)
        k = int(total.masked_fill(~feasible, float("-inf")).argmax()) if feasible.any() \
            else int(cost.masked_fill(~ok, float("inf")).argmin())
        return self.space.picks(archs[k]), float(cost[k]), lower

    def repair(self, arch, target: float, scores: torch.Tensor,
               metric: str = "latency", exact=None) -> RepairResult:
        """Returns ``arch`` made to meet a hard ``metric`` target, if possible.

        An enumerable space (:meth:`~nasbench.spaces.base.SearchSpace.enumerate_picks`,
        nb201) is repaired exactly: the valid architecture with the largest summed
        log-score under the target. Otherwise greedy: while over target, take the pick
        with the highest table cost that has a cheaper allowed candidate keeping the
        architecture valid, and replace its op by the cheaper candidate with the largest
        score (``scores`` [slots x candidates]: the searcher's architecture weights or
        probabilities); slots stay. Stops when the target is met or no pick can be made
        cheaper. An architecture that meets the target and is valid is kept as is.
        ``exact`` (optional, enumerable spaces): a function giving an architecture's
        measured cost (None when unmeasured) used instead of the table's sum, where the
        device's measurement is a table lookup (HW-NAS-Bench)."""
        t = self.tables[metric]
        scores = scores.detach().double()
        picks = self.space.picks(arch)
        measured = None if exact is None else exact(arch)
        before = cost = self.picks_cost(picks)[metric] if exact is None else \
            (float("inf") if measured is None else measured)
        lower = self.fixed[metric] + sum(
            float(t[s][self.allowed[s]].min()) for s, _ in picks)
        swaps = []
        enum = self.space.enumerate_picks() if (cost > target or not self.space.valid(arch)) \
            else None
        if exact is not None and enum is None and cost > target:
            exact = None                     # (not enumerable: the table's greedy repair)
        if enum is not None:
            picks, cost, lower = self._best_valid(picks, target, scores, metric, enum, exact)
            for i, ((s, new), (_, old)) in enumerate(zip(picks, self.space.picks(arch),
                                                        strict=True)):
                if new != old:
                    swaps.append({**self.space.swap_where(i, s), "from": old, "to": new,
                                  "saved": float(t[s, self.column(old)] -
                                                 t[s, self.column(new)]),
                                  "cost_after": cost})
        while cost > target and enum is None:
            best = None
            for i, (s, op) in enumerate(picks):
                cur = float(t[s, self.column(op)])
                cheaper = [o for o in range(len(self.candidates))
                           if self.allowed[s, o] and float(t[s, o]) < cur and
                           self._valid_with(arch, picks, i, o)]
                if cheaper and (best is None or cur > best[0]):
                    o = max(cheaper, key=lambda o, s=s: (float(scores[s, o]), -o))
                    best = (cur, i, o)
            if best is None:
                break
            cur, i, o = best
            s, old = picks[i]
            picks[i] = (s, self.candidates[o])
            cost = self.picks_cost(picks)[metric]
            swaps.append({**self.space.swap_where(i, s), "from": old, "to": self.candidates[o],
                          "saved": cur - float(t[s, o]), "cost_after": cost})
        met = cost <= target
        u = UNITS[metric]
        if enum is not None:
            why = (f"missed the target ({before:.3f} {u} > {target:.3f} {u})"
                   if before > target else "is not a valid network")
            msg = (f"derived network {why}; the most likely valid network within the "
                   f"target (of all {len(enum[0]):,}) changes {len(swaps)} decision(s): "
                   f"{cost:.3f} {u}" if met else
                   f"cannot meet the target {target:.3f} {u}: the cheapest valid network "
                   f"costs {lower:.3f} {u}")
            return RepairResult(self.space.with_picks(arch, picks), before, cost, target,
                                met, swaps, lower, msg)
        if met and not swaps:
            msg = f"derived network meets the target: {before:.3f} {u} <= {target:.3f} {u}"
        elif met:
            msg = (f"derived network missed the target ({before:.3f} {u} > {target:.3f} "
                   f"{u}); repaired with {len(swaps)} op swap(s) to {cost:.3f} {u}")
        else:
            msg = (f"cannot meet the target {target:.3f} {u}: the derived network costs "
                   f"{before:.3f} {u}; the cheapest op at each of its decisions gives "
                   f"{cost:.3f} {u}, which could not meet it either (lower bound with "
                   f"these decisions {lower:.3f} {u})")
        return RepairResult(self.space.with_picks(arch, picks), before, cost, target, met,
                            swaps, lower, msg)
