"""Hardware-aware one-shot search on NAS-Bench-201 without the collapse: valid
derivations, the latency-target forms, the cost of what the derivation keeps, warm-up,
beta-DARTS and DARTS-PT, and the bench's scoring of one-shot methods."""

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nasbench.cli import main
from nasbench.oneshot.architect import Architect
from nasbench.oneshot.cost import CostModel, CostObjective, beta_regulariser
from nasbench.oneshot.perturb import perturbation_scores
from nasbench.predict.table import CostTable
from nasbench.spaces.nb201 import NB201_OPS, NB201Arch, NB201DeployConfig, NB201Space
from nasbench.spaces.nb201_cells import best_cell, enumeration

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import cost_ms, write_fake_nb201  # noqa: E402

SPACE = NB201Space(NB201DeployConfig())
NONE = NB201_OPS.index("none")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


@pytest.fixture(scope="module")
def table(fake):
    """The cost table of the LUT fitted to the fake edgegpu costs (exact: additive)."""
    from nasbench.benchmarks import NB201Bench
    from nasbench.benchmarks.hwnas import fitted_lut
    return CostTable.from_lut(SPACE, fitted_lut(NB201Bench(fake), "edgegpu"), ["latency"])


def brute_best(scores, cost=None, budget=None):
    """The connected cell of the largest summed score (within the budget), by loops."""
    best = None
    for ops in itertools.product(range(5), repeat=6):
        a = NB201Arch(tuple(NB201_OPS[o] for o in ops))
        if not a.connected() or (budget is not None and cost(a) > budget):
            continue
        s = sum(float(scores[e, o]) for e, o in enumerate(ops))
        if best is None or s > best[0]:
            best = (s, a)
    return None if best is None else best[1]


# ---- the collapse, reproduced and gone ----------------------------------------------------


def test_the_cost_term_alone_drives_every_edge_to_none_yet_the_derived_cell_is_connected(
        table):
    """The collapse of the issue: the mixture's expected cost falls fastest through
    ``none`` (it costs 0), so the cost term alone (the old hinge on the soft mixture)
    makes ``none`` the argmax of all six edges, the all-``none`` cell the old argmax
    derived. The derived cell is now a network whose output depends on its input."""
    torch.manual_seed(0)
    net = SPACE.supernet(4, 1, num_classes=10, input_size=8)
    cm = CostModel(table, ["latency"])
    opt = torch.optim.SGD(net.arch_parameters(), lr=50.0)
    for _ in range(20):
        pen = torch.relu(cm.expected_of_model(net)["latency"] / 0.6 - 1.0)
        opt.zero_grad()
        pen.backward()
        opt.step()
    assert (net.alphas.argmax(-1) == NONE).all()           # the mixture collapsed
    derived = net.genotype()
    assert derived.connected() and derived != NB201Arch(("none",) * 6)
    logp = torch.log_softmax(net.alphas.detach().double(), -1)
    assert derived == brute_best(logp)                     # the most likely valid cell


def test_best_cell_is_exact_against_brute_force_with_and_without_a_budget():
    gen = torch.Generator().manual_seed(3)
    archs, cols, ok = enumeration()
    assert len(archs) == 15_625 and int(ok.sum()) == 15_284
    cost = torch.tensor([cost_ms(a) for a in archs], dtype=torch.float64)
    for _ in range(3):
        scores = torch.randn(6, 5, generator=gen, dtype=torch.float64)
        scores[:, NONE] += 2.0                  # none preferred: the argmax is invalid
        assert best_cell(scores) == brute_best(scores)
        got = best_cell(scores, cost, 0.9)
        assert got == brute_best(scores, cost_ms, 0.9) and cost_ms(got) <= 0.9
    assert best_cell(torch.zeros(6, 5), cost, 0.1) is None   # nothing that cheap


def test_repair_on_nb201_is_exact_valid_and_keeps_a_cell_that_needs_none(table):
    everything = NB201Arch(("nor_conv_3x3",) * 6)
    p = torch.full((6, 5), 0.1, dtype=torch.float64)
    p[:, NB201_OPS.index("nor_conv_3x3")] = 0.6
    rep = table.repair(everything, 1.5, p)
    assert rep.met and rep.arch.connected() and cost_ms(rep.arch) <= 1.5
    assert rep.after_ms == pytest.approx(cost_ms(rep.arch))
    assert rep.arch == brute_best(torch.log(p), cost_ms, 1.5)
    assert len(rep.swaps) == sum(a != b for a, b in zip(rep.arch.ops, everything.ops,
                                                         strict=True))
    empty = NB201Arch(("none",) * 6)          # meets any target, but is no network
    rep = table.repair(empty, 1.5, torch.full((6, 5), 0.2, dtype=torch.float64))
    assert rep.arch.connected() and "not a valid network" in rep.message
    fine = NB201Arch(("nor_conv_3x3", "none", "none", "none", "none", "none"))
    assert not fine.connected()
    ok = NB201Arch(("none", "none", "none", "nor_conv_3x3", "none", "none"))
    rep = table.repair(ok, 1.5, p)            # valid and within: kept as it is
    assert rep.arch == ok and not rep.swaps
    rep = table.repair(everything, 0.1, p)    # below the cheapest valid cell
    assert not rep.met and "cannot meet" in rep.message


def test_samplers_mutations_and_trials_keep_to_valid_cells(fake):
    import random

    from nasbench.benchmarks import NB201Bench
    from nasbench.run.bench import BenchSpec, _trial_seed, ground_truth
    rng = random.Random(0)
    assert all(SPACE.sample_valid(rng).connected() for _ in range(300))
    lonely = NB201Arch(("none", "none", "none", "skip_connect", "none", "none"))
    assert all(SPACE.mutate(lonely, rng).connected() for _ in range(200))
    b = NB201Bench(fake)
    spec = BenchSpec(method="random", device="hw-nas-bench:edgegpu",
                     benchmark_dir=str(fake), queries=200, seeds=1)
    _, visited, _ = _trial_seed(spec, ground_truth(spec, b), b, 0, lambda *_: None)
    assert len(visited) == 200 and all(b.arch(i).connected() for i in visited)


# ---- the target forms and the cost of the derived cell ------------------------------------


def test_target_forms_penalise_as_documented(table):
    cm = CostModel(table, ["latency"])
    under, over = torch.tensor(0.5, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
    t = 1.0
    hinge = CostObjective(cm, 2.0, latency_target_ms=t, form="hinge")
    absolute = CostObjective(cm, 2.0, latency_target_ms=t, form="absolute")
    mult = CostObjective(cm, 0.5, latency_target_ms=t, form="multiplicative")
    assert float(hinge.penalty({"latency": under})) == 0.0          # no undershoot cost
    assert float(hinge.penalty({"latency": over})) == pytest.approx(2.0)
    assert float(absolute.penalty({"latency": under})) == pytest.approx(1.0)  # TuNAS
    assert float(absolute.penalty({"latency": over})) == pytest.approx(2.0)
    # CE x (E/T)^beta = CE + CE x ((E/T)^beta - 1); the factor scales CE's gradient
    pen, factor = mult.terms({"latency": over}, ce=1.5)
    assert factor == pytest.approx(2.0 ** 0.5)
    assert 1.5 + float(pen) == pytest.approx(1.5 * 2.0 ** 0.5)
    with pytest.raises(ValueError, match="target form"):
        CostObjective(cm, 1.0, latency_target_ms=t, form="cubic")


def test_the_target_is_judged_on_the_derived_cell_with_the_mixtures_gradient(table):
    torch.manual_seed(1)
    net = SPACE.supernet(4, 1, num_classes=10, input_size=8)
    cm = CostModel(table, ["latency"])
    obj = CostObjective(cm, 1.0, latency_target_ms=1.0, form="absolute")
    costs, info = obj.costs(net)
    derived = cost_ms(net.genotype())
    assert float(costs["latency"].detach()) == pytest.approx(derived)
    assert info["derived_latency"] == pytest.approx(derived)
    assert info["expected_latency"] != pytest.approx(derived)
    soft = cm.expected_of_model(net)["latency"]
    g_st = torch.autograd.grad(costs["latency"], net.alphas)[0]
    g_soft = torch.autograd.grad(soft, net.alphas)[0]
    assert torch.allclose(g_st, g_soft)
    # undershooting the target: the absolute form pushes towards dearer ops
    with torch.no_grad():
        net.alphas.zero_()
        net.alphas[:, NB201_OPS.index("skip_connect")] = 3.0
    pen, _ = obj(net)
    g = torch.autograd.grad(pen, net.alphas)[0]
    assert (g[:, NB201_OPS.index("nor_conv_3x3")] < 0).all()     # raise the conv's alpha


def test_architect_scales_the_cross_entropy_gradient_by_the_multiplicative_factor():
    torch.manual_seed(2)
    net = SPACE.supernet(4, 1, num_classes=3, input_size=8)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    seen = {}

    def factor_two(model, ce):
        seen["ce"] = ce
        return torch.zeros((), requires_grad=False), {"ce_factor": 2.0}

    plain = Architect(net, lr=0.0, penalty=None)
    g1, loss = plain.first_order_grads(x, y)
    scaled = Architect(net, lr=1.0, penalty=factor_two)
    before = net.alphas.detach().clone()
    scaled.optimizer = torch.optim.SGD(net.arch_parameters(), lr=1.0)
    scaled.step(x, y, x, y, 0.01)
    assert seen["ce"] == pytest.approx(loss)
    assert torch.allclose(before - net.alphas.detach(), 2.0 * g1[0], atol=1e-6)


# ---- remedies -----------------------------------------------------------------------------


def test_beta_regulariser_gradient_is_the_mean_softmax():
    torch.manual_seed(0)
    net = SPACE.supernet(4, 1, num_classes=10, input_size=8)
    with torch.no_grad():
        net.alphas.normal_()
    g = torch.autograd.grad(beta_regulariser(net), net.alphas)[0]
    assert torch.allclose(g, torch.softmax(net.alphas.detach(), -1) / 6, atol=1e-6)


def test_perturbation_scores_find_the_op_the_network_needs_and_leave_it_as_it_was():
    """A supernet where one edge's conv carries the signal: removing it must hurt most."""
    torch.manual_seed(0)
    net = SPACE.supernet(4, 1, num_classes=2, input_size=8)
    # an easy task the mixture solves: class = sign of the mean of the first channel
    x = torch.randn(64, 3, 8, 8)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    opt = torch.optim.SGD(net.weights(), 0.1, momentum=0.9)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    saved = [p.detach().clone() for p in net.parameters()]
    scores = perturbation_scores(net, [(x, y)])
    assert scores.shape == (6, 5) and torch.isfinite(scores).all()
    assert all(torch.equal(a, b.detach()) for a, b in zip(saved, net.parameters(),
                                                          strict=True))
    assert float(scores.max()) > 0                          # some op matters
    assert net.derive(scores).connected()


# ---- the searcher through the runner, and its bad input -----------------------------------


def _cfg(fake, tmp_path, **kw):
    from nasbench.searchers.darts_config import DARTSConfig
    base = dict(space="nb201", benchmark_dir=str(fake), device="hw-nas-bench:edgegpu",
                dataset="synthetic", train_input_size=16, out=str(tmp_path / "runs"),
                epochs=2, warmup_epochs=1, steps_per_epoch=2, batch_size=16, channels=4,
                layers=1, train_epochs=0, latency_target_ms=1.0)
    return DARTSConfig.from_preset("quick", "darts", **{**base, **kw})


@pytest.mark.parametrize("extra", [dict(target_form="absolute"),
                                   dict(target_form="multiplicative", anti_collapse="beta"),
                                   dict(target_form="hinge", anti_collapse="pt",
                                        pt_batches=1)])
def test_darts_on_nb201_warms_up_then_derives_a_valid_cell_within_the_target(
        fake, tmp_path, monkeypatch, extra):
    from nasbench.run.runner import run_search
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    r = run_search(_cfg(fake, tmp_path, **extra), quiet=True)
    assert r.status == "complete" and r.genotype.connected()
    assert r.target["met"] and cost_ms(r.genotype) <= 1.0
    hist = json.loads((Path(r.run_dir) / "history.json").read_text())
    assert [h["phase"] for h in hist] == ["warmup", "search", "search"]
    assert [h["arch_steps"] for h in hist] == [0, 2, 2]       # warm-up: weights only
    assert all(h["derived_latency"] is not None for h in hist)
    if extra.get("anti_collapse") == "beta":
        assert [h["beta_weight"] for h in hist] == [0.0, 0.5, 1.0]     # ramped
    if extra.get("anti_collapse") == "pt":
        res = json.loads((Path(r.run_dir) / "result.json").read_text())
        assert len(res["target"]["pt_scores"]) == 6


@pytest.mark.parametrize("args,msg", [
    (["--target-form", "cubic", "--latency-target", "1ms"], "--target-form must be one of"),
    (["--target-form", "absolute"], "give --latency-target too"),
    (["--cost-weight", "-1"], "--cost-weight must be >= 0"),
    (["--cost-weight", "nan"], "--cost-weight"),
    (["--warmup-epochs", "5", "--epochs", "2"], "longer than the search"),
    (["--anti-collapse", "pt", "--space", "darts"], "--anti-collapse pt needs"),
    (["--anti-collapse", "drnas"], "--anti-collapse must be one of"),
])
def test_bad_one_shot_options_say_one_line_and_write_nothing(fake, tmp_path, capsys, args,
                                                             msg):
    out = tmp_path / "runs"
    where = [] if "--space" in args else ["--space", "nb201", "--device",
                                           "hw-nas-bench:edgegpu", "--benchmark-dir",
                                           str(fake)]
    rc = main(["search", "--method", "darts", *where, "--out", str(out), "-q", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and msg in err and len(err.splitlines()) == 1, err
    assert not out.exists()


# ---- the bench's scoring ------------------------------------------------------------------


def test_truth_leaves_out_cells_that_ignore_their_input_and_starts_hv_at_chance():
    from nasbench.benchmarks.scores import Truth, score
    # three valid cells and one invalid one at chance that would dominate the cheap end
    truth = Truth.of([0, 1, 2, 3], [90.0, 80.0, 60.0, 10.0], [5.0, 3.0, 2.0, 0.5],
                     valid=[True, True, True, False], chance=10.0)
    assert list(truth.front) == [True, True, True, False]
    assert truth.reference[0] == 10.0
    assert truth.best_under(1.0) != truth.best_under(1.0)       # NaN: no valid cell
    s = score(truth, 3, [3])                                    # an invalid answer
    assert s["hv"] == 0.0 and s["hv_gap"] == 1.0
    assert not truth.is_valid(3) and truth.is_valid(0)


def test_a_one_shot_front_is_what_the_method_ranked(fake):
    from nasbench.benchmarks import NB201Bench
    from nasbench.run.bench import BenchSpec, ground_truth, score_run
    b = NB201Bench(fake)
    spec = BenchSpec(method="darts", device="hw-nas-bench:edgegpu",
                     benchmark_dir=str(fake))
    g = ground_truth(spec, b)
    ids = [i for i in g.truth.ids if g.truth.is_valid(i)][:40]
    chosen = ids[0]
    alone = score_run(g, b, chosen, [chosen], None, [2.0], signal={})
    assert alone["front_found"] == 1 and [c["index"] for c in alone["found_front"]] == []
    # ENAS-like: the cells it scored itself, ranked by its own accuracy (inverted here)
    own = {i: -g.val[i] for i in ids}
    ranked = score_run(g, b, chosen, ids, None, [2.0], signal=own)
    table = score_run(g, b, chosen, ids, None, [2.0])
    assert {c["index"] for c in ranked["found_front"]} != \
        {c["index"] for c in table["found_front"]}
    assert ranked["valid"] and math.isfinite(ranked["hv_gap"])
    assert np.isfinite(alone["regret"])
