"""End-to-end ProxylessNAS runs on a tiny budget: run directory, resume, bad inputs, CLI."""

import json

import pytest
import torch

import nasbench.luts
from nasbench.api import search_proxyless
from nasbench.cli import main
from nasbench.errors import UserError
from nasbench.oneshot.proxyless import ProxylessArch
from nasbench.searchers.proxyless_config import ProxylessConfig
from nasbench.spaces.darts import DeployConfig
from nasbench.spaces.proxyless import block_plan
from profilers.lut import LUT
from tests.test_proxyless_search import proxyless_lut

TINY = dict(dataset="synthetic", input_size=8, width_mult=0.25, warmup_epochs=1, epochs=2,
            steps_per_epoch=3, batch_size=8, train_epochs=1, train_max_steps=2,
            train_batch_size=16, threads=1, seed=3, references="")


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


def config(tmp_path, **kw) -> ProxylessConfig:
    cfg = ProxylessConfig.from_preset("quick", **{**TINY, "out": str(tmp_path / "runs"), **kw})
    path = tmp_path / "lut.json"
    proxyless_lut(cfg.deploy()).save(path)
    return cfg.replace(lut=str(path))


def _runs(tmp_path):
    d = tmp_path / "runs"
    return list(d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("estimator,loss", [("binary", "mul#log"), ("reinforce", "add#linear")])
def test_end_to_end_run_directory(tmp_path, fake_measure, estimator, loss):
    cfg = config(tmp_path, grad_estimator=estimator, latency_loss=loss,
                 latency_target_ms=8.0, rl_samples=2)
    r = search_proxyless(cfg, quiet=True)
    assert r.status == "complete" and r.method == "proxyless"
    d = r.run_dir
    assert d.parent == tmp_path / "runs" and "-proxyless-" in d.name
    for f in ("config.json", "lut.json", "search.log", "history.json", "checkpoint.pt",
              "genotype.json", "result.json"):
        assert (d / f).is_file(), f
    hist = json.loads((d / "history.json").read_text())
    assert [h["phase"] for h in hist] == ["warmup", "search", "search"]
    n_blocks = len(block_plan(cfg.deploy()))
    for h in hist:
        assert 0 <= h["train_acc"] <= 100 and h["expected_cost"]["latency"] > 0
        assert len(h["alphas"]["blocks"]) == n_blocks and len(h["ops"]) == 7
        assert all(abs(sum(p) - 1) < 1e-6 for p in h["alphas"]["blocks"])
    assert hist[0]["val_acc"] is None and hist[0]["arch_steps"] == 0
    assert hist[1]["arch_steps"] == 3 and 0 <= hist[1]["val_acc"] <= 100
    res = json.loads((d / "result.json").read_text())
    assert res["genotype"]["space"] == "proxyless" and len(res["genotype"]["blocks"]) == n_blocks
    assert 0.0 <= res["test_acc"] <= 1.0
    assert res["target"]["met"] is True and res["target"]["final_ms"] <= 8.0
    assert abs(res["predicted"]["latency_ms"] - res["target"]["final_ms"]) < 1e-9
    assert res["measured"]["latency_ms"]["median"] == 1.0
    assert res["params"]["torch"] == res["params"]["thop"] == res["params"]["ptflops"]
    assert res["macs"]["conv_linear"] > 0
    assert res["deploy"]["space"] == "proxyless" and res["deploy"]["batch"] == 1
    assert res["candidates"][0]["space"] == "proxyless"
    assert res["candidates"][0]["latency_ms"]["predicted"] == res["predicted"]["latency_ms"]
    g = json.loads((d / "genotype.json").read_text())
    assert ProxylessArch.from_dict(g["genotype"]) == r.genotype
    assert json.loads((d / "lut.json").read_text())["sha256"]


def test_resume_equals_uninterrupted(tmp_path, fake_measure):
    cfg = config(tmp_path, train_epochs=2)
    full = search_proxyless(cfg, quiet=True)
    part = search_proxyless(cfg, quiet=True, _interrupt_after_steps=5)
    assert part.status == "interrupted"
    mid = torch.load(part.run_dir / "checkpoint.pt", weights_only=False)
    assert (mid["phase"], mid["epoch"], mid["step"]) == ("search", 1, 2)
    # interrupt again, inside the retrain this time, then finish
    again = search_proxyless(None, resume=part.run_dir, quiet=True, _interrupt_after_steps=6)
    assert again.status == "interrupted"
    assert torch.load(part.run_dir / "checkpoint.pt", weights_only=False)["phase"] == "train"
    done = search_proxyless(None, resume=part.run_dir, quiet=True)
    assert done.status == "complete" and done.genotype == full.genotype
    a = torch.load(full.run_dir / "checkpoint.pt", weights_only=False)
    b = torch.load(part.run_dir / "checkpoint.pt", weights_only=False)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["train"]["model"].items():
        assert torch.equal(v, b["train"]["model"][k]), k
    assert done.test_acc == full.test_acc
    ha = json.loads((full.run_dir / "history.json").read_text())
    hb = json.loads((part.run_dir / "history.json").read_text())
    assert [h["alphas"] for h in ha] == [h["alphas"] for h in hb]


def test_missing_lut_entries_are_named(tmp_path):
    cfg = config(tmp_path)
    proxyless_lut(cfg.deploy(), drop={"mb_k7_e6"}).save(cfg.lut)
    with pytest.raises(UserError) as ei:
        search_proxyless(cfg, quiet=True)
    msg = str(ei.value)
    assert "mb_k7_e6/c8-8/" in msg and "nasbench profile --space proxyless" in msg
    assert "\n" not in msg and not _runs(tmp_path)


def test_lut_of_another_space_or_device(tmp_path):
    cfg = config(tmp_path)
    darts = DeployConfig(channels=4, layers=3, input_size=8)
    LUT({"device": nasbench.luts.get_device("cpu").to_dict(),
         "deploy": darts.describe()}, {}).save(cfg.lut)
    with pytest.raises(UserError, match="another network.*--space proxyless"):
        search_proxyless(cfg, quiet=True)
    proxyless_lut(cfg.deploy(), device={"id": "cuda:X", "name": "X"}).save(cfg.lut)
    with pytest.raises(UserError, match="measured on 'cuda:X'"):
        search_proxyless(cfg, quiet=True)
    assert not _runs(tmp_path)


def test_energy_objective_without_energy_says_so(tmp_path):
    cfg = config(tmp_path, objective="acc+energy")
    with pytest.raises(UserError, match="no energy measurements"):
        search_proxyless(cfg, quiet=True)


def test_cli_search_proxyless(tmp_path, fake_measure, capsys):
    cfg = config(tmp_path)
    args = ["search", "--method", "proxyless", "--dataset", "synthetic", "--input", "8",
            "--width-mult", "0.25", "--epochs", "1", "--warmup-epochs", "0",
            "--steps-per-epoch", "2", "--batch-size", "8", "--train-epochs", "0",
            "--lut", cfg.lut, "--out", str(tmp_path / "runs"), "--threads", "1",
            "--latency-loss", "add#linear", "--latency-target", "8ms", "--json"]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["method"] == "proxyless" and res["status"] == "complete"
    assert res["config"]["latency_loss"] == "add#linear"
    assert res["target"]["target_ms"] == 8.0
    for bad, msg in ((["--channels", "8"], "DARTS networks"),
                     (["--latency-loss", "log"], "mul#log or add#linear"),
                     (["--latency-loss", "mul#log"], "above 1 ms")):
        argv = [a for a in args if a != "--json"]
        argv = argv[:argv.index("--latency-loss")] + bad + (
            ["--latency-target", "0.5"] if bad[-1] == "mul#log" else [])
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err
    assert main(["search", "--grad-estimator", "binary"]) == 2
    assert "--method proxyless only" in capsys.readouterr().err


def test_cli_resume_dispatches_to_the_proxyless_runner(tmp_path, fake_measure, capsys):
    cfg = config(tmp_path, train_epochs=0, epochs=1)
    part = search_proxyless(cfg, quiet=True, _interrupt_after_steps=2)
    assert part.status == "interrupted"
    assert main(["search", "--resume", str(part.run_dir), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "complete" and res["run_dir"] == str(part.run_dir)
    assert len(json.loads((part.run_dir / "history.json").read_text())) == 2


def test_proxyless_run_lists_reference_networks(tmp_path, monkeypatch):
    """References get the proxyless run's retrain budget; a DARTS-space reference has no
    prediction from a proxyless LUT (None, not 0)."""
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = config(tmp_path, references="resnet20,darts_v2")
    r = search_proxyless(cfg, quiet=True)
    res = json.loads((r.run_dir / "result.json").read_text())
    roles = {c["name"]: c for c in res["candidates"]}
    assert roles["proxyless (derived)"]["role"] == "derived"
    assert roles["proxyless (derived)"]["genotype"]["blocks"]
    for name in ("ResNet-20 (CIFAR)", "DARTS_V2 (published)"):
        c = roles[name]
        assert c["role"] == "reference" and c["train_steps"] == cfg.train_max_steps
        assert c["latency_ms"]["predicted"] is None
        assert c["latency_ms"]["measured"]["median"] > 0
