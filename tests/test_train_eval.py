"""``--evaluate train``: each multi-trial candidate trained with the run's retrain
budget on the training half, scored on the held-out half (never the test split), cached
on disk by architecture, data, budget and seed."""

import dataclasses
import json
from types import SimpleNamespace

import pytest

from nasbench.data import load_dataset
from nasbench.errors import UserError
from nasbench.searchers import TrainEvaluator, TrialConfig
from nasbench.searchers.evaluate import EVALUATORS
from nasbench.spaces import get_space
from nasbench.spaces.darts_cells import DeployConfig
from nasbench.spaces.nb201 import NB201Arch, NB201DeployConfig
from nasbench.spaces.proxyless_blocks import ProxylessDeployConfig

#: NAS-Bench-201's best-known CIFAR cell (3x3 convs on most edges)
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
       "nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", input_size=16)


def budget(steps: int = 40, **kw) -> TrialConfig:
    """Returns a multi-trial config with ``--evaluate train`` and a budget of ``steps``
    steps of batch 32 on digits."""
    return TrialConfig.from_preset("quick", "random", **{
        "evaluate": "train", "space": "nb201", "dataset": "digits", "train_epochs": 1,
        "train_max_steps": steps, "train_batch_size": 32, "train_learning_rate": 0.05,
        "threads": 1, **kw})


def nb201(channels: int = 8, cells: int = 1):
    return get_space("nb201")(NB201DeployConfig(channels=channels, cells=cells,
                                                input_size=16))


def flat_cost(arch) -> dict:
    return {"latency": 1.0}


def test_registered_and_allowed_on_every_space():
    assert EVALUATORS["train"] is TrainEvaluator
    for space in ("nb201", "darts", "proxyless"):
        cfg = budget(space=space)
        assert cfg.evaluate == "train" and cfg.space == space
    with pytest.raises(UserError, match="--train-epochs 1 or more"):
        budget(space="darts", train_epochs=0)


def test_a_real_cell_learns_digits_above_chance(tmp_path, digits):
    # 3 epochs of the 748-image training half at batch 32: 72 steps, about 2 s
    ev = TrainEvaluator(budget(100, train_epochs=3), nb201(), digits, flat_cost,
                        cache_dir=tmp_path)
    arch = NB201Arch.from_str(CELL)
    res = ev(arch)
    assert res["cost"] == {"latency": 1.0} and res["cached"] is False
    assert res["accuracy"] > 50.0, res            # chance is 10 % (measured: 83 %)
    assert (ev.queries, ev.trained, ev.cache_hits) == (1, 1, 0)
    assert ev.val_n == len(digits.search_splits(0.5, ev.cfg.seed)[1])
    assert ev(arch)["cached"] is True and ev.cache_hits == 1    # a repeat: free
    rec = json.loads(next((tmp_path / "train-eval").iterdir()).read_text())
    assert rec["accuracy"] == res["accuracy"] and rec["steps"] == 72
    assert "held-out" in ev.signal and "test split" in ev.signal


def test_the_disk_cache_answers_another_evaluator(tmp_path, digits, monkeypatch):
    arch = NB201Arch.from_str(CELL)
    first = TrainEvaluator(budget(3), nb201(), digits, flat_cost, cache_dir=tmp_path)
    acc = first(arch)["accuracy"]

    def no_training(self, arch):
        raise AssertionError("trained although cached")

    second = TrainEvaluator(budget(3), nb201(), digits, flat_cost, cache_dir=tmp_path)
    monkeypatch.setattr(TrainEvaluator, "accuracy", no_training)
    assert second(arch)["accuracy"] == acc
    assert (second.queries, second.trained, second.cache_hits) == (1, 0, 1)
    # resume: the run's answers come back with the checkpoint
    third = TrainEvaluator(budget(3), nb201(), digits, flat_cost, cache_dir=tmp_path)
    third.load_state_dict(second.state_dict())
    assert third(arch)["cached"] is True


def test_the_key_follows_the_budget_data_network_and_seed(tmp_path, digits):
    arch = NB201Arch.from_str(CELL)
    key = TrainEvaluator(budget(3), nb201(), digits, flat_cost, cache_dir=tmp_path).key
    assert key(arch) == TrainEvaluator(budget(3), nb201(), digits, flat_cost,
                                       cache_dir=tmp_path).key(arch)
    others = [TrainEvaluator(budget(4), nb201(), digits, flat_cost, cache_dir=tmp_path),
              TrainEvaluator(budget(3, train_learning_rate=0.1), nb201(), digits,
                             flat_cost, cache_dir=tmp_path),
              TrainEvaluator(budget(3, seed=7), nb201(), digits, flat_cost,
                             cache_dir=tmp_path),
              TrainEvaluator(budget(3), nb201(channels=4), digits, flat_cost,
                             cache_dir=tmp_path),
              TrainEvaluator(budget(3), nb201(), load_dataset("digits", input_size=8),
                             flat_cost, cache_dir=tmp_path)]
    keys = {ev.key(arch) for ev in others}
    assert len(keys) == len(others) and key(arch) not in keys
    other_cell = NB201Arch.from_str(CELL.replace("skip_connect", "none"))
    assert key(other_cell) != key(arch)


def test_a_damaged_cache_entry_is_one_line_naming_it(tmp_path, digits):
    arch = NB201Arch.from_str(CELL)
    ev = TrainEvaluator(budget(2), nb201(), digits, flat_cost, cache_dir=tmp_path)
    path = tmp_path / "train-eval" / f"{ev.key(arch)}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"accuracy": ')
    with pytest.raises(UserError, match="train-evaluator cache entry .*damaged.*delete it"):
        ev(arch)
    assert str(path) in str(pytest.raises(UserError, ev, arch).value)


@pytest.mark.parametrize("name", ["darts", "proxyless"])
def test_darts_and_proxyless_candidates_train(tmp_path, digits, name):
    import random
    deploy = (DeployConfig(channels=4, layers=3, input_size=16) if name == "darts" else
              ProxylessDeployConfig.from_layout("cifar", width_mult=0.25, input_size=16))
    space = get_space(name)(deploy)
    arch = space.sample(random.Random(0))
    ev = TrainEvaluator(budget(2, space=name), space, digits, flat_cost,
                        cache_dir=tmp_path)
    res = ev(arch)
    assert 0.0 <= res["accuracy"] <= 100.0 and ev.trained == 1


def test_from_run_builds_the_deploy_network_at_the_training_input(tmp_path, digits,
                                                                  monkeypatch):
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path))
    space = get_space("nb201")(NB201DeployConfig(channels=8, cells=1, input_size=32))
    ctx = SimpleNamespace(space=space, data=digits, device="cpu", channels_last=False,
                          predictor=SimpleNamespace(cost=flat_cost), log=print)
    ev = EVALUATORS["train"].from_run(budget(2), ctx)
    assert ev.space.deploy == dataclasses.replace(space.deploy, input_size=16)
    assert ev.folder == tmp_path / "train-eval"
    assert ev.cost is ctx.predictor.cost
