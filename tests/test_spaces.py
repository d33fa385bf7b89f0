"""The SearchSpace protocol on the registered spaces: registry, slots and picks, sample /
mutate / encode / JSON with a stable id, and the predictor's table against the plain sum
over each architecture's op instances."""

import random

import pytest
import torch

from nasbench.errors import UserError
from nasbench.genotypes import DARTS_V2, PC_DARTS
from nasbench.ops import OPS, op_group
from nasbench.predict.predictor import lut_cost
from nasbench.predict.table import CostTable
from nasbench.spaces import Arch, get_space, space_names
from nasbench.spaces.darts import DeployConfig
from nasbench.spaces.proxyless import ProxylessDeployConfig
from profilers.lut import LUT, full_key
from tests.conftest import make_entry

DARTS = DeployConfig(channels=4, layers=5, input_size=8)
PROXY = ProxylessDeployConfig.from_layout("cifar", input_size=16)


def space(name):
    return get_space(name)(DARTS if name == "darts" else PROXY)


def lut_of(sp, seed=0):
    rng = random.Random(seed)
    entries = {full_key(i.key, 1): make_entry(i.key, 1, rng.uniform(0.05, 2.0))
               for i in sp.enumerate_instances()}
    return LUT({"deploy": sp.describe(), "batches": [1]}, entries)


def test_registry_lists_spaces_and_explains_unknown_ones():
    assert {"darts", "proxyless"} <= set(space_names())
    with pytest.raises(UserError, match="unknown search space 'nb999'.*darts.*proxyless"):
        get_space("nb999")


def test_ops_carry_their_family_and_serve_several_spaces():
    assert op_group("sep_conv_5x5") == "sep_conv" and op_group("dil_conv_3x3") == "dil_conv"
    assert op_group("avg_pool_3x3") == "pool" and OPS["mb_k7_e3"].group == "mbconv"
    # gap_linear is a fixed part of both spaces, defined once
    for name in ("darts", "proxyless"):
        assert "gap_linear" in {i.op for i in space(name).fixed_instances()}


@pytest.mark.parametrize("name", ["darts", "proxyless"])
def test_sample_mutate_encode_json_and_id(name):
    sp, rng = space(name), random.Random(1)
    seen = set()
    for _ in range(20):
        a = sp.sample(rng)
        values = sp.encode(a)
        assert set(values) == set(sp.choices())
        assert all(values[k] in opts for k, opts in sp.choices().items())
        b = sp.decode(values)
        assert sp.encode(b) == values and sp.arch_id(b) == sp.arch_id(a)
        h = Arch.of(a, name)
        assert Arch.from_dict(h.to_dict()).id == h.id == sp.arch_id(a)
        m = sp.mutate(a, rng)
        diff = [k for k in values if sp.encode(m)[k] != values[k]]
        assert len(diff) == 1
        seen.add(h.id)
        assert sp.with_picks(a, sp.picks(a)) == a
    assert len(seen) == 20


def test_darts_slots_are_edges_with_survival_weights():
    sp = space("darts")
    slots = sp.slots()
    assert len(slots) == 28 and slots[0].key == "normal/0/0" and slots[14].key == "reduce/0/0"
    assert [s.weight for s in slots[:5]] == [1.0, 1.0, 2 / 3, 2 / 3, 2 / 3]
    assert all("none" not in s.candidates for s in slots)
    picks = sp.picks(DARTS_V2)
    assert len(picks) == 16 and picks[0] == (0, "sep_conv_3x3")
    # a reduce pick stands for that edge in both reduction cells
    s, op = picks[8]
    assert len(sp.slot_instances(s, op)) == 2 and all(
        i.stride == 2 for i in sp.slot_instances(s, op))


def test_darts_build_runs_exactly_the_lut_instances():
    sp = space("darts")
    net = sp.build(PC_DARTS)
    modules = {type(m).__name__ for m in net.modules()}
    assert {"SepConv", "DilConv"} <= modules
    inst_ops = [i.op for i in sp.instances(PC_DARTS, node_adds=False)]
    assert inst_ops.count("sep_conv_3x3") == sum(
        (e[0] == "sep_conv_3x3") * (3 if k == "normal" else 2)
        for k in ("normal", "reduce") for e in getattr(PC_DARTS, k))
    assert net(torch.zeros(1, 3, 8, 8)).shape == (1, 10)


@pytest.mark.parametrize("name", ["darts", "proxyless"])
def test_table_cost_is_the_sum_over_instances(name):
    sp = space(name)
    lut = lut_of(sp)
    table = CostTable.from_lut(sp, lut, ["latency"])
    rng = random.Random(2)
    for _ in range(10):
        a = sp.sample(rng)
        assert table.cost(a)["latency"] == pytest.approx(lut_cost(sp, lut, a), rel=1e-12)
        # one-hot logits at the picks, weight 1 per used slot: E[cost] = cost
        logits = torch.full(table.allowed.shape, -1e9, dtype=torch.float64)
        weights = torch.zeros(len(table.weights), dtype=torch.float64)
        for s, op in sp.picks(a):
            logits[s, table.column(op)] = 0.0
            weights[s] = 1.0
        assert float(table.expected(logits, weights)["latency"]) == pytest.approx(
            table.cost(a)["latency"], rel=1e-9)


@pytest.mark.parametrize("name", ["darts", "proxyless"])
def test_shared_repair_meets_a_reachable_target(name):
    sp = space(name)
    table = CostTable.from_lut(sp, lut_of(sp, 3), ["latency"])
    a = sp.sample(random.Random(4))
    before = table.cost(a)["latency"]
    cheapest = table.fixed["latency"] + sum(
        float(table.tables["latency"][s][table.allowed[s]].min()) for s, _ in sp.picks(a))
    target = (before + cheapest) / 2
    rep = table.repair(a, target, torch.zeros(table.allowed.shape))
    assert rep.met and rep.after_ms <= target < rep.before_ms == pytest.approx(before)
    assert table.cost(rep.arch)["latency"] == pytest.approx(rep.after_ms)
    assert [s for s, _ in sp.picks(rep.arch)] == [s for s, _ in sp.picks(a)]
    assert all(s["saved"] > 0 for s in rep.swaps)
    never = table.repair(a, cheapest / 2, torch.zeros(table.allowed.shape))
    assert not never.met and never.after_ms == pytest.approx(cheapest)
    assert "cannot meet" in never.message
