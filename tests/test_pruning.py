"""``--pruner``: ``--evaluate train`` candidates stopped early by Optuna's pruners on
their held-out accuracy after each epoch (nasbench/searchers/pruning.py); a stopped
candidate is never cached; bad combinations are one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nasbench.data import load_dataset
from nasbench.errors import UserError
from nasbench.options import opt_of
from nasbench.registry import EVALUATORS
from nasbench.searchers import TrainEvaluator, TrialConfig
from nasbench.searchers.pruning import PRUNERS, make_pruner, reporter
from nasbench.searchers.train_eval import REPORT_IMAGES
from nasbench.searchers.trials_config import NSGA2Config, PNASConfig
from nasbench.spaces import get_space
from nasbench.spaces.nb201 import NB201Arch, NB201DeployConfig

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
       "nor_conv_3x3~2|"

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", input_size=16)


def budget(epochs: int = 3, steps: int = 4, **kw) -> TrialConfig:
    """Returns a ``--evaluate train`` config: ``epochs`` of ``steps`` steps of batch 32
    on digits (a second or so on a CPU)."""
    return TrialConfig.from_preset("quick", "random", **{
        "evaluate": "train", "space": "nb201", "dataset": "digits",
        "train_epochs": epochs, "train_max_steps": steps, "train_batch_size": 32,
        "train_learning_rate": 0.05, "threads": 1, **kw})


def evaluator(cfg, data, folder: Path) -> TrainEvaluator:
    space = get_space("nb201")(NB201DeployConfig(channels=4, cells=1, input_size=16))
    return TrainEvaluator(cfg, space, data, lambda arch: {"latency": 1.0},
                          cache_dir=folder)


# --------------------------------------------------------------------------------------
# the pruners and the reporter
# --------------------------------------------------------------------------------------


def test_make_pruner_builds_each_named_pruner():
    kinds = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
             "halving": optuna.pruners.SuccessiveHalvingPruner,
             "hyperband": optuna.pruners.HyperbandPruner}
    assert set(kinds) == set(PRUNERS)
    for name, kind in kinds.items():
        assert type(make_pruner(budget(7, pruner=name))) is kind, name
    assert type(make_pruner(TrialConfig())) is optuna.pruners.NopPruner   # the default
    band = make_pruner(budget(7, pruner="hyperband"))
    assert (band._min_resource, band._max_resource, band._reduction_factor) == (1, 7, 3)
    halving = make_pruner(budget(7, pruner="halving"))
    assert (halving._min_resource, halving._reduction_factor) == (1, 3)
    with pytest.raises(ValueError, match="unknown pruner"):
        make_pruner(type("Cfg", (), {"pruner": "bogus", "train_epochs": 3})())


def _finished(study, curve: list[float]) -> None:
    """Adds a completed trial whose epochs 1.. reported ``curve``."""
    t = study.ask()
    for epoch, acc in enumerate(curve, 1):
        reporter(t)(epoch, acc)
    study.tell(t, curve[-1])


def test_the_reporter_records_the_epoch_and_raises_when_the_pruner_says_so():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(
        n_startup_trials=1, n_warmup_steps=0))
    _finished(study, [80.0, 90.0])
    trial = study.ask()
    report = reporter(trial)
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        report(1, 10.0)
    assert study.trials[-1].intermediate_values == {1: 10.0}
    # a high one goes on, and so does a low one under no pruner
    report_ok = reporter(study.ask())
    assert report_ok(1, 95.0) is None
    free = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    _finished(free, [80.0, 90.0])
    assert reporter(free.ask())(1, 10.0) is None


def test_the_median_pruner_waits_for_five_curves_and_spares_the_first_epoch():
    study = optuna.create_study(direction="maximize",
                                pruner=make_pruner(budget(3, pruner="median")))
    for i in range(4):
        _finished(study, [60.0 + i, 80.0 + i])
    early = reporter(study.ask())
    early(1, 1.0)
    early(2, 1.0)                 # 4 finished curves: too few to judge
    _finished(study, [64.0, 84.0])
    poor = reporter(study.ask())
    assert poor(1, 1.0) is None   # the first epoch is never judged
    with pytest.raises(optuna.TrialPruned):
        poor(2, 1.0)


# --------------------------------------------------------------------------------------
# the train evaluator
# --------------------------------------------------------------------------------------


def test_a_reporter_gets_each_epoch_but_the_last_and_the_answer_is_unchanged(tmp_path,
                                                                          digits):
    arch = NB201Arch.from_str(CELL)
    calls = []
    ev = evaluator(budget(3), digits, tmp_path / "a")
    res = ev(arch, report=lambda epoch, acc: calls.append((epoch, acc)))
    assert [e for e, _ in calls] == [1, 2]          # the 3rd is the answer itself
    for _, acc in calls:
        assert 0.0 <= acc <= 100.0
        # a held-out accuracy: k / n on the first REPORT_IMAGES held-out images
        n = min(ev.val_n, REPORT_IMAGES)
        hits = acc * n / 100.0
        assert abs(hits - round(hits)) < 1e-6, (acc, n)
    assert (ev.trained, ev.stopped, ev.queries) == (1, 0, 1)
    # evaluating between epochs leaves the training alone: the same answer as without
    plain = evaluator(budget(3), digits, tmp_path / "b")
    assert plain(arch)["accuracy"] == res["accuracy"]
    assert plain.key(arch) == ev.key(arch)           # one cache entry serves both


def test_a_stopped_candidate_propagates_and_is_never_cached(tmp_path, digits):
    arch = NB201Arch.from_str(CELL)
    ev = evaluator(budget(3), digits, tmp_path)
    calls = []

    def prune(epoch, acc):
        calls.append(epoch)
        raise optuna.TrialPruned("poor")

    with pytest.raises(optuna.TrialPruned):
        ev(arch, report=prune)
    assert calls == [1]                              # training stopped at epoch 1
    assert not list(tmp_path.rglob("*.json")) and ev.cache == {}
    assert (ev.stopped, ev.trained, ev.queries) == (1, 0, 0)
    state = ev.state_dict()
    assert state["stopped"] == 1
    again = evaluator(budget(3), digits, tmp_path)
    again.load_state_dict(state)
    assert again.stopped == 1
    # another error of the reporter propagates too, and is no pruning
    with pytest.raises(RuntimeError):
        ev(arch, report=lambda epoch, acc: (_ for _ in ()).throw(RuntimeError("x")))
    assert ev.stopped == 1
    # a later run without a pruner trains it fully, and caches it
    res = again(arch)
    assert again.trained == 1 and again.cache_hits == 0
    assert len(list((tmp_path / "train-eval").glob("*.json"))) == 1
    assert res["cached"] is False and 0.0 <= res["accuracy"] <= 100.0


def test_a_cached_candidate_is_answered_without_reporting(tmp_path, digits):
    arch = NB201Arch.from_str(CELL)
    acc = evaluator(budget(3), digits, tmp_path)(arch)["accuracy"]

    def never(epoch, acc):
        raise AssertionError("reported a cached candidate")

    ev = evaluator(budget(3), digits, tmp_path)      # the disk cache
    assert ev(arch, report=never)["accuracy"] == acc
    assert ev(arch, report=never)["cached"] is True  # a repeat within the run
    assert (ev.trained, ev.cache_hits, ev.stopped) == (0, 2, 0)


# --------------------------------------------------------------------------------------
# the settings: one line, exit 2, nothing written
# --------------------------------------------------------------------------------------


def test_the_option_and_the_objectives():
    assert opt_of(TrialConfig, "pruner").choice_list() == list(PRUNERS)
    assert TrialConfig().pruner == "none"
    assert budget(3, pruner="median").pruner == "median"
    assert TrialConfig().is_multi_objective() is False
    assert PNASConfig().is_multi_objective() is False
    assert NSGA2Config().is_multi_objective() is True


@pytest.mark.parametrize("name", sorted(set(EVALUATORS.names()) - {"train"}))
def test_an_evaluator_that_does_not_train_refuses_a_pruner(name):
    assert not getattr(EVALUATORS.get(name), "prunable", False)
    kw = {"evaluate": name, "space": "nb201", "dataset": "digits", "train_epochs": 3}
    TrialConfig.from_preset("quick", "random", **kw)                # no pruner: fine
    with pytest.raises(UserError, match=f"needs --evaluate train, not --evaluate {name}"):
        TrialConfig.from_preset("quick", "random", pruner="median", **kw)


@pytest.fixture
def refuse_search(refuse, tmp_path):
    """Returns ``refuse_search(args) -> the error line`` for ``nasbench search ARGS``
    (conftest's ``refuse``: exit 2, one line, no traceback, nothing written)."""

    def run(args: list[str]) -> str:
        # a missing LUT ends the run at once should a bad setting slip through
        return refuse(["search", "--space", "nb201", "--dataset", "digits", "--references",
                       "none", "--out", str(tmp_path / "runs"), "--lut",
                       str(tmp_path / "missing-lut.json"), "--trials", "1", *args])

    return run


TRAIN = ["--evaluate", "train", "--train-epochs", "3"]


@pytest.mark.parametrize("args, says", [
    (["--method", "tpe", "--pruner", "bogus", *TRAIN],
     "--pruner must be one of none, median, halving, hyperband, got 'bogus'"),
    (["--method", "random", "--pruner", "median", "--evaluate", "table"],
     "--pruner stops training early: it needs --evaluate train"),
    (["--method", "evolution", "--pruner", "halving", "--evaluate", "zc"],
     "--pruner stops training early: it needs --evaluate train"),
    (["--method", "nsga2", "--pruner", "hyperband", *TRAIN],
     "--pruner serves single-objective searches: --method nsga2 runs a multi-objective"),
    (["--method", "random", "--pruner", "median", "--evaluate", "train",
      "--train-epochs", "1"], "--train-epochs 2 or more"),
], ids=["unknown", "table", "zc", "nsga2", "one-epoch"])
def test_the_cli_refuses_a_pruner_it_cannot_use(refuse_search, args, says):
    assert says in refuse_search(args)
