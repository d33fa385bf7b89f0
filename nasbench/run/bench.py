"""``nasbench bench``: a searcher against NAS-Bench-201's ground truth, over seeds.

The truth is a table: every cell's test accuracy (at the best fidelity loaded: 12 epochs
in the shared files, 200 with a NATS-Bench archive, ``--nats``) against its cost on the
device (HW-NAS-Bench's table for ``hw-nas-bench:DEV``, or the user's LUT for their own
device). Per seed:

* a **multi-trial** searcher (random, ...) queries the accuracy table through the
  run's :class:`~nasbench.searchers.evaluate.TableEvaluator`: it sees *validation*
  accuracy only, with a budget of distinct queries (repeats are free and counted);
* a **one-shot** searcher (DARTS, PC-DARTS, ENAS) really trains its NAS-Bench-201
  supernet on real images through the runner (no retrain), and the bench looks up the
  cell it derives. Its found front is what the method itself ranked: ENAS's derivation
  samples by their shared-weight accuracy; DARTS and PC-DARTS rank nothing else, so
  their front is the derived cell alone.

The truth holds the valid cells only (the space's ``valid``: on nb201, cells whose
output depends on the input), and the hypervolume's reference accuracy is chance (10 %
on CIFAR-10). What a search returns is scored as a paper would (:mod:`.scores`): the
chosen cell's test accuracy and cost, its regret under the target, and at four more targets across
the cost range (the best-by-validation cell the search found under each), the
hypervolume gap and IGD of its found front (the cells it evaluated that are
non-dominated by validation accuracy and cost, scored at their test accuracy), the
hypervolume gap over queries (anytime curve) and wall time. Beside them, the
**signal floor**: the same scores for a search that queried every cell with the same
signal, i.e. what is lost to validation-vs-test noise rather than to the search.

Output folder: one ``<method>-<device>/bench.json`` per (method, device) (schema:
``docs/bench-schema.md``), ``seeds/seed-N.json`` per finished seed (a rerun with the
same settings reuses them), ``bench.html`` and ``bench.csv`` (one row per seed, the
report's).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nasbench.benchmarks.nb201 import CLASSES, NB201Bench, check_dataset
from nasbench.benchmarks.scores import SENSES, Truth, score
from nasbench.errors import UserError, warn_damaged
from nasbench.registry import SEARCHERS, searcher_config, searcher_kind
from profilers.lut import LUT, LUTError

#: the one-shot methods with a cost weight (ENAS's reward is MnasNet's: a target)
COST_WEIGHTED = ("darts", "pcdarts")
SCHEMA = 1


@dataclass
class BenchSpec:
    """One bench: a method on a device (see the module doc). ``target`` is in the
    cost's unit (ms for latency; mJ for a table's energy, J for a LUT's)."""

    method: str
    device: str
    benchmark_dir: str
    objective: str = "acc+latency"
    target: float | None = None
    queries: int = 100
    seeds: int = 3
    dataset: str = "cifar10"
    fidelity: int = 12
    # multi-trial searchers: what they see (table: the validation accuracy; zc:
    # zero-cost proxies computed on the images of data_dir)
    evaluate: str = "table"
    lut: str | None = None
    nats: str | None = None           # NATS-Bench topology archive: 200-epoch tables
    space: str = "nb201"
    # one-shot searchers and --evaluate zc: the images; one-shot: the search budget
    data_dir: str | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    preset: str = "quick"
    extra: dict = field(default_factory=dict)

    def key(self) -> str:
        """Returns a hash of the settings that change a seed's result."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str)
                              .encode()).hexdigest()[:16]


# ---- ground truth -------------------------------------------------------------------------


@dataclass
class Ground:
    """Everything the bench scores against: ``truth`` (test accuracy, cost), ``val`` (the
    search signal per index), the cost function the search sees, units and names."""

    truth: Truth
    val: dict
    cost_of: object
    metric: str
    unit: str
    device_name: str
    source: str
    space: object
    #: the 200-epoch validation accuracy per index where the tables have it (a second
    #: truth, reported beside the test accuracy: not what the score is of)
    val200: dict = field(default_factory=dict)


def ground_truth(spec: BenchSpec, bench: NB201Bench) -> Ground:
    """Returns the :class:`Ground` of a spec; raises UserError for bad input."""
    from nasbench.benchmarks.hwnas import tabular_space
    from nasbench.benchmarks.tabular import TabularDevice, is_tabular
    from nasbench.config import parse_objective
    check_dataset(spec.dataset)
    metrics = parse_objective(spec.objective)
    if len(metrics) != 1:
        raise UserError(f"--objective for bench: acc plus one cost (acc+latency or "
                        f"acc+energy), got {spec.objective!r}")
    metric = metrics[0]
    ids = [int(i) for i in bench.accuracy.index]
    archs = {i: bench.arch(i) for i in ids}
    space = tabular_space(spec.dataset)
    if is_tabular(spec.device):
        if spec.lut:
            raise UserError("--lut and --device hw-nas-bench:DEV are two cost sources: "
                            "give one")
        dev = TabularDevice(spec.device, spec.benchmark_dir, spec.dataset)
        if metric not in dev.metrics:
            raise UserError(f"HW-NAS-Bench has no {metric} for {dev.name} (it has "
                            f"{', '.join(dev.metrics)})")
        col = bench.hardware(spec.dataset)[f"{dev.name}_{metric}"].to_dict()
        cost = {i: float(col[i]) for i in ids}
        unit = "ms" if metric == "latency" else "mJ"
        name, source = dev.long_name, f"HW-NAS-Bench v1.0 table ({spec.dataset})"
    else:
        if not spec.lut:
            raise UserError(f"--device {spec.device}: the bench reads costs from a table "
                            f"(--device hw-nas-bench:DEV) or from your LUT (--lut FILE, "
                            f"profiled with --space nb201)")
        from nasbench.predict.predictor import Predictor
        from nasbench.spaces.nb201 import NB201Space
        try:
            lut = LUT.load(spec.lut)
        except LUTError as e:
            raise UserError(str(e)) from None
        if lut.provenance.get("space") not in (None, "nb201"):
            raise UserError(f"--lut {spec.lut} is a {lut.provenance.get('space')} LUT, "
                            f"not nb201")
        space = NB201Space(NB201Space.deploy_from_lut(lut))
        pred = Predictor.from_lut(space, lut, [metric], spec.device, Path(spec.lut))
        cost = {i: float(pred.cost(archs[i])[metric]) for i in ids}
        unit = {"latency": "ms", "energy": "J", "memory": "B"}[metric]
        name, source = lut.device_name, f"LUT {spec.lut}"
    # plain dicts: a pandas lookup per cell costs ~10 us, 15,625 of them per device
    test = bench.test_accuracy(spec.dataset).to_dict()   # the best fidelity loaded
    truth = Truth.of(ids, [float(test[i]) for i in ids], [cost[i] for i in ids],
                     valid=[space.valid(archs[i]) for i in ids],
                     chance=100.0 / CLASSES[spec.dataset])
    val = bench.val_accuracy(spec.dataset, spec.fidelity).to_dict()
    ev_val = {i: float(val[i]) for i in ids if not math.isnan(val[i])}
    try:
        v200 = bench.val_accuracy(spec.dataset, 200).to_dict()
        val200 = {i: float(v200[i]) for i in ids if not math.isnan(v200[i])}
    except UserError:                      # no 200-epoch table for this data set
        val200 = {}

    def cost_of(arch) -> dict:
        v = cost.get(bench.index(arch))
        v = None if v is None or math.isnan(v) else v
        # the searchers' targets are latency targets in ms; energy rides along
        return {metric: v} if metric != "latency" else {"latency": v}

    return Ground(truth, ev_val, cost_of, metric, unit, name, source, space, val200)


# ---- scoring ------------------------------------------------------------------------------


def signal_front(ground: Ground, found: list[int], signal: dict | None = None) -> list[int]:
    """Returns the cells of ``found`` that are non-dominated by (search signal, cost):
    the front a search would return, knowing only what it saw (``signal``: the
    method's own accuracy per cell, e.g. ENAS's shared-weight accuracy; default the
    table's validation accuracy a multi-trial search queried)."""
    from reports.pareto import non_dominated_mask
    signal = ground.val if signal is None else signal
    ok = [i for i in dict.fromkeys(found) if i in ground.truth and i in signal]
    if not ok:
        return []
    pts = np.array([[signal[i], ground.truth.point(i)[1]] for i in ok])
    return [i for i, k in zip(ok, non_dominated_mask(pts, SENSES), strict=True) if k]


def pick(ground: Ground, found: list[int], target: float | None,
         signal: dict | None = None) -> int | None:
    """Returns the cell of ``found`` with the best search signal (``signal``, default
    the table's validation accuracy) whose cost meets ``target`` (None: any), or
    None."""
    signal = ground.val if signal is None else signal
    ok = [i for i in found if i in ground.truth and i in signal and
          (target is None or ground.truth.point(i)[1] <= target)]
    return max(ok, key=lambda i: signal[i]) if ok else None


def cell_record(ground: Ground, bench: NB201Bench, i: int) -> dict:
    """Returns ``{"index", "arch", "accuracy", "cost"}`` of a cell (truth values)."""
    a, c = ground.truth.point(i)
    return {"index": int(i), "arch": bench.arch(int(i)).to_str(), "accuracy": float(a),
            "cost": float(c)}


def score_run(ground: Ground, bench: NB201Bench, chosen: int, found: list[int],
              target: float | None, targets: list[float], signal: dict | None = None
              ) -> dict:
    """Returns the scores of one run (see the module doc); ``signal``: the method's own
    accuracy of the cells it ranked (one-shot methods), else the table's validation
    accuracy."""
    front = signal_front(ground, found, signal)
    if chosen not in ground.truth:
        raise UserError(f"the chosen cell {chosen} has no cost in the table")
    s = score(ground.truth, chosen, front, target)
    regret_at = {}
    for t in targets:
        p = pick(ground, found + [chosen], t, signal)
        if p is None and signal is not None and ground.truth.point(chosen)[1] <= t:
            p = chosen                # a one-shot method's own answer, whatever it ranked
        regret_at[f"{t:.6g}"] = (ground.truth.best_under(t) - ground.truth.point(p)[0]
                                 if p is not None else None)
    return {**cell_record(ground, bench, chosen), "val_accuracy": ground.val.get(chosen),
            "val_accuracy_200": ground.val200.get(chosen),
            "valid": ground.truth.is_valid(chosen),
            **{k: s[k] for k in ("met", "regret", "hv", "hv_true", "hv_gap", "igd",
                                 "front_found")},
            "regret_at": regret_at,
            "found_front": sorted((cell_record(ground, bench, i) for i in front),
                                  key=lambda r: r["cost"])}


def anytime(ground: Ground, found: list[int], points: int = 60,
            signal: dict | None = None) -> dict:
    """Returns the hypervolume gap (and best true accuracy of the signal's front) after
    each of about ``points`` query counts, log-spaced (``signal``: as for
    :func:`signal_front`)."""
    from reports.pareto import hypervolume
    truth = ground.truth
    hv_true = hypervolume(truth.points[truth.front], truth.reference, SENSES)
    n = len(found)
    ks = sorted({int(round(x)) for x in np.geomspace(1, max(n, 1), points)} | {n}) \
        if n else []
    q, gap, best = [], [], []
    for k in ks:
        f = signal_front(ground, found[:k], signal)
        if not f:
            continue
        pts = np.array([truth.point(i) for i in f])
        q.append(k)
        gap.append(1.0 - hypervolume(pts, truth.reference, SENSES) / hv_true)
        best.append(float(pts[:, 0].max()))
    return {"queries": q, "hv_gap": gap, "best_accuracy": best}


def floor(ground: Ground, bench: NB201Bench, target: float | None,
          targets: list[float]) -> dict:
    """Returns the signal floor: the scores of querying every cell with the signal."""
    every = [i for i in ground.truth.ids if i in ground.val and ground.truth.is_valid(i)]
    chosen = pick(ground, every, target)
    if chosen is None:
        return {"what": "no cell meets the target", "regret": None}
    out = score_run(ground, bench, chosen, every, target, targets)
    return {**out, "what": "every cell queried with the search signal"}


# ---- runs ---------------------------------------------------------------------------------


def _trial_seed(spec: BenchSpec, ground: Ground, bench: NB201Bench, seed: int,
                log, zc=None, storage: str | None = None) -> tuple[int, list[int], dict]:
    """Runs a multi-trial searcher on the table (or, with ``zc``, the zero-cost
    evaluator's (scorer, aggregate) shared by the seeds), its study in memory (in the
    database ``storage`` when given, named after the bench and seed); returns (chosen,
    visited in query order, counters; with zc, "signal": {index: score})."""
    from nasbench.searchers import SearchContext, get_searcher
    from nasbench.searchers.evaluate import TableEvaluator
    from nasbench.seeding import seed_everything
    cls = get_searcher(spec.method)
    kw = dict(space="nb201", trials=spec.queries, trials_per_epoch=max(1, spec.queries),
              seed=seed, objective="acc+latency",
              latency_target_ms=spec.target if ground.metric == "latency" else None,
              benchmark_dir=spec.benchmark_dir, fidelity=spec.fidelity,
              evaluate=spec.evaluate, storage=storage or "")
    kw.update(cls.config_class.budget_values(ground.space, spec.queries))
    cfg = cls.config_class.from_preset("quick", spec.method, **{**kw, **spec.extra})
    if zc is None:
        ev = TableEvaluator(bench, spec.dataset, ground.cost_of, spec.fidelity)
    else:
        from nasbench.searchers.zc_eval import ZeroCostEvaluator
        scorer, agg = zc
        ev = ZeroCostEvaluator(scorer, cfg.proxy, ground.cost_of,
                               reference=cfg.zc_reference, log=log)
        ev.aggregate = agg                    # the scale every seed shares
        computed = scorer.computed
    seed_everything(seed)
    s = cls()
    s.setup(SearchContext(config=cfg, space=ground.space, predictor=None, data=None,
                          metrics=[ground.metric], target_ms=cfg.latency_target_ms,
                          log=log, device=None, evaluator=ev))
    if storage:                              # the seed's study in the database
        s.bind(Path(f"bench-{spec.method}-{spec.device.replace(':', '-')}-{spec.key()}"
                    f"-seed{seed}"))
    for e in range(s.epochs):
        s.run_epoch(e, lambda *_: None)
    out = s.result()
    records = s.visited()
    visited = [bench.index(s.ctx.space.arch_from_dict(v["arch"])) for v in records]
    n = s.counts()                           # the study's tallies (the truth)
    counters = {"queries": n["queries"], "cache_hits": n["cache_hits"]}
    if zc is not None:                       # what the search saw: its own scores
        counters["signal"] = {i: float(v["accuracy"]) for i, v in
                              zip(visited, records, strict=True)}
        counters["zc_computed"] = ev.computed - computed     # this seed's networks
    return bench.index(out.arch), visited, counters


def zero_cost_setup(spec: BenchSpec, ground: Ground, log) -> tuple:
    """Returns (scorer, aggregate) of a bench with ``--evaluate zc``: the proxies on
    ``spec.data_dir``'s CIFAR-10 training images, the NAS-Bench-201 network at 32x32,
    the 0-100 scale fitted once on the reference cells (every seed shares both, and the
    on-disk cache); raises UserError without images."""
    from nasbench.data import load_dataset
    from nasbench.proxies.scorer import ProxyScorer
    from nasbench.searchers.zc_eval import ZeroCostEvaluator
    if not spec.data_dir:
        raise UserError("--evaluate zc scores the cells on real images: give --data-dir "
                        "(CIFAR-10, e.g. ../shared/data/cifar10-mini)")
    if spec.dataset != "cifar10":
        raise UserError("--evaluate zc computes the proxies on CIFAR-10 images: use "
                        "--dataset cifar10")
    cfg = searcher_config(spec.method).from_preset(
        "quick", spec.method, **{"space": "nb201", "evaluate": "zc", **spec.extra})
    from nasbench.benchmarks.hwnas import tabular_space
    data = load_dataset("cifar10", spec.data_dir, False, 32)
    # the network the tables describe (C=16, N=5, 32x32), whatever LUT gives the cost
    scorer = ProxyScorer(tabular_space(spec.dataset), data, batch=cfg.zc_batch,
                         seed=cfg.zc_seed)
    ev = ZeroCostEvaluator(scorer, cfg.proxy, ground.cost_of, reference=cfg.zc_reference,
                           log=log)
    ev.prepare()
    return scorer, ev.aggregate


def _one_shot_seed(spec: BenchSpec, ground: Ground, bench: NB201Bench, seed: int,
                   out: Path, quiet: bool) -> tuple[int, list[int], dict]:
    """Trains a one-shot searcher through the runner (no retrain); returns (chosen,
    the argmax cell after each epoch, counters)."""
    from nasbench.run.runner import run_search
    from nasbench.searchers import get_searcher
    if not spec.data_dir:
        raise UserError(f"--method {spec.method} trains its supernet on real images: give "
                        f"--data-dir (CIFAR-10, e.g. ../shared/data/cifar10-mini)")
    if spec.dataset != "cifar10":
        raise UserError(f"--method {spec.method} trains on CIFAR-10 images: use "
                        f"--dataset cifar10")
    kw = dict(space="nb201", dataset="cifar10", data_dir=spec.data_dir,
              device=spec.device if spec.lut is None else "cpu", lut=spec.lut,
              benchmark_dir=spec.benchmark_dir, objective=spec.objective,
              latency_target_ms=spec.target if ground.metric == "latency" else None,
              train_epochs=0, references="", measure=spec.lut is None, seed=seed,
              epochs=spec.epochs, out=str(out / "runs"))
    cfg = get_searcher(spec.method).config_class.from_preset(spec.preset, spec.method,
                                                             **{**kw, **spec.extra})
    if spec.steps_per_epoch is not None:
        cfg = cfg.replace(steps_per_epoch=spec.steps_per_epoch or None)
    res = run_search(cfg, quiet=quiet)
    if res.status != "complete":
        raise KeyboardInterrupt
    # what the method itself ranked: cells it scored by its own accuracy (ENAS's
    # derivation samples); a method that ranks nothing (DARTS) found its answer alone
    signal = {}
    for v in res.visited:
        if v.get("accuracy") is not None:
            signal[bench.index(ground.space.arch_from_dict(v["arch"]))] = float(v["accuracy"])
    chosen = bench.index(res.genotype)
    return chosen, [*signal, chosen], {"run_dir": str(res.run_dir),
                                       "epochs": res.epochs_done, "signal": signal}


def _stats(values) -> dict:
    """Returns mean, population std (ddof 0, as NAS-Bench-201's tables and the report
    give it) and count of the finite values."""
    v = np.array([x for x in values if x is not None and not math.isnan(x)], float)
    if not len(v):
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(len(v))}


def aggregate(runs: list[dict], targets: list[float]) -> dict:
    """Returns mean and std over seeds of every score (``met_share``: the share of
    seeds whose chosen cell meets the target)."""
    out = {k: _stats(r.get(k) for r in runs) for k in
           ("accuracy", "val_accuracy", "val_accuracy_200", "cost", "regret", "hv_gap",
            "igd", "wall_s", "queries")}
    out["met_share"] = float(np.mean([bool(r["met"]) for r in runs])) if runs else None
    out["valid_share"] = (float(np.mean([bool(r.get("valid", True)) for r in runs]))
                          if runs else None)
    out["regret_at"] = {f"{t:.6g}": _stats(r["regret_at"].get(f"{t:.6g}") for r in runs)
                        for t in targets}
    return out


def on_nb201(method: str) -> bool:
    """Returns whether a one-shot ``method`` searches the nb201 space (its config's
    ``supports_space``: supernet searchers run on spaces with a supernet)."""
    return searcher_config(method).supports_space("nb201")


@functools.lru_cache(maxsize=2)
def open_tables(folder: str | None, nats: str | None) -> NB201Bench:
    """Returns the tables of ``folder`` (and a NATS-Bench archive), read once per
    process: the benches of several methods and devices share them."""
    return NB201Bench(folder, nats)


def run_bench(spec: BenchSpec, out: str | Path, *, quiet: bool = False, log=None,
              storage: str | None = None) -> dict:
    """Runs one bench (``spec.seeds`` seeds, reusing finished ones in ``out``); writes
    ``out/bench.json`` and returns its content."""
    from nasbench.files import write_json
    log = log or (lambda *_: None)
    if spec.space != "nb201":
        raise UserError(f"nasbench bench scores against NAS-Bench-201: --space nb201, "
                        f"not {spec.space!r}")
    if spec.seeds < 1 or spec.queries < 1:
        raise UserError("--seeds and --queries must be positive")
    if spec.target is not None and not (math.isfinite(spec.target) and spec.target > 0):
        raise UserError(f"--target must be a positive number, got {spec.target}")
    multi = searcher_kind(spec.method) == "multi-trial"
    if spec.evaluate not in ("table", "zc"):
        raise UserError(f"--evaluate for bench: table or zc, got {spec.evaluate!r}")
    if spec.evaluate == "zc" and not multi:
        raise UserError(f"--evaluate zc serves the multi-trial methods, not "
                        f"{spec.method!r} (a one-shot method trains its supernet)")
    if not multi and not on_nb201(spec.method):
        one_shot = [m for m in SEARCHERS.names()
                    if searcher_kind(m) == "one-shot" and on_nb201(m)]
        raise UserError(f"nasbench bench runs multi-trial methods and "
                        f"{', '.join(one_shot)} on nb201, not {spec.method!r}")
    t0 = time.time()
    bench = open_tables(spec.benchmark_dir, spec.nats)
    ground = ground_truth(spec, bench)
    out = Path(out)
    costs = ground.truth.points[:, 1]
    targets = [float(np.quantile(costs, q)) for q in (0.1, 0.25, 0.5, 0.75)]
    seeds_dir = out / "seeds"
    zc = zero_cost_setup(spec, ground, log) if spec.evaluate == "zc" else None
    runs = []
    key = spec.key()
    for seed in range(spec.seeds):
        f = seeds_dir / f"seed-{seed}.json"
        if f.is_file():
            try:
                old = json.loads(f.read_text())
                if old.get("key") == key:
                    runs.append(old["run"])
                    log(f"seed {seed}: reused {f}")
                    continue
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                warn_damaged(f, "bench seed file", "the seed is run again", e)
        ts = time.time()
        if multi:
            chosen, visited, counters = _trial_seed(spec, ground, bench, seed, log, zc,
                                                    storage)
        else:
            chosen, visited, counters = _one_shot_seed(spec, ground, bench, seed, out,
                                                       quiet)
        signal = counters.pop("signal", None)
        r = {"seed": seed, **score_run(ground, bench, chosen, visited, spec.target,
                                       targets, signal),
             "queries": counters.get("queries", len(set(visited))),
             "cache_hits": counters.get("cache_hits", 0), "wall_s": time.time() - ts,
             **{k: v for k, v in counters.items() if k not in ("queries", "cache_hits")}}
        if multi:
            r["anytime"] = anytime(ground, visited, signal=signal)
        runs.append(r)
        write_json(f, {"key": key, "run": r})
        log(f"seed {seed}: {r['arch']} test {r['accuracy']:.2f} %, {ground.metric} "
            f"{r['cost']:.3f} {ground.unit}, regret "
            + (f"{r['regret']:.2f} pp" if r["regret"] is not None and
               not math.isnan(r["regret"]) else "n/a (target missed)")
            + f", HV gap {r['hv_gap']:.4f}, {r['queries']} queries, {r['wall_s']:.1f} s")
    truth = ground.truth
    result = {
        "kind": "nasbench-bench", "version": SCHEMA, "space": spec.space,
        "method": spec.method, "device": spec.device, "device_name": ground.device_name,
        "cost_source": ground.source, "dataset": spec.dataset, "objective": spec.objective,
        "metric": ground.metric, "unit": ground.unit, "target": spec.target,
        "budget": {"queries": spec.queries} if multi else
        {"epochs": runs[0].get("epochs") if runs else spec.epochs,
         "steps_per_epoch": spec.steps_per_epoch, "preset": spec.preset},
        "seeds": list(range(spec.seeds)),
        "signal": {"search": _signal_text(spec, zc) if multi else
                             "the supernet's own training on the images given",
                   "reported": f"{bench.test_epochs}-epoch {spec.dataset} test accuracy "
                               f"(NAS-Bench-201)"},
        "reference_point": truth.reference.tolist(),
        "truth": {"valid_cells": int(truth.valid.sum()), "cells": len(truth.ids),
                  "reference": "chance accuracy; cells whose output ignores the input "
                               "left out"},
        "true_front": sorted((cell_record(ground, bench, i) for i, k in
                              zip(truth.ids, truth.front, strict=True) if k),
                             key=lambda r: r["cost"]),
        "cost_range": [float(costs.min()), float(costs.max())],
        "targets": targets, "runs": runs, "aggregate": aggregate(runs, targets),
        "floor": _floor(ground, bench, spec.target, targets, zc),
        "settings": asdict(spec), "wall_s": time.time() - t0,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(out / "bench.json", result)
    return result


def _floor(ground: Ground, bench: NB201Bench, target, targets, zc) -> dict:
    """Returns the floor of a bench: the table's signal floor, labelled as such when
    the search saw zero-cost scores (their floor would need every cell scored)."""
    out = floor(ground, bench, target, targets)
    if zc is not None and out.get("regret") is not None:
        out["what"] = ("every cell queried with the table's validation accuracy (the "
                       "zero-cost signal of every cell is not computed)")
    return out


def _signal_text(spec: BenchSpec, zc) -> str:
    """Returns what a multi-trial search of ``spec`` sees, in words."""
    if zc is None:
        return f"{spec.fidelity}-epoch {spec.dataset} validation accuracy (NAS-Bench-201)"
    scorer, agg = zc
    return (f"zero-cost score {'+'.join(agg.members)} on {scorer.batch} CIFAR-10 "
            f"training images of {spec.data_dir} at initialisation (0-100)")
