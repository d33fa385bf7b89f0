"""Zero-cost proxies at work: ``nasbench proxy`` (scores, CSV, correlations with the
tables, the cache across runs), ``--evaluate zc`` through the runner and a worker,
``nasbench bench --evaluate zc``, ``--dataset folder``, the predictor with proxy
features, and bad input (one line, exit 2). On the synthetic NAS-Bench-201 tables of
tests/nb201_fake.py; the bench also on ../shared's CIFAR-10 slice."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nasbench.cli import main
from nasbench.data import find_cifar_dir, load_dataset
from nasbench.errors import UserError
from nasbench.run.runner import run_search
from nasbench.searchers import TrialConfig

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import write_fake_nb201  # noqa: E402

MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-mini"
needs_mini = pytest.mark.skipif(find_cifar_dir(MINI) is None, reason="cifar10-mini absent")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path / "cache"


def proxy_cli(fake, out, capsys, *extra) -> dict:
    capsys.readouterr()
    rc = main(["proxy", "--dataset", "synthetic", "--input", "16", "--sample", "12",
               "--zc-batch", "8", "--benchmark-dir", str(fake), "--boot", "50",
               "--proxy", "naswot,params,naswot+params", "--out", str(out), "--json",
               "--threads", "1", *extra])
    assert rc == 0
    return json.loads(capsys.readouterr().out)


def test_proxy_scores_a_sample_and_correlates_it_with_every_fidelity(fake, tmp_path,
                                                                     cache, capsys):
    res = proxy_cli(fake, tmp_path / "s.csv", capsys, "--sample-table")
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == 12 and list(rows[0]) == ["arch", "valid", "naswot", "params",
                                                 "naswot+params"]
    assert all(0.0 <= float(r["naswot+params"]) <= 100.0 for r in rows)
    corr = res["correlations"]["naswot+params"]
    assert set(corr) == {"val_12 (cifar10)", "test_12 (cifar10)", "val_200 (cifar10)"}
    # --sample-table: every sampled cell has a 200-epoch accuracy
    valid = sum(r["valid"] == "1" for r in rows)
    assert corr["val_200 (cifar10)"]["n"] == valid
    c = corr["test_12 (cifar10)"]
    assert -1 <= c["spearman"] <= 1 and c["spearman_ci95"][0] <= c["spearman_ci95"][1]
    # params ranks the fake tables' cells: their accuracy grows with the convolutions
    assert res["correlations"]["params"]["test_12 (cifar10)"]["spearman"] > 0.3
    assert res["speed"]["computed"] == valid and res["speed"]["cells_per_s"] > 0
    assert res["published"]["spearman_val_200"]["naswot"] == pytest.approx(0.792)
    # a second run reads every score from the cache
    again = proxy_cli(fake, tmp_path / "t.csv", capsys, "--sample-table")
    assert again["speed"]["computed"] == 0 and again["speed"]["cached"] == 12
    assert (tmp_path / "t.csv").read_text() == (tmp_path / "s.csv").read_text()


def test_the_predictor_reads_proxy_features_from_the_csv(fake, tmp_path, cache, capsys):
    capsys.readouterr()
    assert main(["proxy", "--dataset", "synthetic", "--input", "16", "--sample", "40",
                 "--zc-batch", "8", "--proxy", "naswot,params", "--out",
                 str(tmp_path / "p.csv"), "--threads", "1", "-q"]) == 0
    capsys.readouterr()
    assert main(["surrogate", "study", "--benchmark-dir", str(fake), "--proxies",
                 str(tmp_path / "p.csv"), "--sizes", "15", "--repeats", "1", "--kind",
                 "forest", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["rows"][0]
    assert doc["features"] == ["space", "naswot", "params"] and row["extra"] == [
        "naswot", "params"]
    assert row["n_train"] == 15 and row["n_test"] == doc["cells"] - 15
    assert 0 < row["n_test_distinct"] <= row["n_test"]
    assert -1 <= row["kendall_tau_distinct"] <= 1
    assert main(["surrogate", "study", "--benchmark-dir", str(fake), "--proxies",
                 str(tmp_path / "p.csv"), "--proxy-columns", "synflow"]) == 2


def test_the_predictor_refuses_a_call_without_its_extra_columns():
    from nasbench.predict.surrogate import AccuracyPredictor
    from nasbench.spaces import get_space
    space = get_space("nb201")(get_space("nb201").default_deploy())
    archs = space.all_archs()[:30]
    m = AccuracyPredictor(space, "forest", extra_names=("naswot",))
    m.fit(archs, np.arange(30.0), np.arange(30.0)[:, None])
    assert m.predict(archs[:3], np.zeros((3, 1)))[0].shape == (3,)
    with pytest.raises(UserError, match="naswot"):
        m.predict(archs[:3])


def zc_config(fake, tmp_path, **kw):
    base = dict(space="nb201", evaluate="zc", dataset="synthetic", trials=4,
                trials_per_epoch=2, population=3, sample_size=2, zc_batch=8,
                zc_reference=3, benchmark_dir=str(fake), device="hw-nas-bench:edgegpu",
                out=str(tmp_path / "runs"), references="", train_epochs=0,
                measure=False, threads=1)
    return TrialConfig.from_preset("quick", kw.pop("method", "evolution"), **{**base, **kw})


def test_evaluate_zc_runs_a_search_on_zero_cost_scores(fake, tmp_path, cache):
    res = run_search(zc_config(fake, tmp_path), quiet=True)
    assert res.status == "complete" and len(res.visited) == 4
    assert all(0.0 <= v["accuracy"] <= 100.0 for v in res.visited)
    log = (Path(res.run_dir) / "search.log").read_text()
    assert "zc evaluator: jacob_cov+naswot+params standardised on 3 reference" in log
    # the cache serves the next run: another seed scores its reference from it
    again = run_search(zc_config(fake, tmp_path, seed=5), quiet=True)
    assert again.status == "complete"
    log = (Path(again.run_dir) / "search.log").read_text()
    assert "reference cells (0 scored now" in log
    first = {json.dumps(v["arch"], sort_keys=True): v["accuracy"] for v in res.visited}
    for v in again.visited:                 # a cell both saw: the same score
        key = json.dumps(v["arch"], sort_keys=True)
        if key in first:
            assert v["accuracy"] == first[key]


def test_a_worker_joins_a_zc_study(fake, tmp_path, cache, capsys):
    cut = run_search(zc_config(fake, tmp_path, method="random", trials=6,
                               trials_per_epoch=3), quiet=True, _interrupt_after_steps=1)
    assert cut.status == "interrupted"
    capsys.readouterr()
    assert main(["worker", str(cut.run_dir), "--json", "--quiet"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{"):])
    assert summary["queries"] == 6 and summary["evaluated"] >= 4
    res = run_search(resume=cut.run_dir, quiet=True)
    assert res.status == "complete" and len(res.visited) == 6
    assert all(0.0 <= v["accuracy"] <= 100.0 for v in res.visited)


@needs_mini
def test_bench_evaluate_zc_scores_the_searches_choice_against_the_tables(fake, tmp_path,
                                                                         cache):
    from nasbench.run.bench import BenchSpec, run_bench
    spec = BenchSpec(method="evolution", device="hw-nas-bench:edgegpu",
                     benchmark_dir=str(fake), queries=6, seeds=2, evaluate="zc",
                     data_dir=str(MINI), extra={"zc_batch": 8, "zc_reference": 3,
                                                "population": 3, "sample_size": 2})
    # a seed chooses by its own zero-cost scores, never by the table
    from nasbench.benchmarks.nb201 import NB201Bench
    from nasbench.run.bench import _trial_seed, ground_truth, zero_cost_setup
    bench = NB201Bench(fake)
    ground = ground_truth(spec, bench)
    zc = zero_cost_setup(spec, ground, lambda *_: None)
    chosen, visited, counters = _trial_seed(spec, ground, bench, 0, lambda *_: None, zc)
    signal = counters["signal"]
    assert set(signal) == set(visited) and all(0 <= v <= 100 for v in signal.values())
    assert chosen == max(signal, key=signal.get)
    assert signal != {i: ground.val[i] for i in signal}
    r = run_bench(spec, tmp_path / "b")
    assert "zero-cost score jacob_cov+naswot+params" in r["signal"]["search"]
    assert "table's validation accuracy" in r["floor"]["what"]
    for run in r["runs"]:
        assert run["queries"] == 6 and run["wall_s"] > 0 and 0 <= run["zc_computed"] <= 6
        assert run["valid"]
    with pytest.raises(UserError, match="multi-trial"):
        run_bench(BenchSpec(method="darts", device="hw-nas-bench:edgegpu",
                            benchmark_dir=str(fake), evaluate="zc", data_dir=str(MINI)),
                  tmp_path / "c")


def write_images(root: Path, classes=("cat", "dog"), n=5, size=12):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            px = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(px).save(root / c / f"{i}.png")


def test_a_folder_of_class_folders_is_a_data_set(tmp_path):
    write_images(tmp_path / "flat")
    d = load_dataset("folder", tmp_path / "flat", input_size=16)
    assert (d.num_classes, len(d.train), len(d.test)) == (2, 8, 2)     # 20 % per class
    assert d.train.images.shape[1:] == (3, 16, 16) and "held out" in d.source
    assert sorted(d.test.labels.tolist()) == [0, 1]
    write_images(tmp_path / "split" / "train")
    write_images(tmp_path / "split" / "test", n=2)
    d = load_dataset("folder", tmp_path / "split", input_size=8)
    assert (len(d.train), len(d.test)) == (10, 4)
    write_images(tmp_path / "one", classes=("cat",))
    with pytest.raises(UserError, match="2 classes or more"):
        load_dataset("folder", tmp_path / "one")
    with pytest.raises(UserError, match="not a folder"):
        load_dataset("folder", tmp_path / "missing")


@pytest.mark.parametrize("argv, match", [
    (["proxy", "--proxy", "nope"], "--proxy must be one of"),
    (["proxy", "--sample", "0"], "--sample must be a positive"),
    (["proxy", "--dataset", "folder"], "--data-dir"),
    (["proxy", "--dataset", "folder", "--data-dir", "missing"], "not a folder"),
    (["proxy", "--sample-table"], "--benchmark-dir"),
    (["proxy", "--space", "darts", "--benchmark-dir", "."], "--space nb201"),
    (["search", "--method", "random", "--space", "nb201", "--evaluate", "zc", "--proxy",
      "naswot+nope"], "--proxy must be one of"),
    (["bench", "--evaluate", "zc"], "--data-dir"),
])
def test_bad_input_is_one_line(argv, match, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and match in lines[0], err


def test_an_nsga2_run_checkpoints_and_resumes(fake, tmp_path, cache):
    """NSGA-II's sampler (Optuna's, which holds a thread lock) goes into the checkpoint
    with the study and comes back on resume."""
    from nasbench.searchers import get_searcher
    base = zc_config(fake, tmp_path, method="random", trials=6, trials_per_epoch=3)
    cfg = get_searcher("nsga2").config_class.from_preset(
        "quick", "nsga2", **{k: v for k, v in base.to_dict().items()
                             if k not in ("method", "preset")})
    cut = run_search(cfg.replace(population=3), quiet=True, _interrupt_after_steps=1)
    assert cut.status == "interrupted"
    res = run_search(resume=cut.run_dir, quiet=True)
    assert res.status == "complete" and len(res.visited) == 6
