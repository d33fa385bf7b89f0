"""NAS-Bench-201 / HW-NAS-Bench tables from the user's files, and `nasbench arch`."""

import json
from pathlib import Path

import pytest

from nasbench.benchmarks import NB201Bench
from nasbench.cli import main
from nasbench.errors import UserError
from nasbench.spaces.nb201 import NB201Arch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
needs_data = pytest.mark.skipif(not (SHARED / "nb201-12epoch-accuracy.csv").is_file(),
                                reason="../shared/data/nb201 absent")
CELL1 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|"
         "nor_conv_3x3~1|skip_connect~2|")


@needs_data
def test_index_and_string_round_trip_for_every_cell():
    b = NB201Bench(SHARED)
    idx = list(b.accuracy.index)
    assert sorted(idx) == list(range(15_625))
    for i in idx:
        assert b.index(b.arch(i)) == i
    assert b.index(CELL1) == 1 and b.arch("1").to_str() == CELL1


@needs_data
def test_a_known_cells_values():
    """Row 1 of the shared files (12-epoch accuracy, 200-epoch validation, HW-NAS-Bench
    CIFAR-10 costs), read through the loader."""
    v = NB201Bench(SHARED).lookup(CELL1, "cifar10")
    assert (v["index"], v["val_acc"], v["test_acc"], v["val_acc_200"]) == \
        (1, 82.834, 88.22, 90.39)
    assert v["edgegpu_latency_ms"] == 6.54769 and v["fpga_energy_mj"] == 37.2075
    assert v["edgetpu_latency_ms"] == 1.43899


@needs_data
def test_not_measured_is_none_not_minus_one():
    b = NB201Bench(SHARED)
    hw = b.hardware("cifar10")
    unmeasured = hw["edgetpu_latency"].isna()
    assert unmeasured.sum() == 4_699 and (hw["edgetpu_latency"].dropna() > 0).all()
    i = int(hw.index[unmeasured][0])
    assert b.lookup(i)["edgetpu_latency_ms"] is None


def test_missing_and_malformed_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        NB201Bench(tmp_path / "nope")
    b = NB201Bench(tmp_path)
    with pytest.raises(UserError, match="not found: .*nb201-12epoch-accuracy.csv"):
        b.accuracy  # noqa: B018
    (tmp_path / "nb201-12epoch-accuracy.csv").write_text("index,arch,cifar10-test\n0,x,1\n")
    with pytest.raises(UserError, match="lacks column.*cifar10-val"):
        NB201Bench(tmp_path).accuracy  # noqa: B018
    with pytest.raises(UserError, match="unknown NAS-Bench-201 data set 'mnist'"):
        b.hardware("mnist")


@needs_data
def test_bad_cells_and_indices():
    b = NB201Bench(SHARED)
    with pytest.raises(UserError, match="index 15625"):
        b.arch(15_625)
    with pytest.raises(UserError, match="not a NAS-Bench-201 cell"):
        b.index("|nor_conv_3x3~0|")
    assert isinstance(b.arch(CELL1), NB201Arch)


@needs_data
def test_cli_arch_nb201_with_tables(capsys):
    assert main(["arch", "--space", "nb201", "1", "--benchmark-dir", str(SHARED),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"]["arch"] == CELL1 and out["benchmark"]["test_acc"] == 88.22
    assert out["params"]["torch"] == out["params"]["thop"] == out["params"]["ptflops"]
    assert out["macs"]["conv_linear"] > 0


def test_cli_arch_other_spaces_and_bad_input(capsys):
    assert main(["arch", "DARTS_V2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["space"] == "darts" and d["params"]["torch"] == 3_349_342
    assert main(["arch", "--space", "proxyless", ",".join(["mb_k3_e3"] * 12)]) == 0
    assert "block 11" in capsys.readouterr().out
    for args, msg in ((["--space", "nb201", "|foo~0|"], "not a NAS-Bench-201 cell"),
                      (["--space", "nb201", "7"], "needs the tables"),
                      (["--space", "nb201", "1", "--benchmark-dir", str(SHARED), "--dataset",
                        "mnist"], "unknown NAS-Bench-201 data set 'mnist'"),
                      (["--space", "proxyless", "mb_k3_e3"], "12 searchable blocks"),
                      (["--space", "nope", "x"], "unknown search space"),
                      (["NOT_A_GENOTYPE"], "darts architecture")):
        assert main(["arch", *args]) == 2, args
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
