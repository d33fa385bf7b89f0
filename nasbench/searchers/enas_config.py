"""ENAS's settings and declaration (light: read by ``nasbench search --help``); the
algorithm: :mod:`.enas`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nasbench.errors import UserError
from nasbench.options import option
from nasbench.registry import declare_searcher
from nasbench.searchers.darts_config import SupernetConfig


@dataclass
class ENASConfig(SupernetConfig):
    """The ENAS settings on top of :class:`~nasbench.searchers.darts_config.SupernetConfig`: the
    shared weights' SGD (lr 0.05 cosine to 5e-4, ENAS's), the controller (LSTM hidden
    size, Adam learning rate, temperature and tanh constant of its logits, steps per
    epoch and samples per step), REINFORCE's entropy weight and baseline decay, the
    soft target's exponent, and the derivation's samples and validation batches.

    ``quick`` (the default): about a minute of search on a quiet 2-core CPU on digits
    (C=8, 5 cells; nb201: C=8, N=2), 10 epochs of 20 weight steps and 10 controller
    steps of 2 samples, an Adam learning rate of 1e-2 (as DARTS's quick preset, so that
    100 steps can move the policy; ENAS's 3.5e-4 moves it by nothing in that budget),
    100 derivation samples scored on 4 validation batches.
    ``paper``: ENAS's CIFAR-10 micro search (C=20, 8 cells: 6 normal + 2 reduction,
    150 epochs of batch 160, lr 0.05 cosine to 5e-4, 30 controller steps of 10 samples
    per epoch, Adam 3.5e-4, temperature 5, tanh constant 1.1) and its 630-epoch retrain
    (batch 144, drop path 0.4, auxiliary 0.4, cutout 16); nb201: the NAS-Bench-201
    supernet itself (C=16, N=5) and that benchmark's retrain."""

    #: why an option of another method does not apply here (``nasbench search``)
    FOREIGN_HINTS: ClassVar[dict[str, str]] = {
        "cost_weight": "enas's reward is MnasNet's acc x (lat/target)^w: give "
                       "--latency-target (and --soft-target)"}

    method: str = "enas"
    epochs: int = 10
    learning_rate: float = 0.05
    learning_rate_min: float = 0.0005
    controller_hidden: int = option(100, "The controller LSTM's hidden size.", min=1)
    controller_lr: float = option(3e-4, "The controller's Adam learning rate (quick "
                                  "1e-2, paper 3.5e-4).", gt=0)
    controller_temperature: float = 5.0
    controller_tanh: float = 1.1          # 0: no tanh squashing
    controller_steps: int = option(10, "Controller steps per epoch, after the weight "
                                   "steps.", min=0)
    controller_aggregate: int = option(2, "Sampled architectures per controller step.",
                                       min=1)
    entropy_weight: float = option(1e-4, "REINFORCE's entropy bonus.", min=0)
    baseline_decay: float = option(0.99, "Decay of the reward's moving-average "
                                   "baseline.", min=0, max=1)
    soft_exponent: float = -0.07          # soft target: acc x (lat/target)^w (MnasNet)
    derive_samples: int = option(100, "Architectures sampled from the trained "
                                 "controller to pick from.", min=1)
    derive_batches: int = 4

    @classmethod
    def preset_values(cls, preset: str, method: str) -> dict:
        """Returns what a preset changes: ``quick`` the larger controller learning rate,
        ``paper`` ENAS's micro search and retrain (see the class doc)."""
        if preset != "paper":
            return {"controller_lr": 1e-2}
        return dict(channels=20, layers=8, epochs=150, steps_per_epoch=None,
                    batch_size=160, learning_rate=0.05, learning_rate_min=0.0005,
                    controller_lr=3.5e-4, controller_steps=30, controller_aggregate=10,
                    derive_samples=1000, derive_batches=1, train_epochs=630,
                    train_max_steps=None, train_batch_size=144, train_learning_rate=0.05,
                    train_channels=None, train_layers=None, auxiliary_weight=0.4,
                    drop_path_prob=0.4, cutout=16, dataset="cifar10", references="")

    def check(self) -> None:
        """Raises UserError (one line) for an out-of-range or unknown setting."""
        if not self.supports_space(self.space):
            from nasbench.spaces.base import supernet_spaces
            raise UserError(f"--method enas trains single paths of a DARTS-style supernet "
                            f"(--space {' or '.join(supernet_spaces())}); the {self.space} "
                            f"space has none here (its own searchers sample single paths, "
                            f"e.g. --method proxyless --grad-estimator reinforce)")
        super().check()
        checks = (("controller-hidden", self.controller_hidden >= 1, "a positive integer"),
                  ("controller-lr", self.controller_lr > 0, "positive"),
                  ("controller-temperature", self.controller_temperature > 0, "positive"),
                  ("controller-tanh", self.controller_tanh >= 0, ">= 0 (0: off)"),
                  ("controller-steps", self.controller_steps >= 0, ">= 0"),
                  ("controller-aggregate", self.controller_aggregate >= 1, "positive"),
                  ("entropy-weight", self.entropy_weight >= 0, ">= 0"),
                  ("baseline-decay", 0 <= self.baseline_decay < 1, "in [0, 1)"),
                  ("derive-samples", self.derive_samples >= 1, "positive"),
                  ("derive-batches", self.derive_batches >= 1, "positive"))
        for name, ok, what in checks:
            if not ok:
                raise UserError(f"--{name} must be {what}, got "
                                f"{getattr(self, name.replace('-', '_'))}")

    def headline(self) -> str:
        where = "" if self.space == SupernetConfig.space else f" on {self.space}"
        return f"enas (LSTM {self.controller_hidden}){where}"


declare_searcher("enas", config=ENASConfig, impl="nasbench.searchers.enas:ENASSearcher",
                 summary="ENAS: an LSTM controller samples single paths of a shared "
                         "supernet, trained by REINFORCE (darts or nb201).")
