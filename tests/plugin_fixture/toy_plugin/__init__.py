"""A plugin package, as another project would ship it: a search space, a searcher with
an option of its own and an evaluator, each registered by decorator when this module is
imported. ``tests/test_plugin_package.py`` declares it through entry points (a
``toy_plugin-0.1.dist-info`` folder beside it on ``sys.path``) and runs it through the
real ``nasbench`` command line; nothing here is imported by nasbench itself.

Deploy network: a stem, ``depth`` searchable ops on ``channels`` channels, a head.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from torch import nn

from nasbench.config import RunConfig
from nasbench.options import option
from nasbench.registry import EVALUATORS
from nasbench.searchers.base import Outcome, Searcher, register_searcher
from nasbench.searchers.evaluate import register_evaluator
from nasbench.spaces.base import OpInstance, SearchSpace, Slot, register_space

OPS = ("skip_connect", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3")
DEPTH, CHANNELS = 3, 4


@dataclass(frozen=True)
class ToyDeploy:
    """The deploy network of the toy space (what a LUT of it describes)."""

    input_size: int = 8
    in_channels: int = 3
    num_classes: int = 10
    batches: tuple = (1,)
    depth: int = DEPTH
    channels: int = CHANNELS
    dtype: str = "float32"

    def describe(self) -> dict:
        return {"space": "toy", "depth": self.depth, "channels": self.channels,
                "input_size": self.input_size, "in_channels": self.in_channels,
                "num_classes": self.num_classes}


@register_space("toy")
class ToySpace(SearchSpace):
    """A chain of searchable ops between a stem and a head."""

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


@register_evaluator("toyeval")
class ToyEvaluator:
    """Judges a candidate by its predicted cost alone (no accuracy)."""

    def __init__(self, cost):
        self.cost, self.queries, self.cache_hits = cost, 0, 0

    @classmethod
    def from_run(cls, cfg, ctx):
        return cls(ctx.predictor.cost)

    def __call__(self, arch) -> dict:
        self.queries += 1
        return {"accuracy": None, "cost": self.cost(arch), "cached": False}


@dataclass
class ToyConfig(RunConfig):
    """The toy searcher's settings: the shared ones plus ``toy_option``."""

    METHODS = ("toy",)
    method: str = "toy"
    space: str = "toy"
    measure: bool = False                 # no on-device measurement (tests)
    evaluate: str = option("toyeval", "The evaluator that judges a candidate.",
                           choices=lambda: EVALUATORS.names())
    toy_option: int = option(1, "How many architectures to draw per epoch.", min=1)

    def deploy(self, num_classes=10, in_channels=3):
        return ToyDeploy(self.input_size or 32, in_channels, num_classes,
                         (self.deploy_batch,))


@register_searcher("toy")
class ToySearcher(Searcher):
    """Random search by the evaluator's latency: keeps the cheapest sample."""

    config_class = ToyConfig

    def setup(self, ctx):
        super().setup(ctx)
        self.rng = random.Random(ctx.config.seed)
        self.step, self.seen, self.best = 0, [], None

    @property
    def steps_per_epoch(self):
        return self.ctx.config.toy_option

    def run_epoch(self, epoch, on_step):
        while self.step < self.steps_per_epoch:
            arch = self.ctx.space.sample(self.rng)
            cost = self.ctx.evaluator(arch)["cost"]["latency"]
            self.seen.append({"epoch": epoch, "arch": self.ctx.space.arch_to_dict(arch),
                              "predicted_ms": cost})
            if self.best is None or cost < self.best[1]:
                self.best = (arch, cost)
            self.step += 1
            on_step(self.step)
        self.step = 0
        return {"epoch": epoch, "toy_option": self.ctx.config.toy_option,
                "evaluator": type(self.ctx.evaluator).__name__,
                "queries": self.ctx.evaluator.queries, "best_ms": self.best[1]}

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
