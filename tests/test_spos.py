"""``--evaluate supernet`` (SPOS): single-path training gives paths well above chance
(and a path that computes nothing at chance), answers are cached by architecture, the
darts space works too, a run interrupted mid-training (or after it) resumes to the
uninterrupted result, and bad input is one line."""

import random
import sys
from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.data import load_digits, load_synthetic
from nasbench.searchers.spos import SupernetEvaluator
from nasbench.spaces.darts import DartsSpace
from nasbench.spaces.nb201 import NB201Arch, NB201DeployConfig, NB201Space

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import cost_ms, write_fake_nb201  # noqa: E402

CONV = NB201Arch(("nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1",
                  "nor_conv_3x3", "skip_connect"))
DEAD = NB201Arch(("nor_conv_3x3", "none", "skip_connect", "none", "none", "none"))


@pytest.fixture(scope="module")
def data():
    return load_synthetic(input_size=16)


def _ev(space, data, **kw):
    args = dict(channels=4, layers=1, epochs=3, steps=8, batch_size=32, seed=0,
                bn_batches=2, val_batches=1)
    return SupernetEvaluator(space, data, lambda a: {"latency": 1.0}, **{**args, **kw})


def test_trained_paths_are_above_chance_and_cached():
    """160 uniform single-path steps on digits (seconds): a conv cell reaches ~38 %
    (untrained ~11 %, chance 10 %); a cell whose output node nothing feeds computes a
    constant, chance at best."""
    space = NB201Space(NB201DeployConfig())
    ev = _ev(space, load_digits(16), channels=8, epochs=20, lr=0.1)
    untrained = ev.model.path_accuracy(CONV, ev.val, calibrate=ev.calibrate)
    steps = []
    ev.prepare(lambda step, info: steps.append(step))
    assert steps == list(range(1, 161)) and ev.trained == ev.total == 160
    first = ev(CONV)
    assert first["cached"] is False and first["cost"] == {"latency": 1.0}
    assert first["accuracy"] > 25.0 and first["accuracy"] > untrained + 12.0, \
        (first, untrained)
    assert ev(DEAD)["accuracy"] < 20.0
    again = ev(CONV)
    assert again == {**first, "cached": True}
    assert (ev.queries, ev.cache_hits) == (2, 1)
    ev.prepare(lambda *_: pytest.fail("trained once only"))


def test_the_darts_space_is_evaluated_on_its_genotypes(data):
    space = DartsSpace(DartsSpace.default_deploy())
    ev = _ev(space, data, layers=3, epochs=1, steps=3)
    g = space.sample(random.Random(0))
    acc = ev(g)["accuracy"]
    assert 0.0 <= acc <= 100.0 and ev.trained == 3


# ---- through the runner -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


def _cfg(fake, tmp_path, **kw):
    from nasbench.searchers import TrialConfig
    base = dict(space="nb201", benchmark_dir=str(fake), device="hw-nas-bench:edgegpu",
                dataset="synthetic", train_input_size=16, out=str(tmp_path / "runs"),
                evaluate="supernet", trials=8, trials_per_epoch=4, batch_size=32,
                supernet_epochs=2, supernet_steps=4, supernet_channels=4,
                supernet_layers=1, latency_target_ms=1.4)
    return TrialConfig.from_preset("quick", "random", **{**base, **kw})


def test_a_run_interrupted_resumes_to_the_same_result(fake, tmp_path, monkeypatch):
    """Cut at training step 3 of 8, resumed and cut again two trials after the training
    (5 + 2 steps), resumed to the end: the uninterrupted run's cells and accuracies."""
    from nasbench.run.runner import run_search
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = _cfg(fake, tmp_path)
    full = run_search(cfg, quiet=True)
    assert full.status == "complete" and cost_ms(full.genotype) <= 1.4
    cut = run_search(cfg.replace(out=str(tmp_path / "cut")), quiet=True,
                     _interrupt_after_steps=3)
    assert cut.status == "interrupted" and not cut.visited
    cut = run_search(resume=cut.run_dir, quiet=True, _interrupt_after_steps=7)
    assert cut.status == "interrupted" and len(cut.visited) == 2
    done = run_search(resume=cut.run_dir, quiet=True)
    assert done.status == "complete"
    assert [(v["arch"], v["accuracy"]) for v in done.visited] == \
        [(v["arch"], v["accuracy"]) for v in full.visited]
    assert done.genotype == full.genotype
    log = (Path(done.run_dir) / "search.log").read_text()
    assert "SPOS supernet trained: 8 steps" in log


@pytest.mark.parametrize("args, words", [
    (["--supernet-channels", "0"], "--supernet-channels must be positive"),
    (["--supernet-lr", "nan"], "supernet-lr must be a finite number"),
    (["--space", "proxyless"], "the proxyless space has none"),
    (["--space", "darts", "--supernet-layers", "2"], "at least 3"),
])
def test_bad_supernet_input_is_one_line(args, words, tmp_path, capsys, monkeypatch):
    """Refused before any work: no LUT is profiled, no folder written."""
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    rc = main(["search", "--method", "random", "--evaluate", "supernet", "-q",
               "--dataset", "synthetic", "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert words in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "cache").exists()
