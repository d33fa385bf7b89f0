"""Search configuration: one dataclass with every setting, and two presets.

``quick`` (the default) runs the whole job - profile, search, retrain, measure, four
references, report - in under 5 minutes on a 2-core CPU on digits, with every network
at 96-99 % test accuracy (measured 2026-12-03: 259 s; the closing note of the accuracy
issue has the figures). Where the time goes, and why:

* digits are 8x8 images: they are loaded and trained at 16x16 (``train_input_size``;
  4x cheaper steps than 32x32), while the cost is always that of the deploy network
  (``eval_channels``/``eval_layers``/``input_size``/``deploy_batch``, default the DARTS
  evaluation network C=36, 20 cells, 32x32, batch 1), predicted and measured at its
  own size; other data sets train at the deploy input;
* search network C=8, 5 cells, 32 images per batch, 3 epochs of at most 20 steps (about
  1.1 s per DARTS step at 16x16 on 2 cores): its validation accuracy reaches ~85-90 %
  on digits, so the alphas follow accuracy, not only the cost term;
* a larger architecture learning rate (1e-2 instead of 3e-4) so that 60 Adam steps
  can move the alphas by a meaningful amount (Adam moves each alpha by about lr per
  step whatever the gradient's scale);
* the derived architecture is retrained for 4 epochs of at most 50 steps of batch 32
  (188 steps on digits) at lr 0.05 cosine, at C=16, 8 cells (``train_channels``/
  ``train_layers``): enough steps for BatchNorm's running statistics to settle (30
  steps were not: 12 % in eval mode, 59 % in train mode);
* four reference networks (ResNet-20, MobileNetV2, DARTS_V2, PC-DARTS) get the same
  retrain budget and are measured on the same device, for the report's context
  (cached: a second run with the same budget reuses them; ``references=""`` skips).

``paper`` is the DARTS paper's CIFAR-10 setting (Liu et al., 2019): C=16, 8 cells, 50
epochs, batch 64, SGD lr 0.025 cosine to 0.001, momentum 0.9, wd 3e-4, Adam 3e-4
betas (0.5, 0.999) wd 1e-3 for alpha, grad clip 5; retrain C=36, 20 cells, 600 epochs,
batch 96, cutout 16, drop path 0.2, auxiliary weight 0.4. With ``method="pcdarts"`` it
is the PC-DARTS paper's setting instead: K=4, batch 256, lr 0.1 cosine to 0, arch lr
6e-4, 15 warm-up epochs that train only the weights.

Every field can be overridden: ``DARTSConfig.from_preset("quick", "darts", epochs=5)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasbench.config import (  # noqa: F401 - re-exported
    COST_METRICS,
    DATASETS,
    DictConfig,
    RunConfig,
    parse_latency,
    parse_objective,
)
from nasbench.errors import UserError
from nasbench.options import option
from nasbench.registry import SPACES, declare_searcher

ORDERS = ("first", "second")
#: anti-collapse remedies (:mod:`nasbench.searchers.darts`)
ANTI_COLLAPSE = ("none", "beta", "pt")
#: the latency-target forms (:data:`nasbench.oneshot.cost.TARGET_FORMS`; kept here as
#: names so that the CLI's help needs no torch)
TARGET_FORMS = ("hinge", "absolute", "multiplicative")
PRESETS = ("quick", "paper")


@dataclass
class SupernetConfig(RunConfig):
    """The settings every searcher that trains a space's supernet (``darts``, ``nb201``:
    :meth:`~nasbench.spaces.base.SearchSpace.supernet`) shares, on top of
    :class:`~nasbench.config.RunConfig`: the search network's size and its weight
    optimiser (SGD, cosine from ``learning_rate`` to ``learning_rate_min`` over the
    epochs), the deploy network's size and the size of the retrained copy. DARTS and ENAS
    add their own fields by subclassing it.

    Units: learning rates per step, sizes in pixels/channels."""

    space: str = "darts"
    # search network
    channels: int = option(8, "Search network initial channels.", min=1)
    layers: int = option(5, "Search network cells.", min=1)
    steps: int = 4
    multiplier: int = 4
    stem_multiplier: int = 3
    learning_rate: float = 0.025
    learning_rate_min: float = 0.001
    weight_decay: float = 3e-4
    # deploy network (what the cost describes)
    eval_channels: int = option(36, "Deploy network: initial channels.", min=1)
    eval_layers: int = option(20, "Deploy network: cells (nb201: cells per stage).",
                              min=1)
    # size of the retrained copy of the derived network
    train_channels: int | None = 16       # None: eval_channels
    train_layers: int | None = 8          # None: eval_layers
    auxiliary_weight: float = 0.0         # > 0 adds the DARTS auxiliary head
    drop_path_prob: float = 0.0

    @classmethod
    def space_values(cls, space: str, preset: str, method: str) -> dict:
        """Returns what the space changes on top of the preset (its
        :meth:`~nasbench.spaces.base.SearchSpace.supernet_settings`, e.g. nb201's
        network size), restricted to this config's fields."""
        from dataclasses import fields

        from nasbench.spaces import get_space
        if space not in SPACES:
            return {}                           # validate() names the spaces it takes
        names = {f.name for f in fields(cls)}
        return {k: v for k, v in get_space(space).supernet_settings(preset, method).items()
                if k in names}

    def check(self) -> None:
        """Raises UserError (one line) for an out-of-range or unknown setting."""
        super().check()
        if not self.supports_space(self.space):
            from nasbench.spaces.base import supernet_spaces
            raise UserError(f"--method {self.method} searches the spaces "
                            f"{', '.join(supernet_spaces())} (their supernets), not "
                            f"{self.space!r}")
        for name in ("steps", "multiplier"):     # the sizes are declared options
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        self.space_class().check_supernet(self.layers, self.eval_layers)
        if self.multiplier > self.steps:
            raise UserError("multiplier cannot exceed the number of nodes (steps)")
        if not self.learning_rate > 0:
            raise UserError(f"learning_rate must be positive, got {self.learning_rate}")

    @classmethod
    def supports_space(cls, space: str) -> bool:
        """Returns whether this config's searchers run on ``space``: those with a
        supernet."""
        from nasbench.spaces import get_space
        return get_space(space).has_supernet()

    def space_class(self):
        """Returns the registered class of this config's space."""
        from nasbench.spaces import get_space
        return get_space(self.space)

    def deploy(self, num_classes: int = 10, in_channels: int = 3):
        """Returns the deploy config of the network whose cost is optimised (the
        space's :meth:`~nasbench.spaces.base.SearchSpace.supernet_deploy`:
        ``eval_channels``/``eval_layers`` are its size)."""
        return self.space_class().supernet_deploy(
            channels=self.eval_channels, cells=self.eval_layers, input_size=self.input_size,
            in_channels=in_channels, num_classes=num_classes, batch=self.deploy_batch,
            steps=self.steps, multiplier=self.multiplier,
            stem_multiplier=self.stem_multiplier)

    def train_size(self) -> dict:
        """Returns the retrained copy's size (C, cells): smaller than the deploy network
        in the quick preset; the accuracy is that copy's, the cost the deploy network's.
        A space that retrains its deploy network itself (nb201): {}."""
        if self.space_class().retrains_deploy:
            return {}
        return {"C": self.train_channels or self.eval_channels,
                "num_cells": self.train_layers or self.eval_layers}

    def train_build_options(self) -> dict:
        """Returns the retrained copy's size, auxiliary head and drop-path rate."""
        if self.space_class().retrains_deploy:
            return {}
        return {**self.train_size(), "auxiliary": self.auxiliary_weight > 0,
                "drop_path_prob": self.drop_path_prob, "input_size": self.data_input_size}

    def retrain_epoch(self, net, epoch: int) -> dict:
        """Ramps the drop-path rate linearly over the retrain (the DARTS code's rule) and
        adds the auxiliary head's loss weight."""
        if self.space_class().retrains_deploy:
            return {}
        net.drop_path_prob = self.drop_path_prob * epoch / self.train_epochs
        return {"auxiliary_weight": self.auxiliary_weight}



@dataclass
class DARTSConfig(SupernetConfig):
    """The DARTS / PC-DARTS settings on top of :class:`SupernetConfig`: the method, the
    order of the architecture step, PC-DARTS's K, the architecture optimiser and the
    cost weight.

    Units: learning rates per step."""

    method: str = "darts"                 # darts | pcdarts
    order: str = option("first", "first or second (unrolled, DARTS eq. 7-8) order "
                        "architecture step.", choices=ORDERS)
    partial_k: int = 4                    # PC-DARTS only
    arch_learning_rate: float = 1e-2
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    # cost
    cost_weight: float | None = option(None, "Weight of the cost term, or the exponent "
                                       "beta of --target-form multiplicative (default "
                                       "0.1; with a latency target: the form's, see "
                                       "docs/search-darts.md).", min=0)
    target_form: str | None = option(None, "How a latency target enters the loss: hinge "
                                     "(the excess), absolute (TuNAS: |E/T - 1|) or "
                                     "multiplicative (ProxylessNAS: CE x (E/T)^beta) "
                                     "(default: hinge).", choices=TARGET_FORMS)
    warmup_epochs: int = option(0, "Weight-only epochs before the search epochs (the "
                                "alphas stay uniform).", min=0)
    anti_collapse: str = option("none", "Remedy against the parameter-free collapse: "
                                "none, beta (beta-DARTS's regulariser) or pt (DARTS-PT: "
                                "ops chosen by how much removing them hurts; nb201).",
                                choices=ANTI_COLLAPSE)
    beta_weight: float = option(1.0, "--anti-collapse beta: the regulariser's final "
                                "weight (ramped linearly from 0 over the search "
                                "epochs).", min=0)
    pt_batches: int = option(8, "--anti-collapse pt: validation batches each "
                             "perturbation is scored on.", min=1)

    # ---- presets ------------------------------------------------------------------------

    @classmethod
    def preset_values(cls, preset: str, method: str) -> dict:
        """Returns what ``paper`` changes: the DARTS (or PC-DARTS) paper's setting."""
        if preset != "paper":
            return {}
        base = dict(channels=16, layers=8, epochs=50, steps_per_epoch=None, batch_size=64,
                    learning_rate=0.025, learning_rate_min=0.001, arch_learning_rate=3e-4,
                    train_epochs=600, train_max_steps=None, train_batch_size=96,
                    train_learning_rate=0.025,
                    train_channels=None, train_layers=None, auxiliary_weight=0.4,
                    drop_path_prob=0.2, cutout=16, dataset="cifar10",
                    references="")  # 600-epoch retrains of references: opt in
        if method == "pcdarts":
            # the paper's 50 epochs: 15 of weights only, then 35 of search
            base.update(partial_k=4, batch_size=256, learning_rate=0.1, epochs=35,
                        learning_rate_min=0.0, arch_learning_rate=6e-4, warmup_epochs=15)
        return base

    # ---- helpers ------------------------------------------------------------------------

    def check(self) -> None:
        """Raises UserError (one line) for an out-of-range or unknown setting."""
        super().check()
        if self.partial_k < 1:
            raise UserError(f"partial_k must be positive, got {self.partial_k}")
        if self.method == "pcdarts" and self.channels % self.partial_k:
            raise UserError(f"PC-DARTS needs channels ({self.channels}) divisible by K "
                            f"({self.partial_k})")
        if not self.arch_learning_rate > 0:
            raise UserError(f"arch_learning_rate must be positive, got "
                            f"{self.arch_learning_rate}")
        if self.target_form is not None and self.latency_target_ms is None:
            raise UserError("--target-form shapes a latency target: give "
                            "--latency-target too")
        if self.warmup_epochs > self.epochs:
            raise UserError(f"--warmup-epochs {self.warmup_epochs} is longer than the "
                            f"search (--epochs {self.epochs}): warm-up epochs come before "
                            f"the search epochs")
        if self.anti_collapse == "pt" and not self.space_class().derives_from_scores:
            raise UserError(f"--anti-collapse pt needs a space whose cells derive from "
                            f"per-op scores (nb201), not {self.space!r}")

    @property
    def effective_target_form(self) -> str:
        """Returns the latency-target form in use (the given one, else ``hinge``: the
        best of the three on the bench at the 25 % target, docs/search-darts.md)."""
        return self.target_form or "hinge"

    @property
    def effective_cost_weight(self) -> float:
        """Returns the cost weight in use: the given one, else with a latency target the
        form's default (hinge and absolute 1.0: one nat per 100 % of the target;
        multiplicative 0.6), and 0.1 for the penalty form without one."""
        if self.cost_weight is not None:
            return self.cost_weight
        if self.latency_target_ms is None:
            return 0.1
        return 0.6 if self.effective_target_form == "multiplicative" else 1.0

    @property
    def partial(self) -> int:
        """Returns K for the supernet: 1 for DARTS, ``partial_k`` for PC-DARTS."""
        return self.partial_k if self.method == "pcdarts" else 1

    def headline(self) -> str:
        """Returns the method's description for the log's first line."""
        where = "" if self.space == SupernetConfig.space else f" on {self.space}"
        return f"{self.method} ({self.order} order){where}"


declare_searcher("darts", config=DARTSConfig, impl="nasbench.searchers.darts:DartsSearcher",
                 summary="DARTS: a supernet's mixed edges and architecture weights learnt "
                         "by gradient, with the expected LUT cost in the loss.")
declare_searcher("pcdarts", config=DARTSConfig,
                 impl="nasbench.searchers.darts:DartsSearcher",
                 summary="PC-DARTS: DARTS on 1/K of the channels (partial connections) "
                         "with edge normalisation.")
