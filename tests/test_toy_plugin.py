"""A new space and a new searcher cost one file each: a toy space and a toy searcher,
registered here alone (no change to the package), run end to end through the real
runner: run directory, Ctrl-C and resume, result.json, report."""

import json
import random
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import nasbench.luts
from nasbench.config import RunConfig
from nasbench.errors import UserError
from nasbench.run.runner import run_search
from nasbench.searchers import SEARCHERS, Outcome, Searcher, register_searcher
from nasbench.spaces import SPACES, SearchSpace, Slot, get_space, register_space
from nasbench.spaces.darts import OpInstance
from profilers.lut import LUT, full_key
from tests.conftest import make_entry
from tests.test_runner import fake_measure  # noqa: F401 - the fixture

OPS = ("skip_connect", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3")
COST = {"skip_connect": 0.1, "max_pool_3x3": 0.5, "avg_pool_3x3": 0.6, "sep_conv_3x3": 2.0,
        "stem": 1.0, "gap_linear": 0.2}


@dataclass(frozen=True)
class ToyDeploy:
    """A chain of ``depth`` searchable ops on ``channels`` channels between a stem and
    a head."""

    depth: int = 3
    channels: int = 4
    input_size: int = 8
    in_channels: int = 3
    num_classes: int = 10
    batches: tuple = (1,)
    dtype: str = "float32"

    def describe(self) -> dict:
        return {"space": "toy", "depth": self.depth, "channels": self.channels,
                "input_size": self.input_size, "in_channels": self.in_channels,
                "num_classes": self.num_classes}


class ToySpace(SearchSpace):
    candidate_ops = OPS
    arch_type = tuple

    def _at(self, op):
        d = self.deploy
        return OpInstance(op, d.channels, d.channels, d.input_size, d.input_size)

    def slots(self):
        return [Slot(f"op/{i}", OPS) for i in range(self.deploy.depth)]

    def slot_instances(self, slot, op):
        return [self._at(op)]

    def fixed_instances(self):
        d = self.deploy
        return [OpInstance("stem", d.in_channels, d.channels, d.input_size, d.input_size),
                OpInstance("gap_linear", d.channels, d.num_classes, d.input_size,
                           d.input_size)]

    def picks(self, arch):
        return list(enumerate(arch))

    def with_picks(self, arch, picks):
        return tuple(op for _, op in picks)

    def build(self, arch, **_):
        stem, head = self.fixed_instances()
        mods = [stem] + [self._at(op) for op in arch] + [head]
        return nn.Sequential(*(m.build() for m in mods)).eval()

    def anchor_instance(self):
        return self._at("sep_conv_3x3")

    def sample(self, rng):
        return tuple(rng.choice(OPS) for _ in range(self.deploy.depth))

    def choices(self):
        return {f"op/{i}": list(OPS) for i in range(self.deploy.depth)}

    def encode(self, arch):
        return {f"op/{i}": op for i, op in enumerate(arch)}

    def decode(self, values):
        return tuple(values[f"op/{i}"] for i in range(self.deploy.depth))

    @classmethod
    def arch_to_dict(cls, arch):
        return {"space": "toy", "ops": list(arch)}

    @classmethod
    def arch_from_dict(cls, d):
        return tuple(d["ops"])

    @classmethod
    def summary(cls, arch):
        return " > ".join(arch)


@dataclass
class ToyConfig(RunConfig):
    method: str = "toy-random"
    space: str = "toy"
    METHODS = ("toy-random",)
    samples: int = 3                      # architectures drawn per epoch
    depth: int = 3

    def deploy(self, num_classes=10, in_channels=3):
        return ToyDeploy(self.depth, 4, self.data_input_size, in_channels, num_classes,
                         (self.deploy_batch,))


class ToyRandom(Searcher):
    """Random search by predicted latency: keeps the cheapest of the samples."""

    config_class = ToyConfig

    def setup(self, ctx):
        super().setup(ctx)
        self.rng = random.Random(ctx.config.seed)
        self.step, self.seen, self.best = 0, [], None

    @property
    def steps_per_epoch(self):
        return self.ctx.config.samples

    def run_epoch(self, epoch, on_step):
        while self.step < self.steps_per_epoch:
            arch = self.ctx.space.sample(self.rng)
            cost = self.ctx.predictor.cost(arch)["latency"]
            self.seen.append({"epoch": epoch, "arch": self.ctx.space.arch_to_dict(arch),
                              "predicted_ms": cost})
            if self.best is None or cost < self.best[1]:
                self.best = (arch, cost)
            self.step += 1
            on_step(self.step)
        self.step = 0
        return {"epoch": epoch, "best_ms": self.best[1], "seen": len(self.seen)}

    def result(self):
        return Outcome(self.best[0])

    def visited(self):
        return list(self.seen)

    def state_dict(self):
        return {"sample_rng": self.rng.getstate(), "step": self.step, "seen": self.seen,
                "best": self.best}

    def load_state_dict(self, state):
        self.rng.setstate(state["sample_rng"])
        self.step, self.seen, self.best = state["step"], state["seen"], state["best"]


@pytest.fixture
def toy(fake_measure):  # noqa: F811 - the imported fixture, requested
    register_space("toy")(ToySpace)
    register_searcher("toy-random")(ToyRandom)

    yield
    SPACES.pop("toy", None)
    SEARCHERS.pop("toy-random", None)


def toy_config(tmp_path, **kw):
    cfg = ToyConfig.from_preset("quick", "toy-random", **{
        "dataset": "synthetic", "input_size": 8, "epochs": 3, "train_epochs": 1,
        "train_max_steps": 2, "train_batch_size": 16, "threads": 1, "references": "",
        "out": str(tmp_path / "runs"), **kw})
    deploy = cfg.deploy()
    space = get_space("toy")(deploy)
    dev = nasbench.luts.get_device("cpu").to_dict()
    entries = {full_key(i.key, 1): make_entry(i.key, 1, COST[i.op])
               for i in space.enumerate_instances()}
    path = tmp_path / "toy-lut.json"
    LUT({"device": dev, "deploy": deploy.describe(), "batches": [1]}, entries).save(path)
    return cfg.replace(lut=str(path))


def test_toy_space_and_searcher_run_end_to_end(tmp_path, toy):
    cfg = toy_config(tmp_path, latency_target_ms=2.0)
    full = run_search(cfg, quiet=True)
    assert full.status == "complete" and full.space == "toy"
    d = full.run_dir
    for f in ("config.json", "lut.json", "search.log", "history.json", "checkpoint.pt",
              "genotype.json", "result.json", "report.html"):
        assert (d / f).is_file(), f
    res = json.loads((d / "result.json").read_text())
    assert res["genotype"]["space"] == "toy" and len(res["genotype"]["ops"]) == 3
    # the prediction is the LUT sum over the instances the space places
    ops = res["genotype"]["ops"]
    assert res["predicted"]["latency_ms"] == pytest.approx(
        COST["stem"] + COST["gap_linear"] + sum(COST[o] for o in ops))
    # the searcher kept the cheapest of what it saw, and the report gets all it saw
    assert len(res["visited"]) == 9
    assert res["predicted"]["latency_ms"] == pytest.approx(
        min(v["predicted_ms"] for v in res["visited"]))
    assert res["target"]["met"] == (res["predicted"]["latency_ms"] <= 2.0)
    assert res["candidates"][0]["space"] == "toy"
    assert res["params"]["torch"] > 0 and res["measured"]["latency_ms"]["median"] == 1.0
    assert "toy-random" in (d / "report.html").read_text()

    # Ctrl-C in the middle of the second epoch, then in the retrain; resume finishes
    # with what the uninterrupted run found
    part = run_search(cfg, quiet=True, _interrupt_after_steps=5)
    assert part.status == "interrupted"
    mid = torch.load(part.run_dir / "checkpoint.pt", weights_only=False)
    assert (mid["phase"], mid["epoch"], mid["step"]) == ("search", 1, 2)
    again = run_search(None, resume=part.run_dir, quiet=True, _interrupt_after_steps=5)
    assert again.status == "interrupted"
    done = run_search(None, resume=part.run_dir, quiet=True)
    assert done.status == "complete" and done.genotype == full.genotype
    assert json.loads((done.run_dir / "result.json").read_text())["visited"] == res["visited"]


def test_hard_target_repair_is_the_runners(tmp_path, toy):
    """A searcher without scores still gets the shared hard-target repair."""
    cfg = toy_config(tmp_path, latency_target_ms=1.55, epochs=1, samples=1, seed=0)
    r = run_search(cfg, quiet=True)
    assert r.target["hard"] and r.target["met"] and r.predicted["latency_ms"] <= 1.55
    assert r.target["repaired"] == bool(r.target["swaps"])
    assert json.loads((r.run_dir / "genotype.json").read_text())["genotype"]["space"] == "toy"


def test_unknown_space_and_method_are_one_line_errors(tmp_path, toy):
    with pytest.raises(UserError, match="unknown search space 'nope'.*toy"):
        get_space("nope")
    cfg = toy_config(tmp_path).replace(method="nope")
    with pytest.raises(UserError, match="method must be one of toy-random"):
        run_search(cfg, quiet=True)
