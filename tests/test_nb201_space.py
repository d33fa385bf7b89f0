"""The NAS-Bench-201 space: its architecture strings, its network (parameter counts of
the reference implementation), and the protocol a space answers."""

import csv
import random
from pathlib import Path

import pytest
import torch

from nasbench.predict.predictor import lut_cost
from nasbench.predict.table import CostTable
from nasbench.spaces import get_space
from nasbench.spaces.nb201 import NB201Arch, NB201DeployConfig
from profilers.lut import LUT, full_key
from tests.conftest import make_entry

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
KNOWN = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
         "nor_conv_3x3~1|nor_conv_1x1~2|")
#: parameter counts of NAS-Bench-201's own TinyNetwork (C=16, N=5, 10 classes), measured
#: with the reference implementation (D-X-Y/AutoDL-Projects, xautodl.models.cell_infers)
#: on 2026-12-03; NAS-Bench-201 lists the same extremes, 0.073306 / 1.531546 MB
REFERENCE_PARAMS = {("none",) * 6: 73_306, ("skip_connect",) * 6: 73_306,
                    ("avg_pool_3x3",) * 6: 73_306, ("nor_conv_1x1",) * 6: 241_306,
                    ("nor_conv_3x3",) * 6: 1_531_546}


def space(**kw):
    return get_space("nb201")(NB201DeployConfig(**kw))


def params(net):
    return sum(p.numel() for p in net.parameters())


def test_string_round_trip_and_bad_strings():
    a = NB201Arch.from_str(KNOWN)
    assert a.to_str() == KNOWN
    assert a.ops == ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect",
                     "nor_conv_3x3", "nor_conv_1x1")
    for bad in ("", "|nor_conv_3x3~0|", KNOWN.replace("~2", "~3"),
                KNOWN.replace("nor_conv_1x1", "sep_conv_3x3"), KNOWN.replace("|+|", "+", 1)):
        with pytest.raises(ValueError):
            NB201Arch.from_str(bad)


@pytest.mark.skipif(not (SHARED / "nb201-12epoch-accuracy.csv").is_file(),
                    reason="../shared/data/nb201 absent")
def test_every_benchmark_string_is_a_cell_of_the_space():
    with open(SHARED / "nb201-12epoch-accuracy.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15_625
    archs = {NB201Arch.from_str(r["arch"]) for r in rows}
    assert archs == set(space().all_archs())
    assert all(NB201Arch.from_str(r["arch"]).to_str() == r["arch"] for r in rows)


@pytest.mark.parametrize("ops,count", sorted(REFERENCE_PARAMS.items()))
def test_parameter_counts_equal_the_reference(ops, count):
    assert params(space().build(NB201Arch(ops))) == count


def test_parameter_count_is_additive_over_edges():
    """Every edge op adds its own parameters in all 15 cells, so a cell's count is the
    skeleton's plus its convolutions': checked against the extremes on a sample."""
    sp, rng = space(), random.Random(0)
    skeleton = REFERENCE_PARAMS[("none",) * 6]
    per_edge = {op: (REFERENCE_PARAMS[(op,) * 6] - skeleton) / 6
                for op in ("nor_conv_1x1", "nor_conv_3x3")}
    for _ in range(20):
        a = sp.sample(rng)
        want = skeleton + sum(per_edge.get(op, 0) for op in a.ops)
        assert params(sp.build(a)) == want


def test_network_runs_at_cifar_and_imagenet16_sizes():
    for size, classes in ((32, 10), (16, 120)):
        net = space(input_size=size, num_classes=classes).build(NB201Arch.from_str(KNOWN))
        assert net(torch.zeros(2, 3, size, size)).shape == (2, classes)


def test_slots_instances_and_table():
    sp = space(input_size=16)
    assert [s.key for s in sp.slots()] == ["0->1", "0->2", "1->2", "0->3", "1->3", "2->3"]
    assert len(sp.slot_instances(0, "nor_conv_3x3")) == 15
    insts = sp.enumerate_instances()
    # 5 ops x 3 stage shapes, stem, 2 residual blocks, 3 node sums, BN-ReLU, classifier
    assert len(insts) == 15 + 1 + 2 + 3 + 2
    rng = random.Random(1)
    lut = LUT({"deploy": sp.describe(), "batches": [1]},
              {full_key(i.key, 1): make_entry(i.key, 1, rng.uniform(0.01, 1.0))
               for i in insts})
    table = CostTable.from_lut(sp, lut, ["latency"])
    for a in [sp.sample(rng) for _ in range(10)]:
        assert table.cost(a)["latency"] == pytest.approx(lut_cost(sp, lut, a), rel=1e-12)
    assert sp.size() == 15_625


def test_cli_profile_nb201_and_validate(tmp_path, capsys):
    """`profile --space nb201` measures every instance of a (tiny) NAS-Bench-201 network
    on this CPU, and `lut validate --space nb201` samples cells, predicts and measures
    them; bad options are one line and exit 2."""
    import json

    from nasbench.cli import main
    out = tmp_path / "nb.json"
    assert main(["profile", "--space", "nb201", "--channels", "4", "--input", "8",
                 "--out", str(out), "--rounds", "1", "--time-cap", "0.02",
                 "--min-repeats", "3", "--quiet"]) == 0
    lut = LUT.load(out)
    sp = space(channels=4, input_size=8)
    assert lut.provenance["deploy"] == sp.describe()
    assert set(lut.entries) == {full_key(i.key, 1) for i in sp.enumerate_instances()}
    res = tmp_path / "v.json"
    assert main(["lut", "validate", "--lut", str(out), "--space", "nb201", "--samples",
                 "4", "--rounds", "1", "--min-repeats", "3", "--out", str(res),
                 "--quiet"]) == 0
    v = json.loads(res.read_text())
    assert len(v["points"]) == 4
    assert all(NB201Arch.from_str(p["genotype"]["arch"]) for p in v["points"])
    capsys.readouterr()
    assert main(["profile", "--space", "nb201", "--layers", "8"]) == 2
    assert "NAS-Bench-201 has 3 stages" in capsys.readouterr().err
    assert main(["lut", "validate", "--lut", str(out), "--space", "darts"]) == 2
