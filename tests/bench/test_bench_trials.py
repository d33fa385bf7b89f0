"""Benchmarks of the multi-trial loop (nasbench/searchers/trials.py) with its study in a
storage.

* ``test_trials_per_second``: evaluated trials per second of each searcher (random,
  evolution, tpe, nsga2) with the ``table`` evaluator (free) on the synthetic
  NAS-Bench-201 folder, the study in a SQLite file (the default: a run's ``study.db``)
  and, for comparison, in memory (``nasbench bench``'s): Optuna's overhead included,
  which is nearly all of it. ``benchmark.extra_info``: ``trials_per_s`` (evaluations)
  and ``asks_per_s`` (every trial: cache hits and pruned ones too).
* ``test_worker_speedup``: 1, 2 and 3 ``nasbench worker`` processes on one PostgreSQL
  study (``NASBENCH_TEST_POSTGRES``) with ``--evaluate train`` (each trial trains its
  network): the wall time of the same number of trials; goal: 2 workers in <= 0.6x
  one worker's time. Skips when PostgreSQL or a ``train`` evaluator is missing.

Run: ``pytest tests/bench/test_bench_trials.py -m slow --benchmark-enable -s``.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb201_fake import cost_ms, write_fake_nb201  # noqa: E402

TRIALS = 100
METHODS = ("random", "evolution", "tpe", "nsga2")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


def make_searcher(fake, method: str, run_dir: Path | None, trials: int = TRIALS):
    """Returns a set-up searcher of ``method`` on the synthetic table whose study is in
    ``run_dir``'s SQLite study.db (None: in memory)."""
    import optuna

    from nasbench.benchmarks import NB201Bench
    from nasbench.searchers import SearchContext, get_searcher
    from nasbench.searchers.evaluate import TableEvaluator
    from nasbench.spaces.nb201 import NB201DeployConfig, NB201Space
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cls = get_searcher(method)
    cfg = cls.config_class.from_preset("quick", method, space="nb201", trials=trials,
                                       trials_per_epoch=trials, benchmark_dir=str(fake),
                                       population=20, sample_size=5)
    ev = TableEvaluator(NB201Bench(fake), "cifar10", lambda a: {"latency": cost_ms(a)})
    s = cls()
    s.setup(SearchContext(config=cfg, space=NB201Space(NB201DeployConfig()),
                          predictor=None, data=None, metrics=["latency"], target_ms=None,
                          log=lambda *_: None, device=None, evaluator=ev))
    if run_dir is not None:
        run_dir.mkdir(parents=True)
        s.bind(run_dir)
    return s


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["sqlite", "memory"])
@pytest.mark.parametrize("method", METHODS)
def test_trials_per_second(benchmark, fake, tmp_path, method, storage):
    rounds = iter(range(100))
    made = []

    def setup():
        d = None if storage == "memory" else tmp_path / f"run{next(rounds)}"
        made.append(make_searcher(fake, method, d))
        return (made[-1],), {}

    def run(s):
        s.run_epoch(0, lambda *_: None)

    benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    for s in made:
        assert s.counts()["queries"] == TRIALS
    asks = sum(s.counts()["asks"] for s in made) / len(made)
    benchmark.extra_info.update(trials=TRIALS, storage=storage,
                                trials_per_s=TRIALS / benchmark.stats["mean"],
                                asks_per_s=asks / benchmark.stats["mean"])


def _train_config(fake, out: Path, url: str, trials: int):
    """Returns the config of a random search with ``--evaluate train`` (each candidate
    trained 1 epoch of at most 20 steps on digits) in the PostgreSQL study ``url``
    (skips without a ``train`` evaluator)."""
    from nasbench.searchers import TrialConfig
    from nasbench.searchers.evaluate import EVALUATORS
    if "train" not in EVALUATORS:
        pytest.skip("no evaluator is registered as --evaluate train")
    kw = dict(space="nb201", evaluate="train", trials=trials, trials_per_epoch=trials,
              dataset="digits", device="hw-nas-bench:edgegpu", benchmark_dir=str(fake),
              storage=url, out=str(out), references="", train_epochs=1,
              train_max_steps=20, measure=False)
    return TrialConfig.from_preset("quick", "random", **kw)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("NASBENCH_TEST_POSTGRES"),
                    reason="NASBENCH_TEST_POSTGRES is unset (a PostgreSQL URL)")
def test_worker_speedup(fake, tmp_path, monkeypatch):
    """The same trials by 1, 2, 3 workers (one thread each, a fresh cache each: every
    candidate is trained): the wall time from their start to the last one's exit, and
    the study's span (first worker trial's start to the last one's end: without the
    processes' start-up). The goal is on the span."""
    import optuna

    from nasbench.run.runner import run_search
    from nasbench.searchers.storage import open_storage
    url = os.environ["NASBENCH_TEST_POSTGRES"]
    n = int(os.environ.get("NASBENCH_BENCH_TRIALS", "12"))
    storage = open_storage(url)
    walls, spans = {}, {}
    for k in (1, 2, 3):
        monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / f"cache{k}"))
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cfg = _train_config(fake, tmp_path / f"w{k}", url, n + 1)
        # the run's own process makes the study and its first trial, then stops
        cut = run_search(cfg, quiet=True, _interrupt_after_steps=1)
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-m", "nasbench", "worker",
                                   Path(cut.run_dir).name, "--storage", url, "--quiet"],
                                  env=env) for _ in range(k)]
        assert [p.wait() for p in procs] == [0] * k
        walls[k] = time.perf_counter() - t0
        trials = optuna.load_study(study_name=Path(cut.run_dir).name,
                                   storage=storage).get_trials()[1:]
        spans[k] = (max(t.datetime_complete for t in trials)
                    - min(t.datetime_start for t in trials)).total_seconds()
        print(f"{k} worker(s): {n} trials in {walls[k]:.1f} s, span {spans[k]:.1f} s "
              f"({spans[k] / spans[1]:.2f}x one worker's span)")
    assert spans[2] <= 0.6 * spans[1], spans


SHARED_NB201 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201"
DEVICES = ("edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga")


def _tables(fake) -> Path:
    """Returns the real NAS-Bench-201 folder when ../shared has it, else the fake."""
    return SHARED_NB201 if (SHARED_NB201 / "nb201-12epoch-accuracy.csv").is_file() else fake


@pytest.mark.slow
def test_bench_evolution_500_queries_ten_seeds_six_devices(benchmark, fake, tmp_path):
    """``nasbench bench --method evolution --queries 500 --seeds 10`` on all six
    HW-NAS-Bench devices in one process (goal: under 60 s on the 2-core machine)."""
    from nasbench.cli import main
    folder = _tables(fake)
    rounds = iter(range(100))

    def run():
        out = tmp_path / f"b{next(rounds)}"
        assert main(["bench", "--method", "evolution", "--device",
                     ",".join(f"hw-nas-bench:{d}" for d in DEVICES), "--queries", "500",
                     "--seeds", "10", "--benchmark-dir", str(folder), "--out", str(out),
                     "--quiet"]) == 0

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(tables=str(folder), seconds=benchmark.stats["mean"])
    print(f"bench evolution 500 x 10 seeds x 6 devices: {benchmark.stats['mean']:.1f} s")


def _ask_times(s, n: int) -> list[float]:
    """Runs ``n`` evaluations of a set-up searcher; returns the seconds of each."""
    stamps = [time.perf_counter()]
    s.advance(n, lambda *_: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["evolution", "random"])
def test_per_ask_time_is_flat(fake, method):
    """The loop's bookkeeping is O(1) per ask (searchers/ledger.py): the median time
    of an evaluation in trials 10-60 and 450-500 of one in-memory study, as a curve in
    bins of 50 (printed); goal: the late bin within 1.5x of the early one. (NSGA-II's
    own child generation costs more once a population's neighbourhood is spent: up to
    ~10 ms an ask on the synthetic table after ~250 trials, bounded by its retries.)"""
    s = make_searcher(fake, method, None, trials=500)
    times = _ask_times(s, 500)
    import statistics
    bins = [statistics.median(times[i:i + 50]) * 1e3 for i in range(10, 500, 50)]
    print(f"{method}: ms per evaluation by 50s from trial 10: "
          + ", ".join(f"{b:.2f}" for b in bins))
    assert s.counts()["asks"] == 500                 # one trial per evaluation
    assert bins[-1] <= 1.5 * bins[0] + 0.5, bins


@pytest.mark.slow
@pytest.mark.parametrize("method,queries", [("mobo", 200), ("bo", 40)])
def test_seconds_per_proposal(fake, method, queries):
    """bo's and mobo's model is their cost: seconds per proposal on the tables (the
    real ones when ../shared has them), printed."""
    from nasbench.benchmarks import NB201Bench
    from nasbench.run.bench import BenchSpec, _trial_seed, ground_truth
    folder = _tables(fake)
    spec = BenchSpec(method=method, device="hw-nas-bench:edgegpu",
                     benchmark_dir=str(folder), queries=queries)
    b = NB201Bench(folder)
    ground = ground_truth(spec, b)
    t0 = time.perf_counter()
    _, visited, counters = _trial_seed(spec, ground, b, 0, lambda *_: None)
    wall = time.perf_counter() - t0
    print(f"{method}: {queries} queries in {wall:.1f} s, {wall / queries:.3f} s per "
          f"proposal on average (start-up cells included)")
    assert len(set(visited)) == queries and counters["cache_hits"] == 0
