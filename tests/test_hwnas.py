"""A LUT fitted to a HW-NAS-Bench device: exact on an additive table made by hand, the
held-apart additivity, the LUT's provenance, and the CLI."""

import csv
import json
from pathlib import Path

import pytest

from nasbench.benchmarks import NB201Bench
from nasbench.benchmarks.hwnas import additivity, fit_costs, fitted_lut, tabular_space
from nasbench.benchmarks.nb201 import DATASETS, DEVICE_METRICS
from nasbench.cli import main
from nasbench.predict.predictor import lut_cost
from nasbench.spaces.nb201 import NB201Arch, NB201Space

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
#: a made-up additive device: ms per instance of each op at each stage, and the rest
COST = {"skip_connect": 0.001, "nor_conv_1x1": 0.01, "nor_conv_3x3": 0.04,
        "avg_pool_3x3": 0.02}
FIXED = 0.7


def exact(a: NB201Arch) -> float:
    return FIXED + sum(5 * COST[op] * (s + 1) for s in range(3) for op in a.ops
                       if op != "none")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("nb201")
    archs = NB201Space.all_archs(None)  # (no deploy needed to enumerate)
    cols = [f"{dv}_{m}" for dv, ms in DEVICE_METRICS.items() for m in ms]
    with open(d / "nb201-12epoch-accuracy.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "arch"] + [f"{ds}-{s}" for ds in DATASETS
                                        for s in ("test", "val")])
        for i, a in enumerate(archs):
            w.writerow([i, a.to_str()] + [50.0] * 6)
    with open(d / "hw-nas-bench-cifar10.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "arch"] + cols)
        for i, a in enumerate(archs):
            # disconnected cells: a compiler removes the network, as raspi4's does
            lat = exact(a) if a.connected() else 0.01
            w.writerow([i, a.to_str()] + [lat if c == "edgegpu_latency" else
                                          (-1 if c == "edgetpu_latency" else 1.0)
                                          for c in cols])
    return NB201Bench(d)


def test_fit_recovers_an_additive_device(table):
    fit = fit_costs(table, "edgegpu")
    assert fit["cells"] == sum(a.connected() for a in NB201Space.all_archs(None))
    assert fit["fixed"] == pytest.approx(FIXED, abs=1e-9)
    # stages cannot be told apart: each op's mean cost per instance over the stages
    for op, v in fit["coef"].items():
        assert v == pytest.approx(COST[op] * (1 + 2 + 3) / 3, abs=1e-9)
    r = additivity(table, "edgegpu")
    assert r["within_10pct"] == 1.0 and r["spearman"] > 0.999 and r["disconnected"] > 0


def test_fitted_lut_predicts_the_table_and_says_it_is_fitted(table):
    lut = fitted_lut(table, "edgegpu")
    assert lut.provenance["measured"] is False and "least squares" in \
        lut.provenance["fitted"]["method"]
    sp = tabular_space("cifar10")
    a = NB201Arch.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|"
                           "skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    assert lut_cost(sp, lut, a) == pytest.approx(exact(a), rel=1e-9)
    assert lut_cost(sp, lut, a, "energy") == pytest.approx(1e-3 * fit_energy(table), rel=1e-6)


def fit_energy(table):
    f = fit_costs(table, "edgegpu", metric="energy")     # every cell 1.0 mJ
    return f["fixed"] + 0.0


def test_no_energy_where_the_device_has_none(table):
    lut = fitted_lut(table, "raspi4")
    e = next(iter(lut.entries.values()))
    assert e["energy_j"] is None and "no energy" in e["energy_reason"]


def test_cli_profile_tabular_device(table, tmp_path, capsys):
    out = tmp_path / "tx2.json"
    assert main(["profile", "--device", "hw-nas-bench:edgegpu", "--space", "nb201",
                 "--benchmark-dir", str(table.folder), "--out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["additivity"]["latency"]["within_10pct"] == 1.0
    assert json.loads(out.read_text())["provenance"]["device"]["id"] == "hw-nas-bench:edgegpu"
    for args, msg in ((["--device", "hw-nas-bench:tx9"], "unknown HW-NAS-Bench device"),
                      (["--device", "hw-nas-bench:fpga", "--space", "darts"], "--space nb201"),
                      (["--device", "hw-nas-bench:fpga", "--space", "nb201"], "--benchmark-dir")):
        assert main(["profile", *args]) == 2
        assert msg in capsys.readouterr().err


@pytest.mark.skipif(not (SHARED / "hw-nas-bench-cifar10.csv").is_file(),
                    reason="../shared/data/nb201 absent")
def test_real_devices_additivity_is_ordered_as_measured():
    """On HW-NAS-Bench itself (held-apart cells): the simulated accelerators are
    additive, the edge GPU least (its networks are fused and launched as a whole)."""
    b = NB201Bench(SHARED)
    fpga, gpu = additivity(b, "fpga"), additivity(b, "edgegpu")
    assert fpga["within_10pct"] > 0.95 and fpga["spearman"] > 0.99
    assert gpu["within_10pct"] < 0.7 and 0.6 < gpu["spearman"] < 0.95
