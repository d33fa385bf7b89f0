"""The learned cost model: it recovers a known non-additive device that the LUT sum
cannot, transfers from a prior device with few cells, is stored with its provenance,
refuses a damaged file in one line, and every consumer reads the same prediction."""

import csv
import json

import numpy as np
import pytest
import torch

from nasbench.benchmarks import NB201Bench
from nasbench.benchmarks.hwnas import fitted_lut
from nasbench.benchmarks.nb201 import DATASETS, DEVICE_METRICS
from nasbench.cli import main
from nasbench.diagnostics.cost_study import noise_floor, study, twin_pairs
from nasbench.predict.learned import LearnedCost, LearnedModel, learned_path, read_learned
from nasbench.predict.predictor import Predictor, predict_costs
from nasbench.spaces.nb201 import NB201Arch, NB201Space, used_edges

COST = {"skip_connect": 0.02, "nor_conv_1x1": 0.1, "nor_conv_3x3": 0.3,
        "avg_pool_3x3": 0.15}
FIXED = 1.0
#: the interaction: two 3x3 convs reading the same node cost 0.5 ms less together
PAIR = -0.5


def device_ms(a: NB201Arch) -> float:
    """A made-up graph-compiled device: ops whose result is never read are dropped,
    and pairs of 3x3 convs sharing an input are merged (a known interaction)."""
    used = used_edges(a)
    ops = [op for op, e in zip(a.ops, ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)),
                               strict=True) if e in used and op != "none"]
    f = NB201Space(NB201Space.default_deploy()).cost_features(a)
    return FIXED + 15 * sum(COST[o] for o in ops) + 15 * PAIR * \
        f["sib:nor_conv_3x3+nor_conv_3x3"] / 5


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    d = tmp_path_factory.mktemp("nb201")
    archs = NB201Space.all_archs(None)
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
            ms = device_ms(a) if a.connected() else 0.01
            # raspi4: the same device at twice the cost (a prior that explains it)
            w.writerow([i, a.to_str()] + [ms if c == "edgegpu_latency" else
                                          2 * ms if c == "raspi4_latency" else
                                          (-1 if c == "edgetpu_latency" else 1.0)
                                          for c in cols])
    return NB201Bench(d)


@pytest.fixture()
def lut(bench, tmp_path):
    p = tmp_path / "gpu.json"
    fitted_lut(bench, "edgegpu").save(p)
    return p


def _calibrate(lut, bench, *extra):
    return main(["lut", "calibrate", "--lut", str(lut), "--device", "hw-nas-bench:edgegpu",
                 "--space", "nb201", "--benchmark-dir", str(bench.folder), "--model",
                 "learned", "--seed", "0", "--quiet", *extra])


def _validate(lut, bench, capsys):
    capsys.readouterr()
    assert main(["lut", "validate", "--lut", str(lut), "--device", "hw-nas-bench:edgegpu",
                 "--space", "nb201", "--benchmark-dir", str(bench.folder), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["latency"]


def test_the_learned_model_recovers_a_known_interaction(bench, lut, capsys):
    plain = _validate(lut, bench, capsys)["predictors"]["plain"]
    assert plain["within_10"] < 0.9                  # the sum cannot: the device fuses
    assert _calibrate(lut, bench, "--samples", "60") == 0
    res = _validate(lut, bench, capsys)
    assert res["fitted_on"] == 60 and res["cells"] == 15_284 - 60
    learned = res["predictors"]["learned"]
    assert learned["within_10"] == 1.0 and learned["mape"] < 1.0
    assert learned["spearman"] > 0.999 and learned["spearman"] > plain["spearman"]
    model = read_learned(learned_path(lut))
    # the merged pair's coefficient, back in ms per pair per cell of the network
    k = model.names.index("sib:nor_conv_3x3+nor_conv_3x3")
    per_pair = model.coef[k] / model.scale[k]
    assert per_pair == pytest.approx(15 * PAIR / 5, rel=0.05)


def test_provenance_round_trip_and_a_damaged_file(bench, lut, capsys):
    assert _calibrate(lut, bench, "--samples", "30", "--seed", "3") == 0
    path = learned_path(lut)
    d = json.loads(path.read_text())
    assert d["lut_sha256"] and d["fit"]["samples"] == 30 and d["fit"]["seed"] == 3
    assert len(d["fit"]["cells"]) == 30 and d["fit"]["device"] == "hw-nas-bench:edgegpu"
    assert d["fit"]["leave_one_out"]["n"] == 30 and d["unit"] == "ms"
    m = LearnedModel.from_dict(d)
    assert m.to_dict() == d
    path.write_text(path.read_text()[:200])
    capsys.readouterr()
    assert main(["lut", "validate", "--lut", str(lut), "--device", "hw-nas-bench:edgegpu",
                 "--space", "nb201", "--benchmark-dir", str(bench.folder)]) == 2
    e = capsys.readouterr().err
    assert "learned model file" in e and "damaged" in e and len(e.strip().splitlines()) == 1


def test_every_consumer_reads_the_same_prediction(bench, lut):
    assert _calibrate(lut, bench, "--samples", "40") == 0
    from profilers.lut import LUT
    lut_obj = LUT.load(lut)
    space = NB201Space(NB201Space.deploy_from_lut(lut_obj))
    pred = Predictor(space, lut_obj, ["latency"])
    model = LearnedCost(read_learned(learned_path(lut)), space, lut_obj)
    a = NB201Arch.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|"
                           "nor_conv_3x3~1|avg_pool_3x3~2|")
    want = model(a)
    assert want == pytest.approx(device_ms(a), rel=0.02)
    assert pred.cost(a)["latency"] == pytest.approx(want)
    p = pred.predict(a)
    assert p["latency_ms"] == pytest.approx(want) and "learned" in p["source"]
    assert p["latency_sd_ms"] > 0 and p["latency_plain_ms"] != pytest.approx(want)
    assert predict_costs(space, lut_obj, a)["latency_ms"] == pytest.approx(want)
    # the hard-target repair meets the target by the learned prediction
    target = want * 0.8
    scores = torch.ones(6, 5)
    r = pred.repair(a, target, scores)
    assert model(NB201Arch(tuple(op for _, op in space.picks(r.arch)))) <= target + 1e-9


def test_few_shot_transfer_from_a_prior_device(bench, lut, capsys):
    """raspi4 is edgegpu at twice the cost: with it as a prior, 20 cells suffice."""
    assert _calibrate(lut, bench, "--samples", "20") == 0
    alone = _validate(lut, bench, capsys)["predictors"]["learned"]
    assert _calibrate(lut, bench, "--samples", "20", "--prior",
                      "hw-nas-bench:raspi4") == 0
    with_prior = _validate(lut, bench, capsys)["predictors"]["learned"]
    assert with_prior["within_10"] > 0.9 and with_prior["spearman"] > 0.99
    assert with_prior["mape"] < alone["mape"] / 2
    assert read_learned(learned_path(lut)).priors[0]["device"] == "raspi4"


@pytest.mark.parametrize("args, says", [
    (["--model", "forest"], "--model must be linear or learned"),
    (["--prior", "hw-nas-bench:raspi4"], "--prior needs --model learned"),
    (["--model", "learned", "--samples", "3"], "--samples must be between 5"),
    (["--model", "learned", "--prior", "nowhere.json"], "neither hw-nas-bench"),
    (["--model", "learned", "--metric", "memory"], "--metric must be latency or energy"),
])
def test_bad_calibrate_input_is_one_line(bench, lut, refuse, args, says):
    assert says in refuse(["lut", "calibrate", "--lut", str(lut), "--device",
                           "hw-nas-bench:edgegpu", "--space", "nb201", "--benchmark-dir",
                           str(bench.folder), *args])
    assert not learned_path(lut).exists()


def test_study_and_the_noise_floor(bench):
    r = study(bench, "edgegpu", samples=80, seeds=1, few_shot=10)
    assert r["floor"]["within_10pct"] == 1.0            # twins measured alike here
    assert r["learned"]["within_10pct"]["mean"] > 0.97
    assert r["plain"]["within_10pct"]["mean"] < 0.9
    assert r["few_shot_prior"]["spearman"]["mean"] > r["few_shot"]["spearman"]["mean"]
    # a noisy table: twins disagree, the floor says so
    archs = NB201Space.all_archs(None)
    pairs = twin_pairs(archs)
    assert len(pairs) == 1500
    rng = np.random.default_rng(0)
    y = np.exp(rng.normal(0, 0.1, len(archs)))       # every network truly costs 1
    f = noise_floor(y, pairs)
    perfect = np.mean(np.abs(y - 1) <= 0.1)           # what predicting 1 scores
    assert f["pairs_within_10pct"] < f["within_10pct"]
    assert f["within_10pct"] == pytest.approx(perfect, abs=0.05)


def test_a_measured_darts_device_from_a_validation(tmp_path, capsys):
    """The measured path (`lut calibrate --from-validation --model learned`) on the
    DARTS space: a device that pays a fifth more when the first normal node's first op
    is a skip (a position effect no per-op scale can express) is learned; the linear
    calibration cannot."""
    import random

    from nasbench.genotypes import genotype_to_dict
    from nasbench.spaces.darts import DartsSpace, DeployConfig, enumerate_instances
    from nasbench.validate import sample_genotype
    from profilers.lut import LUT, full_key
    from tests.conftest import make_entry
    deploy = DeployConfig(channels=4, layers=3, input_size=8)
    rng = random.Random(0)
    entries = {full_key(i.key, 1): make_entry(i.key, 1, rng.uniform(0.1, 2.0))
               for i in enumerate_instances(deploy)}
    lut = LUT({"device": {"id": "opencl:0:0:Radeon RX 580"}, "deploy": deploy.describe()},
              entries)
    path = lut.save(tmp_path / "l.json")
    space = DartsSpace(deploy)

    def plain(g):
        return predict_costs(space, lut, g, None, None)["latency_ms"]

    extra = 0.2 * plain(sample_genotype(random.Random(1)))

    def device(g):
        skip = space.cost_features(g)["normal/0/op0=skip_connect"]
        return 1.0 + plain(g) + extra * skip

    gs = [sample_genotype(rng) for _ in range(160)]
    points = [{"genotype": genotype_to_dict(g), "measured_ms": device(g)} for g in gs]
    v = tmp_path / "v.json"
    v.write_text(json.dumps({"batch": 1, "lut_sha256": lut.sha256(), "points": points}))
    for model in ("linear", "learned"):
        assert main(["lut", "calibrate", "--lut", str(path), "--from-validation", str(v),
                     "--model", model, "--quiet"]) == 0
    lin = json.loads((tmp_path / "l.calib-b1.json").read_text())["fit"]["leave_one_out"]
    m = read_learned(learned_path(path))
    assert m.space == "darts" and m.fit["source"] == str(v)
    loo = m.fit["leave_one_out"]
    assert loo["mape_pct"] < lin["mape_pct"] / 3 and loo["spearman"] > 0.99
    # and the prediction of a new network carries it
    g = next(g for g in (sample_genotype(rng) for _ in range(500))
             if space.cost_features(g)["normal/0/op0=skip_connect"])
    assert predict_costs(space, LUT.load(path), g)["latency_ms"] == \
        pytest.approx(device(g), rel=0.05)


def test_another_lut_s_learned_model_as_a_prior(bench, tmp_path, capsys):
    """Few-shot transfer from a user's earlier device: its learned model file (and the
    LUT it records) is the prior."""
    other = tmp_path / "pi.json"
    fitted_lut(bench, "raspi4").save(other)
    assert main(["lut", "calibrate", "--lut", str(other), "--device", "hw-nas-bench:raspi4",
                 "--space", "nb201", "--benchmark-dir", str(bench.folder), "--model",
                 "learned", "--samples", "100", "--quiet"]) == 0
    lut = tmp_path / "gpu.json"
    fitted_lut(bench, "edgegpu").save(lut)
    assert _calibrate(lut, bench, "--samples", "20", "--prior",
                      str(learned_path(other))) == 0
    spec = read_learned(learned_path(lut)).priors[0]
    assert spec["kind"] == "model" and spec["lut_path"] == str(other.resolve())
    res = _validate(lut, bench, capsys)["predictors"]["learned"]
    assert res["within_10"] > 0.9 and res["spearman"] > 0.99
    # the prior's LUT changed: its model no longer describes it, one line
    d = json.loads(other.read_text())
    next(iter(d["entries"].values()))["latency_ms"]["median"] *= 2
    other.write_text(json.dumps(d))
    capsys.readouterr()
    assert main(["lut", "validate", "--lut", str(lut), "--device", "hw-nas-bench:edgegpu",
                 "--space", "nb201", "--benchmark-dir", str(bench.folder)]) == 2
    assert "fitted for another LUT" in capsys.readouterr().err


@pytest.mark.parametrize("args, says", [
    (["--metric", "memory"], "--metric must be latency or energy"),
    (["--samples", "3"], "--samples >= 5"),
    (["--few-shot", "500"], "--few-shot 0 or between 5 and --samples"),
    (["--device", "hw-nas-bench:raspi4", "--metric", "energy"], "no energy for raspi4"),
    (["--device", "tpu9"], "unknown HW-NAS-Bench device"),
])
def test_bad_study_input_is_one_line(bench, refuse, args, says):
    assert says in refuse(["lut", "study", "--benchmark-dir", str(bench.folder), *args])
