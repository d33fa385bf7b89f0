"""LUT validation metrics, the calibrated predictor and `lut validate` end to end."""

import json
import math
import random

import numpy as np
import pytest

from nasbench.cli import main
from nasbench.genotypes import validate_genotype
from nasbench.validate import (
    GROUPS,
    OP_FEATURES,
    CalibratedLUT,
    deploy_from_lut,
    error_metrics,
    fit_calibration,
    load_calibration,
    op_group,
    sample_genotype,
)


def test_error_metrics_hand_computed():
    m = error_metrics([1.04, 2.18, 2.72, 5.0], [1.0, 2.0, 3.0, 4.0], worst=2)
    # relative errors: +4%, +9%, -9.33%, +25%
    assert m["within_5pct"] == 0.25
    assert m["within_10pct"] == pytest.approx(0.75)
    assert m["mape_pct"] == pytest.approx((4 + 9 + 28 / 3 + 25) / 4)
    assert m["rmse_ms"] == pytest.approx(math.sqrt((0.04**2 + 0.18**2 + 0.28**2 + 1) / 4))
    assert m["spearman"] == pytest.approx(1.0)
    assert m["kendall"] == pytest.approx(1.0)
    assert m["worst"][0] == 3
    swapped = error_metrics([2.0, 1.0, 3.0], [1.0, 2.0, 3.0])
    assert swapped["spearman"] == pytest.approx(0.5)
    assert swapped["kendall"] == pytest.approx(1 / 3)


def test_sampled_genotypes_are_valid_and_seeded():
    a = [sample_genotype(random.Random(3)) for _ in range(2)]
    assert a[0] == a[1]
    for _ in range(50):
        g = sample_genotype(random.Random(_))
        validate_genotype(g)
        assert all(op != "none" for op, _ in g.normal + g.reduce)
        for cell in (g.normal, g.reduce):
            for node in range(4):
                assert cell[2 * node][1] != cell[2 * node + 1][1]


def test_calibration_recovers_known_overhead():
    """Synthetic truth: convs run 0.8x their LUT time in a network, plus 3 ms overhead;
    the plain sum is biased, the calibrated predictor is not."""
    rng = random.Random(0)
    true = {"sep_conv": 0.8, "dil_conv": 0.8, "pool": 1.0, "skip": 1.0, "fused_add": 0.5,
            "fixed": 1.0}
    # the fixed parts are the same in every network of a deploy configuration
    sums = [{g: 7.0 if g == "fixed" else rng.uniform(1, 10) for g in GROUPS}
            for _ in range(20)]
    meas = [3.0 + sum(true[g] * s[g] for g in GROUPS) for s in sums]
    c = fit_calibration(sums[:12], meas[:12], "sha", features="group")
    # exact data: leave-one-out picks the weakest shrinkage, which barely biases
    assert c.intercept == pytest.approx(3.0, abs=1e-3)
    assert c.coef["sep_conv"] == pytest.approx(0.8, abs=1e-3) and c.coef["fixed"] == 1.0
    plain = error_metrics([sum(s.values()) for s in sums[12:]], meas[12:])
    cal = error_metrics([c.predict(s) for s in sums[12:]], meas[12:])
    assert cal["mape_pct"] < 0.01 < 1.0 < plain["mape_pct"]
    assert c.fit["leave_one_out"]["within_10pct"] == 1.0


def test_calibration_shrinks_toward_the_lut_on_noisy_few_samples():
    """The LUT is right (scale 1, 2 ms overhead) but 10 networks carry 6 % noise: an
    unshrunk least-squares fit of 8 scales chases the noise; the calibration keeps the
    scales near 1 and predicts held-out networks better than that fit."""
    rng = np.random.default_rng(1)
    names = [n for n in OP_FEATURES if n != "fixed"]

    def networks(n):
        sums = [{g: 20.0 if g == "fixed" else float(rng.uniform(2, 12)) for g in OP_FEATURES}
                for _ in range(n)]
        meas = [(2.0 + sum(s.values())) * float(rng.normal(1.0, 0.06)) for s in sums]
        return sums, meas

    sums, meas = networks(10)
    c = fit_calibration(sums, meas, "sha", features="op")
    X = np.array([[s[g] for g in names] + [1.0] for s in sums])
    fixed = np.array([s["fixed"] for s in sums])
    ls = np.linalg.lstsq(X, np.array(meas) - fixed, rcond=None)[0]
    assert max(abs(c.coef[g] - 1.0) for g in names) < max(abs(ls[:-1] - 1.0))
    test_sums, test_meas = networks(200)
    cal = error_metrics([c.predict(s) for s in test_sums], test_meas)
    lsq = error_metrics([float(np.dot([s[g] for g in names] + [1.0], ls)) + s["fixed"]
                         for s in test_sums], test_meas)
    assert cal["mape_pct"] < lsq["mape_pct"]


def test_calibrated_lut_scales_latency_only(tiny_lut):
    from nasbench.validate import Calibration
    c = Calibration({"sep_conv": 0.5, "dil_conv": 1, "pool": 2.0, "skip": 1, "fixed": 1},
                    1.5, {}, "x", features="group")
    v = CalibratedLUT(tiny_lut, c)
    assert v.value("sep_conv_3x3/c8-8/h8w8/s1", 1) == pytest.approx(1.0)
    assert v.value("max_pool_3x3/c8-8/h8w8/s1", 1) == pytest.approx(1.0)
    assert v.intercept["latency"] == 1.5
    per_op = Calibration({"sep_conv_3x3": 0.25, "max_pool_3x3": 3.0, "fixed": 1.0}, 0.0,
                         {}, "x", features="op")
    v = CalibratedLUT(tiny_lut, per_op)
    assert v.value("sep_conv_3x3/c8-8/h8w8/s1", 1) == pytest.approx(0.5)
    assert v.value("max_pool_3x3/c8-8/h8w8/s1", 1) == pytest.approx(1.5)
    assert v.value("max_pool_3x3/c8-8/h8w8/s1", 1, "memory") == 1000
    assert op_group("factorized_reduce") == "fixed" and op_group("skip_connect") == "skip"


def test_validate_and_calibrate_end_to_end(tmp_path, capsys):
    """A tiny deploy network on this CPU: profile, calibrate, validate; JSON schema."""
    lut = tmp_path / "tiny.json"
    assert main(["profile", "--out", str(lut), "--quiet", "--channels", "4", "--layers", "3",
                 "--input", "8", "--time-cap", "0.05", "--min-repeats", "3",
                 "--max-repeats", "10"]) == 0
    assert main(["lut", "calibrate", "--lut", str(lut), "--samples", "5", "--quiet"]) == 0
    calib = json.loads((tmp_path / "tiny.calib-b1.json").read_text())
    assert calib["schema"] == 2 and set(calib["coef"]) == set(OP_FEATURES)
    assert calib["batch"] == 1 and calib["coef"]["fixed"] == 1.0
    out = tmp_path / "v.json"
    assert main(["lut", "validate", "--lut", str(lut), "--samples", "3", "--out", str(out),
                 "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["samples"] == 3 and len(res["points"]) == 3
    for k in ("within_5pct", "within_10pct", "mape_pct", "rmse_ms", "spearman", "kendall"):
        assert k in res["plain"] and k in res["calibrated"]
    p = res["points"][0]
    assert p["predicted_ms"] == pytest.approx(sum(p["group_sums_ms"].values()))
    assert p["measured_ms"] > 0 and p["measured"]["repeats"] >= 3
    assert res["cv"]["max"] >= res["cv"]["median"] >= 0
    # drift-corrected: the ratio to the LUT's anchor in the LUT's time base
    ref = res["anchor"]["ref_ms"]
    assert p["measured_ms"] == pytest.approx(p["anchored"]["ratio"] * ref)
    assert p["raw_measured_ms"] == p["measured"]["median"]
    assert res["anchor"]["drift"] == pytest.approx(res["anchor"]["median_ms"] / ref - 1)
    assert "mape_pct" in res["plain_raw"] and res["schema"] == 2
    assert "noise_floor_raw" in res
    from profilers.lut import LUT
    loaded = LUT.load(lut)
    assert load_calibration(loaded) is not None
    assert deploy_from_lut(loaded).channels == 4
    # a changed LUT invalidates its calibration
    loaded.entries[next(iter(loaded.entries))]["latency_ms"]["median"] *= 2
    loaded.save(lut)
    assert load_calibration(LUT.load(lut)) is None
    # a machine 3x slower than at profile time (by the anchor) is reported, with the
    # advice to refit the calibration
    loaded.provenance["anchor"]["ref_ms"] /= 3
    loaded.save(lut)
    assert main(["lut", "validate", "--lut", str(lut), "--samples", "1", "--out", str(out),
                 "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["anchor"]["drift"] > 1.0
    w = [w for w in res["warnings"] if "slower than during the profile" in w]
    assert len(w) == 1 and "--from-validation" in w[0]


@pytest.mark.parametrize("args,msg", [
    (["lut", "validate", "--lut", "/nope.json"], "not found"),
    (["lut", "validate", "--lut", "x.json", "--space", "nas101"], "unknown space"),
    (["lut", "calibrate", "--lut", "/nope.json"], "not found"),
    (["lut", "validate", "--lut", "x.json", "--rounds", "0"], "--rounds"),
    (["lut", "calibrate", "--lut", "x.json", "--min-repeats", "2"], "--min-repeats"),
])
def test_validate_bad_input(args, msg, capsys):
    assert main(args) == 2
    assert msg in capsys.readouterr().err


def _bounded_load(seconds: float, procs: int):
    """Starts ``procs`` busy-loop processes that end by themselves after ``seconds``."""
    import subprocess
    import sys
    code = f"import time\nt = time.time() + {seconds}\nwhile time.time() < t:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(procs)]


def test_validate_under_concurrent_load_says_so(tmp_path, capsys):
    """Under a concurrent CPU load (bounded to 20 s) validate still reports: the load,
    the busy processes, the CVs and a warning; nothing silently wrong."""
    import os
    import time
    lut = tmp_path / "tiny.json"
    assert main(["profile", "--out", str(lut), "--quiet", "--channels", "4", "--layers", "3",
                 "--input", "8", "--time-cap", "0.05", "--min-repeats", "3",
                 "--max-repeats", "10"]) == 0
    t0 = time.time()
    load = _bounded_load(20.0, os.cpu_count() or 2)
    try:
        time.sleep(0.5)
        out = tmp_path / "v.json"
        rc = main(["lut", "validate", "--lut", str(lut), "--samples", "3", "--out",
                   str(out), "--quiet"])
    finally:
        for p in load:
            p.terminate()
        for p in load:
            p.wait(timeout=25)
    assert time.time() - t0 < 60           # the load is bounded, and so is the test
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["loaded"] is True and res["machine"]["start"]["busy"]
    assert any("busy" in w for w in res["warnings"])
    assert all(p["measured"]["cv"] >= 0 for p in res["points"])
    assert res["cv"]["max"] >= res["cv"]["median"]
    assert "warning: the machine is busy" in capsys.readouterr().err


def test_machine_state_fields():
    from profilers.machine import machine_state
    s = machine_state(0.05)
    d = s.to_dict()
    assert d["cores"] >= 1 and "loaded" in d
    # every field is either known or has a reason
    for k in ("governor", "freq_mhz", "gpu_clocks"):
        assert d[k] is not None or k in d["unknown"]


def test_noise_floor_hand_computed():
    from nasbench.validate import noise_floor
    pts = [{"measured_ms": 10.0, "rounds_corrected_ms": [9.0, 10.0, 10.4]},
           {"measured_ms": 20.0, "rounds_ms": [20.0, 23.0, 19.2]},
           {"measured_ms": 5.0, "rounds_ms": [5.0]}]           # one round: no evidence
    nf = noise_floor(pts)
    # deviations of the other rounds: -10 %, +4 %, +15 %, -4 %
    assert nf["n"] == 4
    assert nf["within_5pct"] == pytest.approx(2 / 4)
    assert nf["within_10pct"] == pytest.approx(3 / 4)
    assert nf["mad_pct"] == pytest.approx((10 + 4 + 15 + 4) / 4)
    assert "round_levels" not in nf                          # rounds of unequal count
    nf = noise_floor(pts[:2] + [{"measured_ms": 4.0, "rounds_ms": [4.0, 4.4, 3.0]}])
    # per round, median over the networks of round / kept
    assert nf["round_levels"] == pytest.approx([1.0, 1.1, 0.96])
    assert noise_floor([{"measured_ms": 1.0, "rounds_ms": [1.0]}]) is None


def test_calibrate_from_a_validation_recovers_scale(tmp_path, capsys):
    """`calibrate --from-validation` fits on a validation's stored networks without
    measuring: measurements made 1.3 x the sum + 2 ms give back those numbers."""
    from nasbench.genotypes import genotype_to_dict
    from nasbench.spaces.darts import DeployConfig, enumerate_instances, network_instances
    from profilers.lut import LUT, full_key
    from tests.conftest import make_entry
    deploy = DeployConfig(channels=4, layers=3, input_size=8)
    rng = random.Random(0)
    entries = {full_key(i.key, 1): make_entry(i.key, 1, rng.uniform(0.1, 2.0))
               for i in enumerate_instances(deploy)}
    # a LUT of a device this machine may not have: nothing is measured, so no --device
    lut = LUT({"device": {"id": "opencl:0:0:Radeon RX 580"}, "deploy": deploy.describe()},
              entries)
    path = lut.save(tmp_path / "l.json")
    gs = [sample_genotype(rng) for _ in range(12)]
    points = [{"genotype": genotype_to_dict(g), "measured_ms": 2.0 + 1.3 * sum(
        lut.value(i.key, 1) for i in network_instances(deploy, g))} for g in gs]
    v = tmp_path / "v.json"
    v.write_text(json.dumps({"batch": 1, "lut_sha256": lut.sha256(), "points": points}))
    assert main(["lut", "calibrate", "--lut", str(path), "--from-validation", str(v),
                 "--features", "group", "--json"]) == 0
    calib = json.loads(capsys.readouterr().out)
    # a --device given anyway must still be the LUT's
    assert main(["lut", "calibrate", "--lut", str(path), "--from-validation", str(v),
                 "--device", "cpu"]) == 2
    assert "\n" not in capsys.readouterr().err.strip()
    # fixed parts keep scale 1, so the intercept takes 2 ms + 0.3 x the fixed sum
    for g in ("sep_conv", "dil_conv", "pool", "skip"):
        assert calib["coef"][g] == pytest.approx(1.3, rel=1e-3)   # weakest shrinkage
    assert calib["fit"]["leave_one_out"]["within_5pct"] == 1.0
    # another LUT's validation is refused in one line
    lut.entries[next(iter(lut.entries))]["latency_ms"]["median"] *= 2
    lut.save(path)
    assert main(["lut", "calibrate", "--lut", str(path), "--from-validation", str(v)]) == 2
    assert "validated another LUT" in capsys.readouterr().err


def test_anchor_noise_warning_only_when_raw_agrees_clearly_better():
    from nasbench.validate import anchor_noise_warning
    assert "adds noise" in anchor_noise_warning({"within_10pct": 0.45},
                                                {"within_10pct": 0.67})
    assert anchor_noise_warning({"within_10pct": 0.55}, {"within_10pct": 0.38}) is None
    assert anchor_noise_warning({"within_10pct": 0.60}, {"within_10pct": 0.65}) is None
    assert anchor_noise_warning(None, {"within_10pct": 1.0}) is None


def test_long_forwards_are_kept_as_measured():
    """A round the meter did not anchor (a forward longer than LONG_CALL_MS) stays as
    measured; an anchored one is its bracketed ratio x the LUT's reference."""
    from nasbench.validate import corrected_ms
    from profilers.latency import LONG_CALL_MS

    long_run = {"latency_ms": {"median": 2 * LONG_CALL_MS}}
    short = {"latency_ms": {"median": LONG_CALL_MS / 2},
             "anchored": {"ratio": 30.0, "anchor_ms": {"median": 2.0}}}
    assert corrected_ms(long_run, 1.5) == 2 * LONG_CALL_MS
    assert corrected_ms(short, 1.5) == pytest.approx(45.0)     # ratio x ref
    assert corrected_ms(short, None) == LONG_CALL_MS / 2        # no anchor: raw
