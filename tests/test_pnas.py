"""PNAS and its accuracy predictor: the blocks and their expansion, the beam, the hard
target, the predictor's ranking on a table with a known order, resume through the
runner, and bad input (on the synthetic NAS-Bench-201 folder of tests/nb201_fake.py)."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from nasbench.benchmarks import NB201Bench
from nasbench.errors import UserError
from nasbench.predict.surrogate import AccuracyPredictor, rank_scores, rank_study
from nasbench.run.bench import BenchSpec, _trial_seed, ground_truth
from nasbench.searchers.pnas import (
    ATTR_BLOCK,
    ATTR_PARTIAL,
    beam_for,
    expansions,
    planned_queries,
)
from nasbench.spaces import get_space
from nasbench.spaces.nb201 import NB201_OPS, NB201Arch, NB201DeployConfig, NB201Space

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import OP_ACC, cost_ms, write_fake_nb201  # noqa: E402


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


@pytest.fixture(scope="module")
def space():
    return NB201Space(NB201DeployConfig())


def test_expansion_adds_one_block_every_way_without_duplicates(space):
    first = expansions(space, {})
    assert [list(p) for p in first] == [["0->1"]] * 5
    assert sorted(p["0->1"] for p in first) == sorted(NB201_OPS)
    parent = {"0->1": "nor_conv_3x3"}
    kids = expansions(space, parent)
    assert len(kids) == 25 == len({json.dumps(k, sort_keys=True) for k in kids})
    assert all(k["0->1"] == "nor_conv_3x3" and set(k) == {"0->1", "0->2", "1->2"}
               for k in kids)
    last = expansions(space, kids[0])
    assert len(last) == 125 and all(len(k) == 6 for k in last)
    assert expansions(space, last[0]) == []              # a complete cell: no child


def test_a_partial_cell_is_completed_so_its_last_block_is_the_output(space):
    two = space.complete({"0->1": "nor_conv_3x3", "0->2": "none",
                          "1->2": "avg_pool_3x3"})
    assert two == NB201Arch(("nor_conv_3x3", "none", "avg_pool_3x3", "none", "none",
                             "skip_connect"))
    one = space.complete({"0->1": "nor_conv_1x1"})
    assert one.to_str() == "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|none~1|" \
                           "skip_connect~2|"
    darts = get_space("darts")(get_space("darts").default_deploy())
    g = darts.complete({"normal/0/inputs": "0,1", "normal/0/op0": "sep_conv_3x3",
                        "normal/0/op1": "max_pool_3x3"})
    assert g.normal == g.reduce and g.normal[0] == ("sep_conv_3x3", 0)
    assert g.normal[2:] == [("skip_connect", 1), ("skip_connect", 2),
                            ("skip_connect", 2), ("skip_connect", 3),
                            ("skip_connect", 3), ("skip_connect", 4)]
    assert len(darts.blocks()) == 4
    proxyless = get_space("proxyless")(get_space("proxyless").default_deploy())
    with pytest.raises(UserError, match="no block structure"):
        proxyless.blocks()


def test_planned_queries_and_the_beam_for_a_budget(space):
    # stage 1: the 4 valid one-block cells (node 1 = none would feed nothing)
    assert planned_queries(space, 8) == 4 + 8 + 8
    assert planned_queries(space, 3) == 4 + 3 + 3
    assert planned_queries(space, 200) == 4 + 100 + 200
    assert beam_for(space, 21) == 8 and beam_for(space, 22) == 9
    assert planned_queries(space, beam_for(space, 200)) <= 200 < \
        planned_queries(space, beam_for(space, 200) + 1)


def _pnas(fake, queries, **extra):
    b = NB201Bench(fake)
    spec = BenchSpec(method="pnas", device="hw-nas-bench:edgegpu",
                     benchmark_dir=str(fake), queries=queries, extra=extra)
    return b, spec, ground_truth(spec, b)


def test_the_beam_keeps_the_best_parents_and_ranks_their_children(fake, space):
    """With beam 2 the second stage only expands the two best 1-block cells (the table's
    points make nor_conv_3x3 then nor_conv_1x1 the best first node), and each stage
    evaluates at most the beam."""
    from nasbench.searchers import SearchContext, get_searcher
    from nasbench.searchers.evaluate import TableEvaluator
    from nasbench.seeding import seed_everything
    b = NB201Bench(fake)
    cls = get_searcher("pnas")
    cfg = cls.config_class.from_preset("quick", "pnas", space="nb201", trials=100,
                                       trials_per_epoch=100, benchmark_dir=str(fake),
                                       beam=2, predictor_kind="forest")
    seed_everything(0)
    s = cls()
    s.setup(SearchContext(config=cfg, space=space, predictor=None, data=None,
                          metrics=["latency"], target_ms=None, log=lambda *_: None,
                          device=None, evaluator=TableEvaluator(
                              b, "cifar10", lambda a: {"latency": cost_ms(a)})))

    class Oracle:                     # a predictor that knows the table's points
        def fit(self, archs, acc):
            return self

        def predict(self, archs):
            pts = np.array([sum(OP_ACC[o] for o in a.ops) for a in archs])
            return pts, np.zeros_like(pts)

    s.study.sampler.predictor = Oracle
    for e in range(s.epochs):
        s.run_epoch(e, lambda *_: None)
    assert s.finished()
    trials = s.study.get_trials(deepcopy=False)
    stage = {k: [t for t in trials if t.system_attrs.get(ATTR_BLOCK) == k]
             for k in (1, 2, 3)}
    assert [len(stage[k]) for k in (1, 2, 3)] == [4, 2, 2]
    # 4 valid one-block cells (node 1 = none feeds nothing), then 2 + 2
    assert len(s.visited()) == planned_queries(space, 2) == 8
    acc1 = {t.system_attrs[ATTR_PARTIAL]["0->1"]: t.value for t in stage[1]}
    top2 = sorted(acc1, key=acc1.get, reverse=True)[:2]
    assert {t.system_attrs[ATTR_PARTIAL]["0->1"] for t in stage[2]} <= set(top2)
    assert s.study.sampler.fits == 2                  # one fit per ranked stage
    # stage 3 holds the two children of stage 2's best that the predictor ranks top
    acc2 = {json.dumps(t.system_attrs[ATTR_PARTIAL]): t.value for t in stage[2]}
    kids = [k for p in acc2 for k in expansions(space, json.loads(p))]
    pts = sorted((sum(OP_ACC[o] for o in space.complete(k).ops) for k in kids),
                 reverse=True)
    got = sorted((sum(OP_ACC[o] for o in space.decode(t.params).ops) for t in stage[3]),
                 reverse=True)
    assert got == pts[:2]


def test_pnas_finds_a_better_cell_than_random_within_the_hard_target(fake):
    b, spec, ground = _pnas(fake, 40)
    acc = b.accuracy["cifar10-test"]
    chosen, visited, counters = _trial_seed(spec, ground, b, 0, lambda *_: None)
    assert counters["queries"] == len(visited) == planned_queries(ground.space, 18) <= 40
    spec_r = BenchSpec(method="random", device="hw-nas-bench:edgegpu",
                       benchmark_dir=str(fake), queries=40)
    rnd = [acc[_trial_seed(spec_r, ground, b, s, lambda *_: None)[0]] for s in range(3)]
    assert acc[chosen] > max(rnd)
    lat = b.hardware("cifar10")["edgegpu_latency"]
    target = float(lat.quantile(0.3))
    spec_t = BenchSpec(method="pnas", device="hw-nas-bench:edgegpu",
                       benchmark_dir=str(fake), queries=40, target=target)
    chosen, visited, _ = _trial_seed(spec_t, ground_truth(spec_t, b), b, 0,
                                     lambda *_: None)
    assert lat[visited].max() <= target and lat[chosen] <= target


def test_the_predictor_ranks_a_known_order_and_reports_its_spread(fake, space, tmp_path):
    b = NB201Bench(fake)
    archs = space.all_archs()
    from nasbench.spaces.nb201 import EDGES, live_paths

    def points(a):             # the ops on live edges only: what the cell computes
        on = {e for p in live_paths(a) for e in p}
        return 30.0 + sum(OP_ACC[o] for o, e in zip(a.ops, EDGES, strict=True) if e in on)

    truth = [points(a) for a in archs]                    # a known, noiseless order
    rng = np.random.default_rng(0)
    idx = rng.choice(len(archs), 300, replace=False)
    model = AccuracyPredictor(space, "ensemble", members=3, seed=0)
    model.fit([archs[i] for i in idx[:150]], [truth[i] for i in idx[:150]])
    mean, std = model.predict([archs[i] for i in idx[150:]])
    s = rank_scores(mean, [truth[i] for i in idx[150:]])
    assert s["kendall_tau"] > 0.85 and s["spearman"] > 0.95
    assert np.all(std >= 0) and np.all(np.isfinite(std)) and std.mean() > 0
    assert abs(np.mean(mean) - np.mean([truth[i] for i in idx[150:]])) < 3   # units: %
    model.save(tmp_path / "p.pkl")
    again = AccuracyPredictor.load(tmp_path / "p.pkl")
    assert np.allclose(again.predict([archs[0]])[0], model.predict([archs[0]])[0])
    assert len(again.trained_on) == 150
    rows = rank_study(space, archs, b.val_accuracy("cifar10").reindex(
        [b.index(a) for a in archs]).to_numpy(), sizes=(20, 100), repeats=2, kind="forest")
    assert [r["n_train"] for r in rows] == [20, 100]
    assert rows[1]["kendall_tau"] > rows[0]["kendall_tau"] > 0.3    # more data: better
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x04junk")
    with pytest.raises(UserError, match="damaged"):
        AccuracyPredictor.load(tmp_path / "bad.pkl")
    with pytest.raises(UserError, match="at least 2"):
        AccuracyPredictor(space).fit([archs[0]], [50.0])
    with pytest.raises(UserError, match="--kind"):
        AccuracyPredictor(space, "svm")


def test_pnas_interrupted_and_resumed_evaluates_what_an_uninterrupted_run_does(
        fake, tmp_path, monkeypatch):
    from nasbench.run.runner import run_search
    from nasbench.searchers.pnas import PNASConfig
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = PNASConfig.from_preset("quick", "pnas", beam=4, trials_per_epoch=5,
                                 predictor_kind="forest", benchmark_dir=str(fake),
                                 device="hw-nas-bench:edgegpu", dataset="synthetic",
                                 out=str(tmp_path / "runs"))
    full = run_search(cfg, quiet=True)
    assert len(full.visited) == planned_queries(NB201Space(NB201DeployConfig()), 4) == 12
    cut = run_search(cfg.replace(out=str(tmp_path / "cut")), quiet=True,
                     _interrupt_after_steps=7)
    assert cut.status == "interrupted"
    import torch
    before = torch.load(Path(cut.run_dir) / "checkpoint.pt", weights_only=False)["wall"]
    done = run_search(resume=cut.run_dir, quiet=True)
    assert done.status == "complete"
    assert before > 0 and done.durations_s["total"] > before   # every process counted
    assert [v["arch"] for v in done.visited] == [v["arch"] for v in full.visited]
    assert done.genotype == full.genotype
    assert math.isfinite(json.loads((Path(done.run_dir) / "result.json").read_text())[
        "visited"][-1]["accuracy"])


@pytest.mark.parametrize("args, msg", [
    (["--beam", "0"], "--beam must be positive"),
    (["--predictor-kind", "svm"], "--predictor-kind must be one of"),
])
def test_bad_pnas_options_are_one_line_and_exit_2(fake, tmp_path, capsys, args, msg):
    from nasbench.cli import main
    capsys.readouterr()
    rc = main(["search", "--method", "pnas", "--space", "nb201", "--benchmark-dir",
               str(fake), "--device", "hw-nas-bench:edgegpu", "--out",
               str(tmp_path / "runs"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and msg in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    assert main(["search", "--method", "random", "--beam", "4", "--out",
                 str(tmp_path / "runs")]) == 2
    assert "apply to --method pnas only" in capsys.readouterr().err
    # a space without blocks is refused before any LUT is profiled
    assert main(["search", "--method", "pnas", "--space", "proxyless", "--evaluate",
                 "train", "--train-epochs", "1", "--out", str(tmp_path / "runs")]) == 2
    assert "no block structure" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_predictor_cli_fits_and_scores_on_held_apart_cells(fake, tmp_path, capsys):
    from nasbench.cli import main
    model = tmp_path / "m.pkl"
    assert main(["predictor", "fit", "--out", str(model), "--benchmark-dir", str(fake),
                 "--sample", "80", "--kind", "forest"]) == 0
    capsys.readouterr()
    assert main(["predictor", "eval", str(model), "--benchmark-dir", str(fake),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 15625 - 80 and out["kendall_tau"] > 0.5
    assert main(["predictor", "eval", str(model)]) == 2
    assert "one of the two" in capsys.readouterr().err
