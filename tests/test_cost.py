"""The expected-cost term against a hand computation on a tiny LUT; penalty and target
forms; hard-target repair."""

import math

import pytest
import torch

from nasbench.errors import UserError
from nasbench.genotypes import Genotype
from nasbench.oneshot.cost import (
    CostModel,
    CostObjective,
    genotype_lut_cost,
    repair_to_target,
    required_op_keys,
)
from nasbench.ops import PRIMITIVES
from nasbench.searchers.darts_config import parse_latency, parse_objective
from nasbench.spaces.darts import (
    DeployConfig,
    cell_plan,
    edge_instance,
    enumerate_instances,
    network_fixed_instances,
    node_add_instance,
)
from profilers.lut import LUT, full_key
from tests.conftest import make_entry

# tiny deploy network: 3 cells (reduce, reduce, normal... by cell_plan), 2 nodes per cell
DEPLOY = DeployConfig(channels=4, layers=3, input_size=8, steps=2, multiplier=2)
OP_COST = {"none": 0.0, "max_pool_3x3": 0.3, "avg_pool_3x3": 0.4, "skip_connect": 0.1,
           "sep_conv_3x3": 2.0, "sep_conv_5x5": 3.0, "dil_conv_3x3": 1.5,
           "dil_conv_5x5": 2.5}


def inst_cost(inst):
    """Cost of an op instance: op cost x (1 + input width/8) (so shapes matter)."""
    return OP_COST.get(inst.op, 1.0) * (1 + inst.h / 8)


def tiny_lut(skip=()):
    entries = {}
    for inst in enumerate_instances(DEPLOY):
        if inst.key in skip:
            continue
        e = make_entry(inst.key, 1, inst_cost(inst))
        e["energy_j"] = 0.001 * inst_cost(inst)
        entries[full_key(inst.key, 1)] = e
    return LUT({"device": {"id": "cpu:Test"}, "deploy": DEPLOY.describe()}, entries)


def hand_expected(alphas_n, alphas_r):
    """E[latency] computed the slow way: loop over cells, edges, ops."""
    total = sum(inst_cost(i) for i in network_fixed_instances(DEPLOY))
    for cell in cell_plan(4, 3, 8, 2, 3):
        total += 2 * inst_cost(node_add_instance(cell))   # 2 nodes, eager: unfused sums
        a = alphas_r if cell.reduction else alphas_n
        e = 0
        for node in range(2):
            for j in range(node + 2):
                logits = [float(a[e, o]) for o, p in enumerate(PRIMITIVES) if p != "none"]
                z = sum(math.exp(v) for v in logits)
                ops = [p for p in PRIMITIVES if p != "none"]
                exp_edge = sum(math.exp(v) / z * inst_cost(edge_instance(cell, op, j))
                               for v, op in zip(logits, ops, strict=True))
                total += 2.0 / (node + 2) * exp_edge
                e += 1
    return total


def test_expected_cost_matches_hand_computation():
    cm = CostModel.from_lut(tiny_lut(), DEPLOY, ["latency", "energy"])
    torch.manual_seed(0)
    an, ar = torch.randn(5, 8), torch.randn(5, 8)
    exp = cm.expected(an, ar)
    assert float(exp["latency"]) == pytest.approx(hand_expected(an, ar), rel=1e-12)
    assert float(exp["energy"]) == pytest.approx(0.001 * hand_expected(an, ar), rel=1e-12)
    # `none` does not lower the cost: raising its alpha changes nothing
    an2 = an.clone()
    an2[:, 0] += 10.0
    assert float(cm.expected(an2, ar)["latency"]) == pytest.approx(float(exp["latency"]))
    # the reference is the expected cost under uniform alphas
    assert cm.reference["latency"] == pytest.approx(
        hand_expected(torch.zeros(5, 8), torch.zeros(5, 8)))


def test_expected_cost_is_differentiable_and_points_to_cheap_ops():
    cm = CostModel.from_lut(tiny_lut(), DEPLOY, ["latency"])
    an = torch.zeros(5, 8, requires_grad=True)
    ar = torch.zeros(5, 8, requires_grad=True)
    cm.expected(an, ar)["latency"].backward()
    g = an.grad[0]
    # descending the gradient favours skip_connect over sep_conv_5x5
    assert g[PRIMITIVES.index("sep_conv_5x5")] > 0 > g[PRIMITIVES.index("skip_connect")]
    assert g[PRIMITIVES.index("none")] == 0


def test_one_hot_alphas_give_the_derived_network_cost_with_pcdarts_betas():
    cm = CostModel.from_lut(tiny_lut(), DEPLOY, ["latency"])
    g = Genotype(normal=[("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0),
                         ("dil_conv_3x3", 2)], normal_concat=[2, 3],
                 reduce=[("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("skip_connect", 2),
                         ("max_pool_3x3", 1)], reduce_concat=[2, 3])
    an, ar = torch.full((5, 8), -1e4), torch.full((5, 8), -1e4)
    bn, br = torch.full((5,), -1e4), torch.full((5,), -1e4)
    for a, b, edges in ((an, bn, g.normal), (ar, br, g.reduce)):
        for k, (op, j) in enumerate(edges):
            e = (0 if k < 2 else 2) + j
            a[e, PRIMITIVES.index(op)] = 0.0
            b[e] = 0.0
    exp = cm.expected(an, ar, bn, br)["latency"]
    truth = genotype_lut_cost(tiny_lut(), DEPLOY, g)
    assert float(exp) == pytest.approx(truth, rel=1e-9)
    assert cm.genotype_cost(g)["latency"] == pytest.approx(truth, rel=1e-12)


def test_penalty_and_target_forms():
    cm = CostModel.from_lut(tiny_lut(), DEPLOY, ["latency"])
    ref = cm.reference["latency"]
    pen = CostObjective(cm, 0.5)
    assert float(pen.penalty({"latency": torch.tensor(2 * ref)})) == pytest.approx(1.0)
    tgt = CostObjective(cm, 2.0, latency_target_ms=10.0)
    assert float(tgt.penalty({"latency": torch.tensor(8.0)})) == 0.0
    assert float(tgt.penalty({"latency": torch.tensor(12.0)})) == pytest.approx(0.4)


def test_missing_entries_are_named():
    key = edge_instance(cell_plan(4, 3, 8, 2, 3)[1], "sep_conv_5x5", 0).key
    with pytest.raises(KeyError) as ei:
        CostModel.from_lut(tiny_lut(skip={key}), DEPLOY, ["latency"])
    assert ei.value.args[0] == "latency" and ei.value.args[1] == [full_key(key, 1)]
    assert key in required_op_keys(DEPLOY)


def _heavy_genotype():
    return Genotype(normal=[("sep_conv_5x5", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 0),
                            ("dil_conv_5x5", 2)], normal_concat=[2, 3],
                    reduce=[("sep_conv_5x5", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 2),
                            ("sep_conv_5x5", 1)], reduce_concat=[2, 3])


def test_hard_target_repair_meets_a_reachable_target():
    cm = CostModel.from_lut(tiny_lut(), DEPLOY, ["latency"])
    g = _heavy_genotype()
    before = cm.genotype_cost(g)["latency"]
    w = torch.softmax(torch.randn(5, 8, generator=torch.Generator().manual_seed(0)), -1)
    rep = repair_to_target(g, cm, 0.6 * before, w, w)
    assert rep.met and rep.swaps and rep.after_ms <= 0.6 * before
    assert cm.genotype_cost(rep.genotype)["latency"] == pytest.approx(rep.after_ms)
    # inputs are kept; only ops change, each swap to a cheaper op
    assert [j for _, j in rep.genotype.normal] == [j for _, j in g.normal]
    assert all(s["saved"] > 0 for s in rep.swaps)
    # the first swap hits the most expensive edge
    costs = cm.edge_costs(g, "latency")
    worst = max(costs, key=lambda c: c[2])
    assert (rep.swaps[0]["cell"], rep.swaps[0]["edge"]) == worst[:2]


def test_hard_target_reports_an_impossible_target():
    cm = CostModel.from_lut(tiny_lut(), DEPLOY, ["latency"])
    w = torch.full((5, 8), 1 / 8)
    rep = repair_to_target(_heavy_genotype(), cm, 0.5 * cm.fixed["latency"], w, w)
    assert not rep.met and "could not meet" in rep.message
    assert rep.after_ms == pytest.approx(rep.lower_bound_ms)


def test_target_already_met_changes_nothing():
    cm = CostModel.from_lut(tiny_lut(), DEPLOY, ["latency"])
    g = _heavy_genotype()
    w = torch.full((5, 8), 1 / 8)
    rep = repair_to_target(g, cm, 1e9, w, w)
    assert rep.met and not rep.swaps and rep.genotype == g


def test_objective_and_latency_parsing():
    assert parse_objective("acc") == []
    assert parse_objective("acc+latency+energy") == ["latency", "energy"]
    with pytest.raises(UserError):
        parse_objective("latency")
    with pytest.raises(UserError):
        parse_objective("acc+speed")
    assert parse_latency("4ms") == 4.0 and parse_latency("4") == 4.0
    assert parse_latency("0.004s") == pytest.approx(4.0)
    assert parse_latency("500us") == pytest.approx(0.5)
    for bad in ("fast", "-1ms", "0"):
        with pytest.raises(UserError):
            parse_latency(bad)


def test_search_cost_uses_the_fitted_calibration(tmp_path):
    """When `lut calibrate` fitted a predictor for this LUT file and batch, the
    expected cost, the derived network's prediction and the hard target use it."""
    from nasbench.api import build_cost_model, predict_costs
    from nasbench.genotypes import DARTS_V2
    from nasbench.searchers.darts_config import DARTSConfig
    from nasbench.validate import Calibration, calibration_path, write_json
    from profilers.lut import LUT
    from tests.test_runner import TINY, write_lut

    cfg = DARTSConfig.from_preset("quick", **TINY)
    deploy = cfg.deploy()
    path = write_lut(tmp_path / "lut.json", cfg)
    lut = LUT.load(path)
    plain_cm = build_cost_model(lut, path, deploy, ["latency"], "cpu")
    plain = plain_cm.genotype_cost(DARTS_V2)["latency"]
    coef = {op: 0.5 for op in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
                               "dil_conv_5x5", "max_pool_3x3", "avg_pool_3x3",
                               "skip_connect")} | {"fixed": 1.0}
    write_json(calibration_path(path, 1),
               Calibration(coef, 2.0, {}, lut.sha256(), 1, "op").to_dict())
    cm = build_cost_model(lut, path, deploy, ["latency"], "cpu")
    fixed = plain_cm.fixed["latency"]
    # fixed parts keep scale 1, every edge op is halved, the intercept is added once
    expect = fixed + 2.0 + 0.5 * (plain - fixed)
    assert cm.genotype_cost(DARTS_V2)["latency"] == pytest.approx(expect)
    pred = predict_costs(lut, deploy, DARTS_V2)
    assert pred["latency_ms"] == pytest.approx(expect)
    assert pred["latency_plain_ms"] == pytest.approx(plain)
    assert "calibrated" in pred["source"]
    # a calibration for another batch is not used
    calibration_path(path, 1).rename(calibration_path(path, 32))
    assert build_cost_model(lut, path, deploy, ["latency"], "cpu").genotype_cost(
        DARTS_V2)["latency"] == pytest.approx(plain)


def test_calibrated_fused_sums_in_the_search_cost():
    """On a fusing backend, a calibration's fused_add scale applies to the node sums
    fed by a conv ending in BN: exactly for a derived network (agreeing with the
    validate-side genotype cost), and as a probability under the relaxation."""
    from nasbench.genotypes import DARTS_V2
    from nasbench.spaces.darts import fused_node_adds
    from nasbench.validate import CalibratedLUT, Calibration
    lut = tiny_lut()
    lut.provenance["backend_details"] = {"fuses": ["add_epilogue"]}
    g = Genotype(DARTS_V2.normal[:4], [2, 3], DARTS_V2.reduce[:4], [2, 3])
    ones = {f: 1.0 for f in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
                             "max_pool_3x3", "avg_pool_3x3", "skip_connect", "fixed")}

    def view(fused):
        return CalibratedLUT(lut, Calibration(ones | {"fused_add": fused}, 0.0, {}, "x"))

    free, full = view(0.0), view(1.0)
    cm_free = CostModel.from_lut(free, DEPLOY, ["latency"])
    cm_full = CostModel.from_lut(full, DEPLOY, ["latency"])
    fused = sum(inst_cost(i) for i in fused_node_adds(DEPLOY, g))
    assert fused > 0
    for cm, lv in ((cm_free, free), (cm_full, full)):
        assert cm.genotype_cost(g)["latency"] == pytest.approx(
            genotype_lut_cost(lv, DEPLOY, g))
    assert cm_full.genotype_cost(g)["latency"] - cm_free.genotype_cost(g)["latency"] == \
        pytest.approx(fused)
    # uniform alphas: 4 of 7 ops end in conv + BN, P(node fused) = 1 - (3/7)^2
    z = torch.zeros(5, len(PRIMITIVES), requires_grad=True)
    all_sums = sum(2 * inst_cost(node_add_instance(c)) for c in cell_plan(4, 3, 8, 2, 3))
    diff = cm_full.expected(z, z)["latency"] - cm_free.expected(z, z)["latency"]
    assert float(diff.detach()) == pytest.approx(all_sums * (1 - (3 / 7) ** 2))
    # free fused sums pull the relaxation toward ops that fuse, and away from pools
    (cm_free.expected(z, z)["latency"] - cm_full.expected(z, z)["latency"]).backward()
    assert (z.grad[:, PRIMITIVES.index("sep_conv_3x3")] < 0).all()
    assert (z.grad[:, PRIMITIVES.index("max_pool_3x3")] > 0).all()
    # without a calibration the node sums stay a constant at standalone cost
    plain = CostModel.from_lut(lut, DEPLOY, ["latency"])
    assert not plain.fused_extra
    assert plain.genotype_cost(g)["latency"] == pytest.approx(genotype_lut_cost(lut, DEPLOY, g))
