"""`nasbench bench`, the HW-NAS-Bench tabular device as a run target, the multi-trial
base with random search and its table evaluator, and the NAS-Bench-201 supernet.

Most tests use a synthetic NAS-Bench-201 folder (tests/nb201_fake.py: all 15,625
cells, accuracy and cost known functions of the cell) so the answers can be computed
by hand here; one test runs on the shared files when present."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nasbench.benchmarks import NB201Bench
from nasbench.cli import main
from nasbench.errors import UserError
from nasbench.run.bench import BenchSpec, run_bench
from nasbench.searchers.evaluate import TableEvaluator
from nasbench.spaces.nb201 import NB201_OPS, NB201Arch, NB201DeployConfig, NB201Space

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import cost_ms, write_fake_nb201  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


@pytest.fixture(scope="module")
def table(fake):
    b = NB201Bench(fake)
    acc = b.accuracy
    hw = b.hardware("cifar10")
    return b, acc, hw


# ---- the supernet -------------------------------------------------------------------------


def test_nb201_supernet_shapes_derivation_and_pcdarts_edge_weights():
    torch.manual_seed(0)
    space = NB201Space(NB201DeployConfig())
    net = space.supernet(8, 1, 1, num_classes=7, input_size=16)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    assert net.slot_logits().shape == (6, 5) and net.slot_weights() is None
    with torch.no_grad():
        net.alphas.zero_()
        for e, op in enumerate(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3",
                                "nor_conv_1x1", "none")):
            net.alphas[e, NB201_OPS.index(op)] = 1.0
    assert net.genotype() == NB201Arch(("nor_conv_3x3", "none", "skip_connect",
                                        "avg_pool_3x3", "nor_conv_1x1", "none"))
    ids = {id(p) for p in net.arch_parameters()}
    assert not ids & {id(p) for p in net.weights()}
    pc = space.supernet(8, 1, 4)
    with torch.no_grad():
        pc.betas.zero_()
    assert torch.allclose(pc.edge_weights(), torch.ones(6))   # uniform: the plain sum
    assert pc(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    loss = pc(torch.randn(2, 3, 32, 32)).sum()
    loss.backward()
    assert pc.alphas.grad is not None and pc.betas.grad is not None


def test_darts_space_has_no_nb201_only_options_and_proxyless_no_supernet():
    from nasbench.searchers.darts_config import DARTSConfig
    from nasbench.spaces.proxyless import ProxylessSpace
    with pytest.raises(UserError, match="no DARTS supernet"):
        ProxylessSpace(ProxylessSpace.default_deploy()).supernet(8, 2)
    with pytest.raises(UserError, match="searches the spaces"):
        DARTSConfig.from_preset("quick", "darts", space="proxyless")
    cfg = DARTSConfig.from_preset("quick", "darts", space="nb201")
    d = cfg.deploy()
    assert (d.channels, d.cells, d.input_size) == (16, 5, 32)
    assert (cfg.channels, cfg.layers, cfg.train_size(), cfg.references) == (8, 2, {}, "")


# ---- evaluator, tabular device ------------------------------------------------------------


def test_table_evaluator_sees_validation_counts_queries_and_cache_hits(table):
    b, acc, _ = table
    a = b.arch(7)
    ev = TableEvaluator(b, "cifar10", lambda arch: {"latency": cost_ms(arch)})
    first, again = ev(a), ev(a)
    assert first["accuracy"] == acc.at[7, "cifar10-val"] != acc.at[7, "cifar10-test"]
    assert (first["cached"], again["cached"], ev.queries, ev.cache_hits) == \
        (False, True, 1, 1)
    ev200 = TableEvaluator(b, "cifar10", lambda arch: {}, fidelity=200)
    t200 = b.accuracy_200["cifar10-valid-200ep"]
    have, lack = t200.index[0], next(i for i in range(20) if i not in t200.index)
    assert ev200(b.arch(int(have)))["accuracy"] == t200[have]
    assert ev200(b.arch(lack))["accuracy"] is None
    with pytest.raises(UserError, match="fidelity"):
        TableEvaluator(b, "cifar10", lambda arch: {}, fidelity=50)


def test_tabular_device_reads_the_table_and_fits_an_exact_lut_on_additive_costs(
        fake, table, tmp_path, monkeypatch):
    from nasbench.benchmarks.tabular import TabularDevice, is_tabular
    from nasbench.predict.predictor import Predictor
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path))
    b, _, hw = table
    dev = TabularDevice("hw-nas-bench:raspi4", fake)
    assert is_tabular("hw-nas-bench:raspi4") and not is_tabular("cpu")
    a = b.arch(11)
    m = dev.measure(a)
    assert m["latency_ms"]["median"] == hw.at[11, "raspi4_latency"]
    assert m["energy_j"] is None and "no energy" in m["energy_reason"]
    lut, path = dev.lut()
    assert path.is_file() and lut.provenance["fitted"]
    assert dev.lut()[1] == path                               # cached
    space = NB201Space(NB201DeployConfig())
    pred = Predictor.from_lut(space, lut, ["latency"], "cpu", path)
    for i in (3, 500, 15000):
        arch = b.arch(i)
        if arch.connected():                  # the fit leaves disconnected cells out
            assert pred.cost(arch)["latency"] == pytest.approx(cost_ms(arch), abs=2e-5)
    with pytest.raises(UserError, match="HW-NAS-Bench measured"):
        dev.check_deploy(NB201DeployConfig(channels=8))


def test_hw_nas_bench_pickle_reads_like_the_csv_export(fake, table, tmp_path):
    """HW-NAS-Bench's official format: d["nasbench201"][dataset][metric][index]."""
    import pickle
    import shutil
    b, _, hw = table
    folder = tmp_path / "pkl"
    folder.mkdir()
    shutil.copy(fake / "nb201-12epoch-accuracy.csv", folder)
    cols = [c for c in hw.columns if c != "arch"]
    d = {"nasbench201": {ds: {c: list(NB201Bench(fake).hardware(ds)[c].fillna(-1))
                              for c in cols} for ds in ("cifar10", "cifar100")}}
    d["nasbench201"]["cifar10"]["edgetpu_latency"][4] = -1.0      # not measured
    (folder / "HW-NAS-Bench-v1_0.pickle").write_bytes(pickle.dumps(d))
    got = NB201Bench(folder).hardware("cifar10")
    assert np.isnan(got.at[4, "edgetpu_latency"])
    got.loc[4, "edgetpu_latency"] = hw.at[4, "edgetpu_latency"]
    assert (got[cols] == hw[cols]).all().all() and (got["arch"] == hw["arch"]).all()
    with pytest.raises(UserError, match="ImageNet16-120"):
        NB201Bench(folder).hardware("ImageNet16-120")
    (folder / "HW-NAS-Bench-v1_0.pickle").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="not a readable HW-NAS-Bench pickle"):
        NB201Bench(folder).hardware("cifar10")


def test_a_nats_bench_archive_gives_200_epoch_truth_and_signal(fake, table, tmp_path,
                                                                monkeypatch):
    """Through a stand-in for the nats_bench package (the archive is not here): the
    adapter's data set and key mapping, its cache, and the bench reporting 200 epochs."""
    import types
    b, acc, _ = table
    calls = []

    class API:
        def arch(self, i):
            return acc.at[i, "arch"]

        def get_more_info(self, i, ds, hp, is_random):
            calls.append((ds, hp, is_random))
            base = acc.at[i, f"{ds.replace('-valid', '')}-test"]
            return {"valid-accuracy": base + 3.0, "test-accuracy": base + 5.0}

    mod = types.ModuleType("nats_bench")
    mod.create = lambda path, space, fast_mode, verbose: API()
    monkeypatch.setitem(sys.modules, "nats_bench", mod)
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    archive = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    archive.mkdir()
    nb = NB201Bench(fake, nats=archive)
    assert nb.test_epochs == 200
    assert nb.test_accuracy("cifar100")[9] == pytest.approx(acc.at[9, "cifar100-test"] + 5)
    assert nb.val_accuracy("cifar10", 200)[9] == pytest.approx(acc.at[9, "cifar10-test"] + 3)
    assert {c[1:] for c in calls} == {("200", False)} and \
        {c[0] for c in calls} == {"cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"}
    n = len(calls)
    again = NB201Bench(fake, nats=archive).accuracy_nats         # from the cache
    assert len(calls) == n and len(again) == 15_625
    r = run_bench(BenchSpec(method="random", device="hw-nas-bench:edgegpu",
                            benchmark_dir=str(fake), nats=str(archive), queries=10,
                            seeds=1), tmp_path / "b")
    assert r["signal"]["reported"].startswith("200-epoch")
    run = r["runs"][0]
    assert run["accuracy"] == pytest.approx(acc.at[run["index"], "cifar10-test"] + 5)
    monkeypatch.delitem(sys.modules, "nats_bench")
    monkeypatch.setitem(sys.modules, "nats_bench", None)          # not installed
    with pytest.raises(UserError, match="nasbench\\[nats\\]"):
        _ = NB201Bench(fake, nats=tmp_path).accuracy_nats


def test_lut_validate_against_a_tabular_device(fake, tmp_path, capsys):
    from nasbench.benchmarks.hwnas import fitted_lut
    fitted_lut(NB201Bench(fake), "eyeriss").save(tmp_path / "ey.json")
    rc = main(["lut", "validate", "--lut", str(tmp_path / "ey.json"), "--device",
               "hw-nas-bench:eyeriss", "--space", "nb201", "--benchmark-dir", str(fake),
               "--out", str(tmp_path / "v.json")])
    assert rc == 0
    res = json.loads((tmp_path / "v.json").read_text())
    # the synthetic costs are additive: the fitted sum reproduces every connected cell
    assert res["latency"]["within_10pct"] == 1.0 and res["energy"]["within_10pct"] == 1.0
    assert res["latency"]["cells"] + res["latency"]["disconnected"] == 15_625
    assert set(res["latency"]["predictors"]) == {"plain"}
    capsys.readouterr()
    assert main(["lut", "validate", "--lut", str(tmp_path / "ey.json"), "--device",
                 "hw-nas-bench:eyeriss", "--space", "nb201"]) == 2
    assert "--benchmark-dir" in capsys.readouterr().err


# ---- bench --------------------------------------------------------------------------------


def test_random_bench_scores_match_hand_computations(fake, table, tmp_path):
    b, acc, hw = table
    spec = BenchSpec(method="random", device="hw-nas-bench:edgegpu",
                     benchmark_dir=str(fake), target=2.0, queries=40, seeds=2)
    r = run_bench(spec, tmp_path / "b")
    lat, test, val = hw["edgegpu_latency"], acc["cifar10-test"], acc["cifar10-val"]
    best_under = test[lat <= 2.0].max()
    assert json.loads((tmp_path / "b" / "bench.json").read_text())["method"] == "random"
    for run in r["runs"]:
        assert run["queries"] == 40 and run["met"] and run["cost"] <= 2.0
        assert run["regret"] == pytest.approx(best_under - test[run["index"]])
        assert 0.0 <= run["hv_gap"] <= 1.0 and run["igd"] >= 0
        assert run["anytime"]["queries"][-1] == 40
        # every found-front cell met nothing but was evaluated: it is on the signal front
        assert all(c["cost"] == pytest.approx(lat[c["index"]]) for c in run["found_front"])
    # the floor: the best-by-validation cell under the target, scored at test accuracy
    ok = lat <= 2.0
    floor_pick = val[ok].idxmax()
    assert r["floor"]["index"] == floor_pick
    assert r["floor"]["regret"] == pytest.approx(best_under - test[floor_pick])
    agg = r["aggregate"]["regret"]
    regrets = [x["regret"] for x in r["runs"]]
    assert agg["mean"] == pytest.approx(np.mean(regrets))
    assert agg["std"] == pytest.approx(np.std(regrets))
    assert len(r["targets"]) == 4 and r["true_front"][0]["cost"] <= r["true_front"][-1]["cost"]
    # seeds differ; a rerun reuses them, a changed budget recomputes
    assert r["runs"][0]["arch"] != r["runs"][1]["arch"]
    lines = []
    again = run_bench(spec, tmp_path / "b", log=lines.append)
    assert [x["arch"] for x in again["runs"]] == [x["arch"] for x in r["runs"]]
    assert sum("reused" in s for s in lines) == 2
    lines.clear()
    run_bench(BenchSpec(**{**spec.__dict__, "queries": 30}), tmp_path / "b",
              log=lines.append)
    assert not any("reused" in s for s in lines)


def test_random_search_never_evaluates_a_cell_over_the_hard_target(fake, table):
    from nasbench.run.bench import _trial_seed, ground_truth
    b, _, hw = table
    spec = BenchSpec(method="random", device="hw-nas-bench:edgegpu",
                     benchmark_dir=str(fake), target=1.0, queries=25, seeds=1)
    ground = ground_truth(spec, b)
    chosen, visited, counters = _trial_seed(spec, ground, b, 0, lambda *_: None)
    assert len(visited) == 25 == counters["queries"]
    assert max(hw.loc[visited, "edgegpu_latency"]) <= 1.0
    assert hw.at[chosen, "edgegpu_latency"] <= 1.0


def test_bench_with_a_user_lut_scores_the_luts_costs(fake, table, tmp_path):
    from nasbench.benchmarks.hwnas import fitted_lut
    b, acc, _ = table
    lut = fitted_lut(b, "fpga")
    lut.provenance["device"] = {"id": "mine", "name": "my board", "spec": "cpu"}
    lut.save(tmp_path / "mine.json")
    spec = BenchSpec(method="random", device="cpu", benchmark_dir=str(fake),
                     lut=str(tmp_path / "mine.json"), queries=20, seeds=1)
    r = run_bench(spec, tmp_path / "b")
    assert r["cost_source"].startswith("LUT") and r["device_name"] == "my board"
    run = r["runs"][0]
    a = b.arch(run["index"])
    if a.connected():
        assert run["cost"] == pytest.approx(cost_ms(a), abs=1e-4)
    assert run["regret"] == pytest.approx(acc["cifar10-test"].max() - run["accuracy"])


def test_bench_cli_end_to_end_and_bad_input(fake, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["bench", "--method", "random", "--device",
               "hw-nas-bench:edgegpu,hw-nas-bench:fpga", "--benchmark-dir", str(fake),
               "--queries", "15", "--seeds", "2", "--latency-target", "3ms", "--out",
               str(out), "-q"])
    assert rc == 0
    rows = (out / "bench.csv").read_text().strip().splitlines()
    assert (out / "bench.html").is_file()
    assert len(rows) == 1 + 4 and rows[0].startswith("method,device")
    for d in ("edgegpu", "fpga"):
        r = json.loads((out / f"random-hw-nas-bench-{d}" / "bench.json").read_text())
        assert r["device"] == f"hw-nas-bench:{d}" and len(r["runs"]) == 2
    capsys.readouterr()
    bad = [(["--device", "hw-nas-bench:tpu9"], "unknown HW-NAS-Bench device"),
           (["--device", "cpu"], "--lut FILE"),
           (["--method", "proxyless"], "not 'proxyless'"),
           (["--method", "darts"], "--data-dir"),
           (["--objective", "acc+energy", "--device", "hw-nas-bench:raspi4"],
            "no energy for raspi4"),
           (["--dataset", "mnist"], "unknown NAS-Bench-201 data set"),
           (["--latency-target", "fast"], "--latency-target"),
           (["--seeds", "0"], "must be positive")]
    for args, msg in bad:
        base = ["bench", "--benchmark-dir", str(fake), "--queries", "5", "--seeds", "1",
                "--out", str(tmp_path / "bad"), "-q"]
        assert main(base + args) == 2, args
        err = capsys.readouterr().err.strip()
        assert msg in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert main(["bench", "--benchmark-dir", str(tmp_path / "nowhere"), "-q",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_search_random_on_a_tabular_device_through_the_runner(fake, table, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    b, acc, hw = table
    rc = main(["search", "--space", "nb201", "--method", "random", "--device",
               "hw-nas-bench:edgegpu", "--benchmark-dir", str(fake), "--trials", "20",
               "--latency-target", "2ms", "--train-epochs", "0", "--out",
               str(tmp_path / "runs"), "-q"])
    assert rc == 0
    run = next((tmp_path / "runs").iterdir())
    res = json.loads((run / "result.json").read_text())
    i = res["table"]["index"]
    assert res["table"]["test_acc"] == acc.at[i, "cifar10-test"]
    assert res["target"]["met"] and res["target"]["final_ms"] == hw.at[i, "edgegpu_latency"]
    assert not res["target"]["repaired"]          # the searcher filtered by the table
    assert res["measured"]["latency_ms"]["median"] == hw.at[i, "edgegpu_latency"]
    assert len(res["visited"]) == 20 and res["test_acc"] is None
    hist = json.loads((run / "history.json").read_text())
    assert hist[-1]["queries"] == 20
    # bad combinations: one line, exit 2
    for args, msg in ((["--space", "darts"], "--space nb201"),
                      (["--cost-weight", "1"], "--cost-weight"),
                      (["--channels", "8"], "--channels")):
        capsys.readouterr()
        rc = main(["search", "--method", "random", "--device", "hw-nas-bench:edgegpu",
                   "--benchmark-dir", str(fake), "--space", "nb201", "-q", *args])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and msg in err and len(err.splitlines()) == 1, err


def test_darts_on_nb201_trains_its_supernet_and_the_bench_looks_it_up(fake, table,
                                                                      tmp_path,
                                                                      monkeypatch):
    """One-shot path end to end, on the synthetic data set (tiny supernet, 2 steps)."""
    from nasbench.run.bench import _one_shot_seed, ground_truth
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    b, acc, hw = table
    spec = BenchSpec(method="pcdarts", device="hw-nas-bench:edgegpu",
                     benchmark_dir=str(fake), seeds=1, epochs=2, steps_per_epoch=2,
                     data_dir="unused", extra={"dataset": "synthetic", "data_dir": None,
                                               "batch_size": 4, "channels": 4,
                                               "layers": 1})
    ground = ground_truth(spec, b)
    chosen, visited, info = _one_shot_seed(spec, ground, b, 0, tmp_path, True)
    res = json.loads((Path(info["run_dir"]) / "result.json").read_text())
    assert res["space"] == "nb201" and res["table"]["index"] == chosen
    # a DARTS-like method ranks nothing but its answer: its found front is that cell
    assert visited == [chosen] and info["epochs"] == 2 and info["signal"] == {}
    assert res["measured"]["source"].startswith("HW-NAS-Bench")
    assert not math.isnan(hw.at[chosen, "edgegpu_latency"])
    hist = json.loads((Path(info["run_dir"]) / "history.json").read_text())
    assert np.array(hist[-1]["alphas"]["cell"]).shape == (6, 5)


@pytest.mark.skipif(not (SHARED / "nb201-12epoch-accuracy.csv").is_file(),
                    reason="../shared/data/nb201 absent")
def test_random_bench_on_the_shared_tables_beats_chance_and_reports_the_floor(tmp_path):
    r = run_bench(BenchSpec(method="random", device="hw-nas-bench:edgegpu",
                            benchmark_dir=str(SHARED), queries=50, seeds=2),
                  tmp_path / "b")
    # 50 random cells: the best by validation is within a few points of the best cell
    assert all(0 <= x["regret"] < 5 for x in r["runs"])
    assert 0 <= r["floor"]["regret"] < 1 and r["floor"]["hv_gap"] < 0.05


def test_non_finite_numbers_are_refused_and_never_written(tmp_path, capsys):
    """No NaN/inf enters an option or a config (one check for every float setting), and
    JSON files are strict: a non-finite value is written as null."""
    from nasbench.files import write_json
    from nasbench.searchers.darts_config import DARTSConfig
    for args in (["search", "--latency-target", "nan"], ["search", "--cost-weight", "nan"],
                 ["search", "--latency-target", "inf"],
                 ["bench", "--benchmark-dir", str(tmp_path), "--latency-target", "nan"]):
        capsys.readouterr()
        assert main(args + ["-q", "--out", str(tmp_path / "o")]) == 2, args
        err = capsys.readouterr().err.strip()
        assert "finite" in err or "positive number" in err, err
        assert len(err.splitlines()) == 1
    with pytest.raises(UserError, match="arch-learning-rate must be a finite number"):
        DARTSConfig.from_preset("quick", "darts", arch_learning_rate=float("nan"))
    with pytest.raises(UserError, match="arch-betas"):
        DARTSConfig.from_preset("quick", "darts", arch_betas=(0.5, float("inf")))
    write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1.0, float("-inf")],
                                     "c": np.float64("nan"), "t": torch.tensor([2.5])})
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None, "t": [2.5]}
