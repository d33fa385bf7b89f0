"""`lut validate` and `lut calibrate` on every registered space: a tiny ProxylessNAS
deploy network with a fake end-to-end meter whose truth is known (1.3 x the LUT sum +
2 ms), the space-derived calibration features and the space checks of the CLI."""

import json
import random

import pytest
import torch

import nasbench.luts
from nasbench.cli import main
from nasbench.ops import PROXYLESS_PRIMITIVES
from nasbench.predict.calibration import (
    GROUPS,
    OP_FEATURES,
    CalibratedLUT,
    Calibration,
    feature_names,
)
from nasbench.spaces import get_space, space_names
from nasbench.spaces.darts import DeployConfig
from nasbench.spaces.proxyless import ProxylessDeployConfig, ProxylessSpace
from nasbench.validate import (
    deploy_from_lut,
    group_sums,
    load_calibration,
    run_validation,
    space_from_lut,
)
from profilers.lut import LUT, full_key
from tests.conftest import make_entry

TINY = ProxylessDeployConfig.from_layout("cifar", input_size=8, width_mult=0.25)
SCALE, OVERHEAD = 1.3, 2.0


def space_lut(deploy, seed: int = 0) -> LUT:
    """Returns a LUT of every op instance of ``deploy``'s space (random latencies) on
    this machine's CPU."""
    rng = random.Random(seed)
    space = get_space(deploy.describe()["space"])(deploy)
    entries = {full_key(i.key, 1): make_entry(i.key, 1, rng.uniform(0.05, 1.0))
               for i in space.enumerate_instances()}
    return LUT({"device": nasbench.luts.get_device("cpu").to_dict(),
                "deploy": deploy.describe(), "threads": 1, "batches": [1],
                "dtype": "float32"}, entries)


@pytest.fixture
def known_meter(monkeypatch):
    """Measures a network built by ProxylessSpace.build as 1.3 x its LUT sum + 2 ms
    (the LUT is the one ``known_meter["lut"]`` is set to); runs each forward once."""
    state: dict = {}
    build = ProxylessSpace.build

    def tagged_build(self, arch, **kw):
        net = build(self, arch, **kw)
        net._validation_truth = sum(state["lut"].value(i.key, 1)
                                    for i in self.instances(arch))
        return net

    def measure(module, input_shape, *a, **kw):
        with torch.no_grad():
            module(torch.zeros(input_shape))
        ms = OVERHEAD + SCALE * module._validation_truth
        return {"latency_ms": {"median": ms, "mean": ms, "p5": ms, "p95": ms, "cv": 0.01,
                               "repeats": 3},
                "threads": torch.get_num_threads(), "device": {"id": "cpu:test"}}

    monkeypatch.setattr(ProxylessSpace, "build", tagged_build)
    monkeypatch.setattr(nasbench.luts, "measure_network", measure)
    return state


def test_features_are_the_spaces():
    assert feature_names("darts", "op") == OP_FEATURES
    assert feature_names("darts", "group") == GROUPS
    assert feature_names("proxyless", "op") == (*PROXYLESS_PRIMITIVES, "fused_add", "fixed")
    assert feature_names("proxyless", "group") == ("mbconv", "skip", "fused_add", "fixed")
    # the DARTS names kept in their historical order are those the space derives
    darts = get_space("darts").candidate_ops
    assert set(OP_FEATURES) == {p for p in darts if p != "none"} | {"fused_add", "fixed"}
    for name in space_names():
        for kind in ("op", "group"):
            assert feature_names(name, kind)[-2:] == ("fused_add", "fixed")


def test_calibration_maps_other_ops_to_fixed():
    c = Calibration({"mbconv": 0.5, "skip": 1.0, "fused_add": 1.0, "fixed": 1.0}, 0.0, {},
                    "x", features="group", space="proxyless")
    assert c.feature_of("mb_k5_e6") == "mbconv" and c.feature_of("zero") == "skip"
    # the first block is an MBConv too, but a fixed part of every network
    for op in ("mb_k3_e1", "px_stem", "gap_linear", "sep_conv_3x3", "no_such_op",
               "fused_add"):
        assert c.feature_of(op) == "fixed"
    per_op = Calibration({"mb_k3_e3": 2.0, "fixed": 1.0}, 0.0, {}, "x", space="proxyless")
    assert per_op.feature_of("mb_k3_e3") == "mb_k3_e3"
    assert per_op.feature_of("mb_k7_e6") == "fixed"
    back = Calibration.from_dict(c.to_dict())
    assert back == c and back.to_dict()["feature_names"] == list(c.coef)


def test_proxyless_group_sums_add_up_to_the_lut_sum():
    lut = space_lut(TINY)
    space = ProxylessSpace(TINY)
    arch = space.sample(random.Random(1))
    plain = sum(lut.value(i.key, 1) for i in space.instances(arch))
    for kind in ("op", "group"):
        sums = group_sums(lut, TINY, arch, kind)
        assert tuple(sums) == feature_names("proxyless", kind)
        assert sum(sums.values()) == pytest.approx(plain)
        assert sums["fixed"] > 0 and sums["fused_add"] == 0.0
    view = CalibratedLUT(lut, Calibration({"mbconv": 0.5, "skip": 1.0, "fixed": 1.0}, 0.0,
                                          {}, "x", features="group", space="proxyless"))
    key = next(i.key for i in space.instances(arch) if i.op.startswith("mb_k")
               and i.op != "mb_k3_e1")
    assert view.value(key, 1) == pytest.approx(0.5 * lut.value(key, 1))


def test_proxyless_lut_validates_and_calibrates(tmp_path, known_meter, capsys):
    lut = space_lut(TINY)
    path = lut.save(tmp_path / "px.json")
    known_meter["lut"] = lut
    assert deploy_from_lut(lut) == TINY
    assert space_from_lut(lut).name == "proxyless"
    res = run_validation(lut, "cpu", samples=3, seed=0, rounds=2)
    assert res["space"] == "proxyless" and res["samples"] == 3
    for p in res["points"]:
        assert p["genotype"]["space"] == "proxyless"
        assert len(p["genotype"]["blocks"]) == len(ProxylessSpace(TINY).plan())
        assert p["summary"] and set(p["group_sums_ms"]) == set(feature_names("proxyless"))
        assert p["measured_ms"] == pytest.approx(
            OVERHEAD + SCALE * p["predicted_ms"])
    # the CLI: calibrate by measuring, then validate with the calibration
    assert main(["lut", "calibrate", "--lut", str(path), "--space", "proxyless",
                 "--samples", "12", "--rounds", "1", "--json"]) == 0
    calib = json.loads(capsys.readouterr().out)
    assert calib["space"] == "proxyless" and calib["features"] == "op"
    assert list(calib["coef"]) == list(feature_names("proxyless", "op"))
    assert calib["coef"]["fixed"] == 1.0
    c = load_calibration(LUT.load(path))
    assert c is not None and c.space == "proxyless"
    out = tmp_path / "v.json"
    assert main(["lut", "validate", "--lut", str(path), "--space", "proxyless",
                 "--samples", "12", "--rounds", "1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    v = json.loads(out.read_text())
    assert v["space"] == "proxyless" and "calibrated" in v
    # an exact linear truth: the calibrated predictor has it, the plain sum does not
    assert v["calibrated"]["mape_pct"] < 1.0 < v["plain"]["mape_pct"]
    # refit on that validation's networks without measuring: the truth comes back
    assert main(["lut", "calibrate", "--lut", str(path), "--space", "proxyless",
                 "--from-validation", str(out), "--features", "group", "--json"]) == 0
    calib = json.loads(capsys.readouterr().out)
    assert list(calib["coef"]) == ["mbconv", "skip", "fused_add", "fixed"]
    assert calib["coef"]["mbconv"] == pytest.approx(SCALE, rel=1e-3)
    assert calib["fit"]["leave_one_out"]["within_5pct"] == 1.0


def test_validate_space_must_be_the_luts(tmp_path, capsys):
    px = space_lut(TINY).save(tmp_path / "px.json")
    darts = space_lut(DeployConfig(channels=4, layers=3, input_size=8)).save(
        tmp_path / "darts.json")
    for args in (["lut", "validate", "--lut", str(px), "--space", "darts"],
                 ["lut", "validate", "--lut", str(px)],
                 ["lut", "calibrate", "--lut", str(darts), "--space", "proxyless"]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "--space" in err, err
    assert main(["lut", "validate", "--lut", str(px), "--space", "nas101"]) == 2
    err = capsys.readouterr().err
    assert "unknown space" in err and "proxyless" in err


def test_from_validation_of_another_space_is_refused(tmp_path, capsys):
    """A validation JSON holding DARTS genotypes against a proxyless LUT (same SHA by
    construction) is refused in one line, not a traceback."""
    lut = space_lut(TINY)
    path = lut.save(tmp_path / "px.json")
    from nasbench.genotypes import genotype_to_dict
    from nasbench.validate import sample_genotype
    pts = [{"genotype": genotype_to_dict(sample_genotype(random.Random(i))),
            "measured_ms": 1.0} for i in range(5)]
    v = tmp_path / "v.json"
    v.write_text(json.dumps({"batch": 1, "lut_sha256": lut.sha256(), "points": pts}))
    assert main(["lut", "calibrate", "--lut", str(path), "--space", "proxyless",
                 "--from-validation", str(v)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a proxyless architecture" in err
