"""Bayesian optimisation: the GP and the closed-form acquisitions of ``mobo``
(searchers/gp.py), the cost-aware search and Optuna's GPSampler (``bo``) on the
synthetic NAS-Bench-201 folder, the loop's ledger (a study holds about as many trials
as evaluations) and the bad input they refuse."""

import json
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from nasbench.benchmarks import NB201Bench
from nasbench.cli import main
from nasbench.run.bench import BenchSpec, _trial_seed, ground_truth, score_run
from nasbench.searchers.gp import HammingGP, Posterior, excess, expected_hvi

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import write_fake_nb201  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
SENSES = ("max", "min")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


# ---- the GP and the acquisitions -----------------------------------------------------


def test_expected_improvement_and_hvi_match_monte_carlo():
    from reports.pareto import hypervolume
    rng = np.random.default_rng(0)
    mu, sd = np.array([70.0, 85.0, 91.0]), np.array([3.0, 1.0, 2.0])
    draws = rng.normal(mu, sd, size=(200_000, 3))
    mc = np.maximum(draws - 84.0, 0.0).mean(axis=0)
    assert excess(mu, sd, 84.0) == pytest.approx(mc, rel=0.02, abs=0.01)
    front = np.array([[60.0, 1.5], [70.0, 2.5], [80.0, 4.0], [88.0, 7.0]])
    ref = np.array([40.0, 10.0])
    cost = np.array([1.0, 3.0, 6.0])
    closed = expected_hvi(mu, sd, cost, front, (40.0, 10.0))
    base = hypervolume(front, ref, SENSES)
    for i in range(3):
        a = draws[:3000, i]
        sim = np.mean([hypervolume(np.vstack([front, [x, cost[i]]]), ref, SENSES) - base
                       for x in a])
        assert closed[i] == pytest.approx(sim, rel=0.05, abs=0.05)
    # a cell over the reference cost adds nothing, whatever its accuracy
    assert expected_hvi(np.array([99.0]), np.array([1.0]), np.array([11.0]), front,
                        (40.0, 10.0))[0] == 0.0


def _exact_posterior(gp, x, y, cands):
    k = gp.kernel(x, x) + (gp.noise + 1e-6) * np.eye(len(x))
    ks = gp.kernel(cands, x)
    z = (y - gp.mean) / gp.scale
    mu = ks @ np.linalg.solve(k, z)
    var = gp.s2 - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T))
    return mu * gp.scale + gp.mean, np.sqrt(np.maximum(var, 1e-12)) * gp.scale


def test_incremental_posterior_equals_the_direct_one():
    rng = np.random.default_rng(1)
    cands = rng.integers(0, 5, size=(300, 6))
    x = cands[rng.choice(300, 25, replace=False)]
    y = 70 + 5 * (x[:, 0] == 2) - 3 * (x[:, 3] == 0) + rng.normal(0, 0.5, 25)
    gp = HammingGP(6)
    gp.fit(x, y)
    one = Posterior(gp, cands)
    for c, v in zip(x, y, strict=True):
        one.add(c, v)
    batch = Posterior(gp, cands)
    batch.add_all(x[:10], y[:10])
    for c, v in zip(x[10:], y[10:], strict=True):
        batch.add(c, v)
    mu, sd = _exact_posterior(gp, x, y, cands)
    for post in (one, batch):
        m, s = post.predict()
        assert np.allclose(m, mu, atol=1e-6) and np.allclose(s, sd, atol=1e-6)
    # a fantasy is conditioned on, then forgotten
    fm, fs = one.fantasy([cands[0]], [float(mu[0])])
    assert fs[0] < sd[0] * 0.5
    m, s = one.predict()
    assert np.allclose(m, mu, atol=1e-6) and np.allclose(s, sd, atol=1e-6)


def test_the_kernel_learns_which_decisions_matter():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 5, size=(120, 6))
    y = 60 + 8.0 * x[:, 1] + rng.normal(0, 0.3, 120)     # only decision 1 matters
    gp = HammingGP(6)
    gp.fit(x, y)
    assert gp.theta[1] > 5 * np.max(np.delete(gp.theta, 1))


# ---- the searches on the synthetic tables ----------------------------------------------


def _run(fake, method, queries, seed, target=None, **extra):
    b = NB201Bench(fake)
    spec = BenchSpec(method=method, device="hw-nas-bench:edgegpu", benchmark_dir=str(fake),
                     queries=queries, target=target, extra=extra)
    ground = ground_truth(spec, b)
    chosen, visited, counters = _trial_seed(spec, ground, b, seed, lambda *_: None)
    return ground, b, chosen, visited, counters


def test_mobo_finds_more_of_the_front_than_random_and_asks_once_per_cell(fake):
    gaps = {"mobo": [], "random": []}
    for method in gaps:
        for seed in range(3):
            ground, b, chosen, visited, counters = _run(fake, method, 40, seed)
            assert counters["cache_hits"] == 0 and len(set(visited)) == 40
            gaps[method].append(score_run(ground, b, chosen, visited, None, [])["hv_gap"])
    assert np.mean(gaps["mobo"]) < np.mean(gaps["random"])


def test_mobo_under_a_hard_target_evaluates_only_feasible_cells(fake):
    ground, b, chosen, visited, _ = _run(fake, "mobo", 30, 0, target=1.2)
    costs = [ground.truth.point(i)[1] for i in visited]
    assert max(costs) <= 1.2 and len(visited) == 30
    best = max(visited, key=lambda i: ground.val[i])
    assert chosen == best                     # the best it saw under the target


def test_bo_is_multi_objective_without_a_target_and_ei_with_one(fake):
    from nasbench.searchers import get_searcher
    cls = get_searcher("bo").config_class
    assert cls.from_preset("quick", "bo", space="nb201", benchmark_dir=str(fake)
                           ).is_multi_objective()
    assert not cls.from_preset("quick", "bo", space="nb201", benchmark_dir=str(fake),
                               latency_target_ms=1.0).is_multi_objective()
    ground, b, chosen, visited, counters = _run(fake, "bo", 14, 0, startup=8)
    assert len(set(visited)) == 14 and counters["cache_hits"] == 0


def test_a_search_holds_about_as_many_trials_as_evaluations(fake):
    """Evolution on a converged population used to propose cells it had seen: each
    became a cache-hit trial. Now a proposal the study knows is redrawn."""
    from nasbench.searchers import SearchContext, get_searcher
    from nasbench.searchers.evaluate import TableEvaluator
    from nasbench.spaces.nb201 import NB201DeployConfig, NB201Space
    b = NB201Bench(fake)
    cls = get_searcher("evolution")
    cfg = cls.config_class.from_preset("quick", "evolution", space="nb201", trials=150,
                                       trials_per_epoch=150, benchmark_dir=str(fake),
                                       population=10, sample_size=5)
    from nb201_fake import cost_ms
    s = cls()
    s.setup(SearchContext(config=cfg, space=NB201Space(NB201DeployConfig()),
                          predictor=None, data=None, metrics=["latency"], target_ms=None,
                          log=lambda *_: None, device=None,
                          evaluator=TableEvaluator(b, "cifar10",
                                                   lambda a: {"latency": cost_ms(a)})))
    s.run_epoch(0, lambda *_: None)
    n = s.counts()
    assert n["queries"] == 150 and n["cache_hits"] == 0
    assert n["asks"] == 150                   # every trial an evaluation (no invalid ones
    # proposed either: the sampler knows a cell's validity and cost before asking)
    keys = {json.dumps(t.params, sort_keys=True) for t in s.study.trials}
    assert len(keys) == 150


def test_the_ledger_reads_only_new_and_unfinished_trials():
    from nasbench.searchers import ledger as L
    seen = []

    class Counting(L.Ledger):
        def observe(self, t):
            seen.append(t.number)
            return super().observe(t)

    study = optuna.create_study()
    led = Counting()
    flying = study.ask()
    flying.set_user_attr("claim", {"arch": "x"})
    for v in range(5):
        t = study.ask()
        t.suggest_categorical("a", [0, 1, 2, 3, 4, 5])
        study.tell(t, float(v))
    led.sync(study.get_trials(deepcopy=False))
    assert sorted(seen) == list(range(6)) and led.counts["in_flight"] == 1
    seen.clear()
    study.tell(flying, 1.0)                  # the unfinished one finishes; one new
    t = study.ask()
    study.tell(t, 2.0)
    led.sync(study.get_trials(deepcopy=False))
    assert sorted(seen) == [0, 6]             # not the five finished ones again
    assert led.counts["queries"] == 7 and led.counts["in_flight"] == 0
    led.sync(study.get_trials(deepcopy=False))
    assert sorted(seen) == [0, 6]             # nothing new: nothing read


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("args,says", [
    (["--method", "mobo", "--objective", "acc"], "--method mobo knows each cell's cost"),
    (["--method", "bo", "--objective", "acc"], "--method bo without a hard target"),
    (["--method", "mobo", "--evaluate", "train", "--train-epochs", "3", "--pruner",
      "hyperband"], "--pruner serves single-objective searches"),
    (["--method", "bo", "--pruner", "median"], "--pruner stops training early"),
])
def test_bad_bo_input_is_one_line_and_writes_nothing(fake, tmp_path, capsys, args, says):
    out = tmp_path / "runs"
    rc = main(["search", "--space", "nb201", "--benchmark-dir", str(fake), "--out",
               str(out), "--device", "hw-nas-bench:edgegpu", "--dataset", "synthetic",
               "--trials", "3", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and says in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_bench_keeps_its_studies_in_memory_unless_storage_is_given(fake, tmp_path):
    from nasbench.searchers.storage import open_storage, study_names
    db = tmp_path / "bench.db"
    args = ["bench", "--method", "random", "--device", "hw-nas-bench:edgegpu",
            "--benchmark-dir", str(fake), "--queries", "12", "--seeds", "2", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert not db.exists()
    assert main([*args, "--out", str(tmp_path / "b"), "--storage", f"sqlite:///{db}"]) == 0
    storage = open_storage(f"sqlite:///{db}")
    names = study_names(storage)
    assert len(names) == 2 and all(n.endswith(("seed0", "seed1")) for n in names)
    study = optuna.load_study(study_name=names[0], storage=storage)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 12


class _AdditiveEvaluator:
    """A stand-in for a LUT on the DARTS space: a cell's cost is the sum of its ops'
    (as a LUT's is) and its 'accuracy' a fixed function of its ops."""

    COST = {"sep_conv_3x3": 1.0, "sep_conv_5x5": 1.6, "dil_conv_3x3": 0.8,
            "dil_conv_5x5": 1.2, "max_pool_3x3": 0.2, "avg_pool_3x3": 0.2,
            "skip_connect": 0.05}

    def __init__(self):
        self.queries = self.cache_hits = 0

    def cost(self, arch):
        ops = [op for kind in ("normal", "reduce") for op, _ in getattr(arch, kind)]
        return {"latency": sum(self.COST.get(op, 0.5) for op in ops)}

    def __call__(self, arch):
        self.queries += 1
        ops = [op for op, _ in arch.normal]
        acc = 60 + 4 * sum(op.startswith("sep") for op in ops) - 2 * ops.count("skip_connect")
        return {"accuracy": float(acc), "cost": self.cost(arch), "cached": False}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


@pytest.mark.parametrize("method,target", [
    ("mobo", None), ("mobo", 14.0),
    pytest.param("bo", 14.0, marks=pytest.mark.slow)])     # GPSampler: seconds a proposal
def test_bayesian_searches_run_on_the_darts_space_with_an_additive_cost(method, target):
    from nasbench.registry import searcher_config
    from nasbench.searchers import SearchContext, get_searcher
    from nasbench.spaces import get_space
    from nasbench.spaces.darts_cells import DeployConfig
    space = get_space("darts")(DeployConfig(channels=4, layers=3, input_size=16))
    cfg = searcher_config(method).from_preset(
        "quick", method, space="darts", evaluate="train", train_epochs=1, trials=24,
        trials_per_epoch=24, startup=8, latency_target_ms=target,
        **({"pool": 300} if method == "mobo" else {}))
    ev = _AdditiveEvaluator()
    s = get_searcher(method)()
    s.setup(SearchContext(config=cfg, space=space, predictor=None, data=None,
                          metrics=["latency"], target_ms=target, log=lambda *_: None,
                          device=None, evaluator=ev))
    s.run_epoch(0, lambda *_: None)
    visited = s.visited()
    assert len({json.dumps(v["arch"], sort_keys=True) for v in visited}) == 24
    assert s.counts()["asks"] == 24
    if target is not None:
        assert max(v["cost"]["latency"] for v in visited) <= target
    acc = [v["accuracy"] for v in visited]
    if method == "mobo" and target is not None:   # EI: the model's picks improve on
        assert max(acc[8:]) >= max(acc[:8])       # the uniform start-up
    if method == "mobo" and target is None:       # EHVI: they extend the front
        from reports.pareto import non_dominated_mask
        pts = np.array([[v["accuracy"], v["cost"]["latency"]] for v in visited])
        assert non_dominated_mask(pts, SENSES)[8:].any()
