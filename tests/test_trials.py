"""Multi-trial searchers on Optuna: regularized evolution's aging and mutation, NSGA-II's
objectives and constraint, TPE, the soft target, and resume mid-study through the
runner (on the synthetic NAS-Bench-201 folder of tests/nb201_fake.py)."""

import json
import sys
from pathlib import Path

import optuna
import pytest

from nasbench.benchmarks import NB201Bench
from nasbench.run.bench import BenchSpec, _trial_seed, ground_truth
from nasbench.searchers import RegularizedEvolutionSampler
from nasbench.spaces.nb201 import NB201DeployConfig, NB201Space

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import cost_ms, write_fake_nb201  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


def _ask(study, space):
    t = study.ask()
    return t, {k: t.suggest_categorical(k, v) for k, v in space.choices().items()}


def test_evolution_mutates_the_tournament_winner_and_the_oldest_dies():
    space = NB201Space(NB201DeployConfig())
    study = optuna.create_study(direction="maximize", sampler=RegularizedEvolutionSampler(
        space, population=3, sample_size=3, seed=0))
    first = []
    for v in (99.0, 50.0, 60.0):                 # the initial population: uniform
        t, p = _ask(study, space)
        assert "parent" not in t.user_attrs
        study.tell(t, v)
        first.append(p)
    t, child = _ask(study, space)                 # tournament of all 3: the 99 wins
    assert t.user_attrs["parent"] == 0
    assert sum(child[k] != first[0][k] for k in child) == 1     # one decision changed
    study.tell(t, 10.0)
    t, child = _ask(study, space)                 # trial 0 died: 60 is the best alive
    assert t.user_attrs["parent"] == 2
    assert sum(child[k] != first[2][k] for k in child) == 1
    with pytest.raises(ValueError):
        RegularizedEvolutionSampler(space, population=3, sample_size=4)


def _spec(fake, method, **kw):
    return BenchSpec(method=method, device="hw-nas-bench:edgegpu", benchmark_dir=str(fake),
                     **kw)


def test_each_sampler_spends_its_budget_within_the_hard_target(fake):
    b = NB201Bench(fake)
    lat = b.hardware("cifar10")["edgegpu_latency"]
    for method in ("evolution", "tpe", "nsga2"):
        spec = _spec(fake, method, queries=60, target=1.5,
                     extra={"population": 10, "sample_size": 3})
        ground = ground_truth(spec, b)
        chosen, visited, counters = _trial_seed(spec, ground, b, 0, lambda *_: None)
        assert counters["queries"] == 60 == len(set(visited)), method
        assert lat[visited].max() <= 1.5 and lat[chosen] <= 1.5, method
        again = _trial_seed(spec, ground, b, 0, lambda *_: None)
        assert again[1] == visited, method            # seeded: reproducible


def test_evolution_beats_random_on_the_synthetic_table(fake):
    """Accuracy here is a sum of per-edge op points (tests/nb201_fake.py): one-edit
    mutations climb it, so 150 evolution queries should find a better cell than 150
    random ones on average over seeds."""
    b = NB201Bench(fake)
    acc = b.accuracy["cifar10-test"]

    def mean_best(method):
        spec = _spec(fake, method, queries=150, extra={"population": 20,
                                                      "sample_size": 5})
        ground = ground_truth(spec, b)
        return sum(acc[_trial_seed(spec, ground, b, s, lambda *_: None)[0]]
                   for s in range(4)) / 4

    assert mean_best("evolution") > mean_best("random")


def test_nsga2_is_multi_objective_with_the_target_as_a_constraint(fake):
    from nasbench.searchers import SearchContext, get_searcher
    from nasbench.searchers.evaluate import TableEvaluator
    b = NB201Bench(fake)
    cls = get_searcher("nsga2")
    cfg = cls.config_class.from_preset("quick", "nsga2", space="nb201", trials=40,
                                       trials_per_epoch=40, benchmark_dir=str(fake),
                                       latency_target_ms=1.2, hard_target=False,
                                       population=10)
    s = cls()
    s.setup(SearchContext(config=cfg, space=NB201Space(NB201DeployConfig()),
                          predictor=None, data=None, metrics=["latency"], target_ms=1.2,
                          log=lambda *_: None, device=None,
                          evaluator=TableEvaluator(b, "cifar10",
                                                   lambda a: {"latency": cost_ms(a)})))
    s.run_epoch(0, lambda *_: None)
    trials = s.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(s.study.directions) == 2
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 40   # + cached repeats
    t = trials[5]
    lat = cost_ms(s.ctx.space.decode(t.params))
    assert t.values[1] == pytest.approx(lat)                  # cost is its own objective
    assert t.constraints == {"latency": pytest.approx(lat - 1.2)}
    assert any(x.constraints["latency"] > 0 for x in trials)   # soft: evaluated
    best = s.result()
    assert cost_ms(best.arch) <= 1.2                           # the choice is feasible


def _frozen(values, violation=None):
    from optuna.trial import TrialState, create_trial
    t = create_trial(state=TrialState.COMPLETE, values=values)
    if violation is not None:
        t.system_attrs["constraints:latency"] = violation
    return t


def test_nsga2_dominance_is_debs_constrained_rule():
    from nasbench.searchers.nsga2 import dominates
    d = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert dominates(_frozen([90.0, 2.0]), _frozen([89.0, 2.0]), d)
    assert not dominates(_frozen([90.0, 3.0]), _frozen([89.0, 2.0]), d)   # a trade-off
    assert not dominates(_frozen([90.0, 2.0]), _frozen([90.0, 2.0]), d)   # equal
    # feasible beats infeasible whatever the values; less violation beats more
    assert dominates(_frozen([10.0, 9.0], -1.0), _frozen([99.0, 1.0], 0.5), d)
    assert dominates(_frozen([10.0, 9.0], 0.2), _frozen([99.0, 1.0], 0.5), d)
    assert not dominates(_frozen([99.0, 1.0], 0.5), _frozen([10.0, 9.0], 0.0), d)


def test_nsga2_rank_and_crowding_against_hand_values():
    from nasbench.searchers.nsga2 import rank_and_crowding
    d = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    # front 0: (90, 4) (85, 2) (80, 1); (84, 3) is dominated by (85, 2) only: rank 1
    ts = [_frozen(v) for v in ([90.0, 4.0], [85.0, 2.0], [80.0, 1.0], [84.0, 3.0])]
    rank, crowd = rank_and_crowding(ts, d)
    assert rank == [0, 0, 0, 1]
    # the middle one: (90 - 80) / (90 - 80) + (4 - 1) / (4 - 1) = 2; extremes infinite
    assert crowd[1] == pytest.approx(2.0) and crowd[0] == crowd[2] == float("inf")
    assert crowd[3] == float("inf")                       # alone in its rank


def test_nsga2_children_are_one_decision_mutants_of_a_tournament_winner_never_seen():
    from nasbench.searchers.nsga2 import SpaceMutation
    space = NB201Space(NB201DeployConfig())
    study = optuna.create_study(directions=["maximize", "minimize"])
    import random
    rng = random.Random(0)
    cells = [space.encode(space.sample(rng)) for _ in range(2)]
    for p, v in zip(cells, ([90.0, 1.0], [80.0, 2.0]), strict=True):   # 0 dominates 1
        study.add_trial(optuna.trial.create_trial(
            params=p, distributions={k: optuna.distributions.CategoricalDistribution(c)
                                     for k, c in space.choices().items()}, values=v))
    pop = study.get_trials()
    gen = SpaceMutation(space, tournament=2, seed=1)
    seen = {tuple(sorted(p.items())) for p in cells}
    for _ in range(20):
        child = gen(study, None, pop)
        assert tuple(sorted(child.items())) not in seen
        # a binary tournament of both always picks trial 0, the dominating one
        assert sum(child[k] != cells[0][k] for k in child) == 1


def test_nsga2_mutation_beats_optunas_crossover_on_the_hypervolume(fake):
    """The space's mutation covers the front better than Optuna's operator (the
    module doc's figures are on the real tables; this is the mechanism on the fake)."""
    b = NB201Bench(fake)

    def gap(variation):
        spec = _spec(fake, "nsga2", queries=120, extra={"variation": variation})
        ground = ground_truth(spec, b)
        from nasbench.run.bench import score_run
        out = []
        for s in range(4):
            chosen, visited, _ = _trial_seed(spec, ground, b, s, lambda *_: None)
            out.append(score_run(ground, b, chosen, visited, None, [])["hv_gap"])
        return sum(out) / len(out)

    assert gap("mutate") < gap("optuna")


def test_nsga2_settings_are_checked(fake):
    from nasbench.errors import UserError
    from nasbench.searchers import get_searcher
    cls = get_searcher("nsga2").config_class
    cfg = cls.from_preset("quick", "nsga2", space="nb201", benchmark_dir=str(fake))
    assert (cfg.population, cfg.sample_size, cfg.variation) == (10, 2, "mutate")
    with pytest.raises(UserError, match="--variation must be one of mutate, optuna"):
        cls.from_preset("quick", "nsga2", space="nb201", benchmark_dir=str(fake),
                        variation="crossover")
    with pytest.raises(UserError, match="--population must be at least 2"):
        cls.from_preset("quick", "nsga2", space="nb201", benchmark_dir=str(fake),
                        population=1, sample_size=1)


def test_soft_target_scores_accuracy_times_the_mnasnet_factor(fake):
    from nasbench.searchers import SearchContext, get_searcher
    from nasbench.searchers.evaluate import TableEvaluator
    b = NB201Bench(fake)
    cls = get_searcher("random")
    cfg = cls.config_class.from_preset("quick", "random", space="nb201", trials=5,
                                       benchmark_dir=str(fake), latency_target_ms=1.0,
                                       hard_target=False)
    s = cls()
    s.setup(SearchContext(config=cfg, space=NB201Space(NB201DeployConfig()),
                          predictor=None, data=None, metrics=["latency"], target_ms=1.0,
                          log=lambda *_: None, device=None,
                          evaluator=TableEvaluator(b, "cifar10",
                                                   lambda a: {"latency": cost_ms(a)})))
    s.run_epoch(0, lambda *_: None)
    for t in s.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        a = s.ctx.space.decode(t.params)
        val = b.accuracy.at[b.index(a), "cifar10-val"]
        assert t.value == pytest.approx(val * (cost_ms(a) / 1.0) ** -0.07)


def test_a_study_interrupted_mid_epoch_resumes_to_the_same_result(fake, tmp_path,
                                                                 monkeypatch):
    from nasbench.run.runner import run_search
    from nasbench.searchers import TrialConfig
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = TrialConfig.from_preset("quick", "evolution", trials=30, trials_per_epoch=10,
                                  population=8, sample_size=3, benchmark_dir=str(fake),
                                  device="hw-nas-bench:edgegpu", dataset="synthetic",
                                  out=str(tmp_path / "runs"))
    full = run_search(cfg, quiet=True)
    cut = run_search(cfg.replace(out=str(tmp_path / "cut")), quiet=True,
                     _interrupt_after_steps=14)
    assert cut.status == "interrupted"
    done = run_search(resume=cut.run_dir, quiet=True)
    assert done.status == "complete"
    assert [v["arch"] for v in done.visited] == [v["arch"] for v in full.visited]
    assert done.genotype == full.genotype
    hist = json.loads((Path(done.run_dir) / "history.json").read_text())
    assert [h["queries"] for h in hist] == [10, 20, 30]
