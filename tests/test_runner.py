"""End-to-end search runs on a tiny budget: run directory, resume, bad inputs."""

import json

import pytest
import torch

import nasbench.luts
from nasbench.api import search_architecture
from nasbench.errors import UserError
from nasbench.luts import get_device
from nasbench.searchers.darts_config import DARTSConfig
from nasbench.spaces.darts import enumerate_instances
from profilers.lut import LUT, full_key
from tests.conftest import make_entry

TINY = dict(dataset="synthetic", input_size=8, channels=4, layers=3, epochs=2,
            steps_per_epoch=3, batch_size=8, eval_channels=4, eval_layers=3,
            train_epochs=1, train_max_steps=2, train_batch_size=16, train_channels=4,
            train_layers=3, threads=1, seed=3, references="")
OP_COST = {"sep_conv_3x3": 2.0, "sep_conv_5x5": 3.0, "dil_conv_3x3": 1.5,
           "dil_conv_5x5": 2.5, "max_pool_3x3": 0.3, "avg_pool_3x3": 0.4,
           "skip_connect": 0.1}


def write_lut(path, cfg, device_id=None, drop=()):
    deploy = cfg.deploy()
    dev = get_device("cpu").to_dict()
    if device_id:
        dev = {"id": device_id, "name": device_id}
    entries = {}
    for inst in enumerate_instances(deploy):
        if inst.op in drop:
            continue
        e = make_entry(inst.key, 1, OP_COST.get(inst.op, 1.0) * (1 + inst.h / 8))
        entries[full_key(inst.key, 1)] = e
    LUT({"device": dev, "deploy": deploy.describe(), "batches": [1]}, entries).save(path)
    return path


@pytest.fixture
def fake_measure(monkeypatch):
    def measure(module, input_shape, device="cpu", **kw):
        with torch.no_grad():
            module(torch.zeros(input_shape))
        return {"latency_ms": {"median": 1.0, "mean": 1.0, "p5": 0.9, "p95": 1.1,
                               "cv": 0.01, "repeats": 3},
                "memory_bytes": None, "memory_method": "test", "energy_j": None,
                "energy_reason": "test", "device": {"id": "cpu:test"}}
    monkeypatch.setattr(nasbench.luts, "measure_network", measure)


def config(tmp_path, method="darts", **kw):
    cfg = DARTSConfig.from_preset("quick", method, **{**TINY, "out": str(tmp_path / "runs"),
                                                      **kw})
    lut = write_lut(tmp_path / f"lut-{method}.json", cfg)
    return cfg.replace(lut=str(lut))


@pytest.mark.parametrize("method,order", [("darts", "first"), ("pcdarts", "second")])
def test_end_to_end_run_directory(tmp_path, fake_measure, method, order):
    cfg = config(tmp_path, method, order=order, latency_target_ms=1e6)
    r = search_architecture(cfg, quiet=True)
    assert r.status == "complete"
    d = r.run_dir
    assert d.parent == tmp_path / "runs" and f"-{method}-" in d.name
    for f in ("config.json", "lut.json", "search.log", "history.json", "checkpoint.pt",
              "genotype.json", "result.json"):
        assert (d / f).is_file(), f
    hist = json.loads((d / "history.json").read_text())
    assert len(hist) == 2 and "latency" in hist[0]["expected"]
    assert len(hist[0]["alphas"]["normal"]) == 14
    res = json.loads((d / "result.json").read_text())
    assert 0.0 <= res["test_acc"] <= 1.0
    assert res["predicted"]["latency_ms"] > 0 and res["target"]["met"] is True
    assert res["measured"]["latency_ms"]["median"] == 1.0
    assert res["params"]["torch"] == res["params"]["thop"] == res["params"]["ptflops"]
    assert res["macs"]["conv_linear"] > 0 and res["macs"]["thop"] > 0
    assert json.loads((d / "lut.json").read_text())["sha256"]


def test_resume_equals_uninterrupted(tmp_path, fake_measure):
    cfg = config(tmp_path, train_epochs=2)
    full = search_architecture(cfg, quiet=True)
    part = search_architecture(cfg, quiet=True, _interrupt_after_steps=4)
    assert part.status == "interrupted"
    mid = torch.load(part.run_dir / "checkpoint.pt", weights_only=False)
    assert (mid["phase"], mid["epoch"], mid["step"]) == ("search", 1, 1)
    # interrupt again, inside the retrain this time, then finish
    again = search_architecture(None, resume=part.run_dir, quiet=True,
                                _interrupt_after_steps=5)
    assert again.status == "interrupted"
    done = search_architecture(None, resume=part.run_dir, quiet=True)
    assert done.status == "complete" and done.genotype == full.genotype
    a = torch.load(full.run_dir / "checkpoint.pt", weights_only=False)
    b = torch.load(part.run_dir / "checkpoint.pt", weights_only=False)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["train"]["model"].items():
        assert torch.equal(v, b["train"]["model"][k]), k
    assert done.test_acc == full.test_acc
    assert json.loads((full.run_dir / "history.json").read_text())[-1]["alphas"] == \
        json.loads((part.run_dir / "history.json").read_text())[-1]["alphas"]


def test_candidates_references_and_report(tmp_path, fake_measure, monkeypatch):
    """A real (tiny) run writes the derived network and the reference networks as
    report candidates; the reference results are cached for the next run."""
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = config(tmp_path, references="resnet20,darts_v2")
    r = search_architecture(cfg, quiet=True)
    res = json.loads((r.run_dir / "result.json").read_text())
    cands = {c["role"] + ":" + c["name"]: c for c in res["candidates"]}
    assert set(cands) == {"derived:darts (derived)", "reference:ResNet-20 (CIFAR)",
                          "reference:DARTS_V2 (published)"}
    der = cands["derived:darts (derived)"]
    assert der["accuracy"] == pytest.approx(100 * res["test_acc"])
    assert der["latency_ms"]["predicted"] == res["predicted"]["latency_ms"]
    assert der["latency_ms"]["measured"]["median"] == 1.0
    assert der["params"] == res["params"]["torch"]
    rn = cands["reference:ResNet-20 (CIFAR)"]
    assert rn["params"] == 272_474            # ResNet-20 at 10 classes (He et al.: 0.27 M)
    assert rn["latency_ms"]["predicted"] is None      # not in the DARTS space: no LUT value
    assert rn["train_steps"] == cfg.train_max_steps and rn["space"] == "hand-designed"
    dv = cands["reference:DARTS_V2 (published)"]
    from nasbench.genotypes import DARTS_V2
    from nasbench.oneshot.cost import genotype_lut_cost
    assert dv["latency_ms"]["predicted"] == pytest.approx(
        genotype_lut_cost(LUT.load(cfg.lut), cfg.deploy(), DARTS_V2))
    assert res["run_id"] == r.run_dir.name and res["dataset"] == "synthetic"
    # the references are kept as trained, reloadable at their recorded accuracy
    from nasbench.run.model import load_model
    kept = sorted(p.name for p in (r.run_dir / "references").iterdir())
    assert kept == ["darts_v2.pt", "resnet20.pt"]
    assert 100 * load_model(r.run_dir / "references" / "resnet20.pt")[1]["test_acc"] == \
        pytest.approx(rn["accuracy"])
    hist = json.loads((r.run_dir / "history.json").read_text())
    assert hist[0]["ops"] == hist[0]["primitives"] and "latency" in hist[0]["expected_cost"]
    assert 0.0 <= hist[0]["train_acc"] <= 100.0
    # the report is written from this real run and shows every candidate
    import csv
    assert (r.run_dir / "report.html").is_file()
    rows = list(csv.DictReader(open(r.run_dir / "report.csv")))
    assert sorted(row["role"] for row in rows) == ["derived", "reference", "reference"]
    # second run with the same budget reuses the references
    r2 = search_architecture(cfg, quiet=True)
    assert "reused" in (r2.run_dir / "search.log").read_text()
    res2 = json.loads((r2.run_dir / "result.json").read_text())
    assert [c["accuracy"] for c in res2["candidates"][1:]] == \
        [c["accuracy"] for c in res["candidates"][1:]]


def test_unknown_reference_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="unknown reference.*resnet99"):
        DARTSConfig.from_preset("quick", references="resnet20,resnet99")


def _runs(tmp_path):
    d = tmp_path / "runs"
    return list(d.iterdir()) if d.exists() else []


def test_missing_lut_entries_are_named(tmp_path):
    cfg = config(tmp_path)
    write_lut(cfg.lut, cfg, drop={"sep_conv_5x5"})
    with pytest.raises(UserError) as ei:
        search_architecture(cfg, quiet=True)
    msg = str(ei.value)
    assert "sep_conv_5x5/c4-4/" in msg and "nasbench profile --device cpu" in msg
    assert "\n" not in msg and not _runs(tmp_path)


def test_wrong_lut_device(tmp_path):
    cfg = config(tmp_path)
    write_lut(cfg.lut, cfg, device_id="cuda:Some GPU")
    with pytest.raises(UserError, match="measured on 'cuda:Some GPU'"):
        search_architecture(cfg, quiet=True)
    assert not _runs(tmp_path)


def test_lut_for_another_network(tmp_path):
    cfg = config(tmp_path)
    with pytest.raises(UserError, match="another network"):
        search_architecture(cfg.replace(eval_channels=8), quiet=True)


def test_bad_data_dir(tmp_path):
    cfg = config(tmp_path, dataset="cifar10", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="nowhere"):
        search_architecture(cfg, quiet=True)
    assert not _runs(tmp_path)


def test_bad_options():
    with pytest.raises(UserError):
        DARTSConfig.from_preset("fast")
    with pytest.raises(UserError):
        DARTSConfig.from_preset("quick", "enas")
    with pytest.raises(UserError):
        DARTSConfig.from_preset("quick", "pcdarts", channels=6)
    with pytest.raises(UserError):
        DARTSConfig.from_preset("quick", objective="acc", latency_target_ms=4.0)
    with pytest.raises(UserError):
        DARTSConfig.from_preset("quick", epochs=0)


def test_presets_resolve():
    q = DARTSConfig.from_preset()
    assert q.preset == "quick" and q.dataset == "digits" and q.epochs <= 5
    p = DARTSConfig.from_preset("paper", "darts")
    assert (p.epochs, p.batch_size, p.learning_rate, p.arch_learning_rate) == \
        (50, 64, 0.025, 3e-4)
    assert (p.train_epochs, p.eval_channels, p.eval_layers) == (600, 36, 20)
    # (warm-up epochs come before the search epochs, and may not outlast them)
    pc = DARTSConfig.from_preset("paper", "pcdarts", epochs=20)
    assert (pc.partial_k, pc.batch_size, pc.learning_rate, pc.arch_learning_rate,
            pc.warmup_epochs, pc.epochs) == (4, 256, 0.1, 6e-4, 15, 20)
    assert DARTSConfig.from_dict(pc.to_dict()) == pc


# stop 3 (an epoch's last step mid-run) runs in the slow set: stop 8 (the last step of
# the last epoch) covers the same path in the default run
@pytest.mark.parametrize("stop", [pytest.param(3, marks=pytest.mark.slow), 8])
def test_interrupt_on_an_epochs_last_step_runs_nothing_twice(tmp_path, fake_measure, stop):
    """Ctrl-C right after the last step of a search epoch (3 steps per epoch) or of a
    retrain epoch (2 steps): resuming neither repeats nor adds an epoch, and ends where
    the uninterrupted run ends."""
    cfg = config(tmp_path, train_epochs=2)
    full = search_architecture(cfg, quiet=True)
    part = search_architecture(cfg, quiet=True, _interrupt_after_steps=stop)
    assert part.status == "interrupted"
    done = search_architecture(None, resume=part.run_dir, quiet=True)
    hist = json.loads((done.run_dir / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1]
    assert hist[-1]["alphas"] == json.loads(
        (full.run_dir / "history.json").read_text())[-1]["alphas"]
    res = json.loads((done.run_dir / "result.json").read_text())
    assert [h["epoch"] for h in res["trained_network"]["history"]] == [0, 1]
    assert done.genotype == full.genotype and done.test_acc == full.test_acc
