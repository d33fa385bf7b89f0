"""The network a run keeps (model.pt), `nasbench eval` and `nasbench export`, and the
Wilson intervals every accuracy carries."""

import json

import pytest
import torch

from nasbench.cli import main
from nasbench.run.model import load_model
from nasbench.stats import accuracy_interval, separable, wilson_interval
from tests.test_proxyless_runner import config as proxyless_config
from tests.test_proxyless_runner import fake_measure  # noqa: F401 - fixture
from tests.test_runner import TINY, write_lut


def test_wilson_interval_against_hand_values():
    # Wilson, z = 1.96: p = 0.8, n = 100 -> centre (80 + 1.92) / 103.84, half-width
    # 1.96 * sqrt(16 + 0.9604) / 1.0384 / 10 (the textbook example: 0.7112-0.8666)
    lo, hi = wilson_interval(80, 100)
    assert lo == pytest.approx(0.7112, abs=1e-4) and hi == pytest.approx(0.8666, abs=1e-4)
    lo, hi = wilson_interval(0, 10)             # stays inside [0, 1]
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(3, 0) is None
    iv = accuracy_interval(0.12, 50, classes=10)
    assert iv["at_chance"] and iv["chance_pct"] == 10.0 and iv["n"] == 50
    assert not accuracy_interval(0.95, 360, classes=10)["at_chance"]
    a, b = accuracy_interval(0.90, 360, 10), accuracy_interval(0.93, 360, 10)
    c = accuracy_interval(0.99, 2000, 10)
    assert separable(a, b) is False and separable(a, c) is True
    assert separable(a, accuracy_interval(None, None)) is None


@pytest.fixture
def darts_run(tmp_path):
    from nasbench.api import search_architecture
    from nasbench.searchers.darts_config import DARTSConfig
    cfg = DARTSConfig.from_preset("quick", "darts", **{**TINY, "out": str(tmp_path / "runs"),
                                                       "measure": False})
    cfg = cfg.replace(lut=str(write_lut(tmp_path / "lut.json", cfg)))
    return search_architecture(cfg, quiet=True)


def test_the_kept_network_reloads_and_eval_reproduces_the_test_accuracy(darts_run, capsys):
    r = darts_run
    res = json.loads((r.run_dir / "result.json").read_text())
    c = res["candidates"][0]
    assert c["accuracy_n"] == res["test_n"] and len(c["accuracy_ci"]) == 2
    assert c["accuracy_ci"][0] <= c["accuracy"] <= c["accuracy_ci"][1]
    net, meta = load_model(r.run_dir)
    state = torch.load(r.run_dir / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert meta["preprocess"]["input_size"] == 8 and meta["space"] == "darts"
    assert main(["eval", str(r.run_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy_pct"] == pytest.approx(100 * r.test_acc)
    assert out["images"] == res["test_n"] and out["ci_pct"] == pytest.approx(c["accuracy_ci"])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_round_trip_darts(darts_run, tmp_path, fmt, capsys):
    out = tmp_path / f"m.{fmt}"
    assert main(["export", str(darts_run.run_dir), "--format", fmt, "--out", str(out),
                 "--batch", "2", "--json"] + (["--dynamic-batch"] if fmt == "onnx" else [])
                ) == 0
    res = json.loads(capsys.readouterr().out)
    assert out.is_file() and res["bytes"] == out.stat().st_size
    assert set(res["max_rel_error"]) == {"random", "real"}
    assert max(res["max_rel_error"].values()) < 1e-4
    if fmt == "onnx":
        import onnx
        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert json.loads(props["nasbench"])["space"] == "darts"
    else:
        extra = {"nasbench.json": ""}
        torch.jit.load(str(out), _extra_files=extra)
        meta = json.loads(extra["nasbench.json"])
        assert meta["space"] == "darts" and meta["arch"] and meta["preprocess"]["mean"]


def test_export_round_trip_proxyless(tmp_path, fake_measure, capsys):  # noqa: F811
    from nasbench.api import search_proxyless
    r = search_proxyless(proxyless_config(tmp_path), quiet=True)
    for fmt in ("onnx", "torchscript"):
        out = tmp_path / f"p.{fmt}"
        assert main(["export", str(r.run_dir), "--format", fmt, "--out", str(out),
                     "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert max(res["max_rel_error"].values()) < 1e-4, res


def test_eval_and_export_bad_input(darts_run, tmp_path, capsys):
    cases = [(["eval", str(tmp_path)], "no kept network"),
             (["export", str(darts_run.run_dir), "--format", "tflite"], "--format"),
             (["export", str(darts_run.run_dir), "--format", "onnx", "--out",
               "/proc/nope/m.onnx"], "not writable"),
             (["eval", str(darts_run.run_dir), "--dataset", "imagenet"], "imagenet"),
             (["eval", str(darts_run.run_dir), "--split", "val"], "--split")]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.pt").write_bytes(b"garbage")
    cases.append((["eval", str(tmp_path / "bad")], "not a readable nasbench model"))
    for args, msg in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert msg in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_references_are_kept_reloaded_evaluated_and_exported(tmp_path, monkeypatch, capsys):
    """Each reference's trained network is kept in the run (references/NAME.pt, the
    model.pt form); eval reproduces its test accuracy; a cached result hands the same
    weights over; export works on it."""
    from nasbench.data import load_dataset
    from nasbench.run.references import RetrainBudget, run_references
    from nasbench.searchers.darts_config import DARTSConfig
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    data = load_dataset("digits", None, False, 8)
    deploy = DARTSConfig.from_preset("quick", "darts", eval_channels=4, eval_layers=3,
                                     input_size=8).deploy(10, 3)
    budget = RetrainBudget(epochs=1, max_steps=3, batch_size=16, channels=4, layers=3)
    keep = tmp_path / "run" / "references"
    recs = run_references(["resnet20", "darts_v2"], data, deploy, budget, "cpu",
                          measure=False, log=lambda *_: None, keep_dir=keep)
    for rec, name in zip(recs, ["resnet20", "darts_v2"], strict=True):
        net, meta = load_model(keep / f"{name}.pt")
        assert meta["kind"] == "reference" and meta["reference"] == name
        assert main(["eval", str(keep / f"{name}.pt"), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["accuracy_pct"] == pytest.approx(rec["accuracy"])      # both in %
        assert out["images"] == rec["accuracy_n"]
    assert load_model(keep / "darts_v2.pt")[1]["arch"]["normal"]
    first = torch.load(keep / "resnet20.pt", weights_only=True)["state_dict"]
    keep2 = tmp_path / "run2" / "references"                  # reused from the cache
    run_references(["resnet20"], data, deploy, budget, "cpu", measure=False,
                   log=lambda *_: None, keep_dir=keep2)
    again = torch.load(keep2 / "resnet20.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, again[k]) for k, v in first.items())
    assert main(["export", str(keep / "resnet20.pt"), "--format", "torchscript",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["path"] == str(keep / "resnet20.ts")
    assert max(res["max_rel_error"].values()) < 1e-4
