"""ProxylessNAS search configuration: one dataclass with every setting, and two presets.

``paper`` is the released ProxylessNAS code's ImageNet search setting
(``search/imagenet_arch_search.py`` and ``nas_manager.py`` of mit-han-lab/proxylessnas,
checked against the source):

* weights: SGD, momentum 0.9, Nesterov, weight decay 4e-5, label smoothing 0.1, batch
  256; 40 warm-up epochs that train only the weights with a per-step cosine learning
  rate from 0.05, then 120 search epochs with a per-step cosine from 0.025;
* architecture: alphas initialised N(0, 1e-3), Adam lr 1e-3, betas (0, 0.999), eps
  1e-8, no weight decay, one architecture step every 5 weight steps, binary gates with
  two sampled paths (the paper's two-path mode; the code's default ``full_v2`` computes
  every path in the backward pass, which costs N forward passes);
* latency loss ``mul#log`` with alpha 0.2, beta 0.3 (``add#linear``: lambda 0.1);
  ``quick`` uses ``add#linear`` instead, see below;
* REINFORCE: 10 sampled networks per architecture step, reward
  ``acc x (ref / cost)^0.1``, baseline moved by 0.99 of the gap to the mean reward.

(The brief for this module quoted an architecture learning rate of 6e-3; the released
code's default, used here, is 1e-3.)

``quick`` (the default) runs the whole job (search, retrain, evaluation, measurement) in
about a minute or two on a 2-core CPU with the ``cifar`` layout at 32x32: batch 32, 1
warm-up epoch + 2 search epochs of at most 40 steps each (a weight step and, after
warm-up, an architecture step every step: about 0.3 s per step on two threads), then a
retrain of the derived network for 2 epochs of at most 120 steps of batch 32. Because
so few architecture steps happen, the architecture learning rate is 0.05 (Adam moves an
alpha by about lr per step whatever the gradient's scale; 80 steps of 1e-3 would not
move the distribution) and ``arch_update_every`` is 1. Warm-up uses the paper's 0.05,
the search 0.025; no label smoothing (too few steps to matter), gradient clipping at 5.

``quick`` uses the ``add#linear`` loss, not the code's default ``mul#log``, so that
``--latency-target`` steers the search: in ``mul#log`` the reference only enters as the
constant factor ``(log ref)^-beta`` of the whole loss, and Adam's update is invariant
to a constant scale of the loss, so every target gives the same search (measured: three
targets, identical architectures); only the hard-target repair then uses the target.
In ``add#linear`` the latency gradient is ``lambda / ref`` against the cross-entropy's,
so a tighter target pushes harder. ``--latency-loss mul#log`` remains available.

Every field can be overridden: ``ProxylessConfig.from_preset("quick", epochs=5)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nasbench.config import RunConfig
from nasbench.errors import UserError
from nasbench.options import option
from nasbench.registry import declare_searcher

PRESETS = ("quick", "paper")
LOSS_FORMS = ("mul#log", "add#linear")
ESTIMATORS = ("binary", "reinforce")
LAYOUT_NAMES = ("cifar", "imagenet")


@dataclass
class ProxylessConfig(RunConfig):
    """The ProxylessNAS settings on top of :class:`~nasbench.config.RunConfig`: the
    gradient estimator and latency loss, the space's layout, the weight and
    architecture optimisers. The searched network is the deploy network (no proxy), and
    warm-up epochs come before ``epochs``.

    Units: learning rates per step, ``latency_target_ms`` in milliseconds (the ``ref`` of
    the latency loss), sizes in pixels."""

    #: why an option of another method does not apply here (``nasbench search``)
    FOREIGN_HINTS: ClassVar[dict[str, str]] = dict.fromkeys(
        ("channels", "layers", "eval_channels", "eval_layers"),
        "they describe the DARTS networks; --method proxyless searches the deploy "
        "network itself (use --space-config and --width-mult)")

    method: str = "proxyless"
    space: str = "proxyless"
    grad_estimator: str = option("binary", "binary (two-path binary gates) or "
                                 "reinforce.", choices=ESTIMATORS)
    latency_loss: str = option("add#linear", "add#linear (CE + lambda (E[lat]-ref)/ref; "
                               "quick's) or mul#log (alpha x CE x (log E[lat] / log "
                               "ref)^beta; paper's). ref = --latency-target.",
                               choices=LOSS_FORMS)
    loss_alpha: float = 0.2               # mul#log: alpha x CE x (log E / log ref)^beta
    loss_beta: float = 0.3
    loss_lambda: float = 0.1              # add#linear: CE + lambda x (E - ref) / ref
    # space (the searched network is the deploy network: no proxy)
    space_config: str = option("cifar", "cifar (32x32) or imagenet (the paper's "
                               "layout).", choices=LAYOUT_NAMES)
    width_mult: float = option(1.0, "Width multiplier.", gt=0)
    input_size: int | None = None         # None: the layout's
    # search
    warmup_epochs: int = option(1, "Weight-only warm-up epochs before the search "
                                "epochs.", min=0)
    epochs: int = 2
    steps_per_epoch: int | None = 40
    warmup_learning_rate: float = 0.05
    learning_rate: float = 0.025
    learning_rate_min: float = 0.0
    nesterov: bool = True
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0
    arch_learning_rate: float = 0.05
    arch_betas: tuple[float, float] = (0.0, 0.999)
    arch_eps: float = 1e-8
    arch_weight_decay: float = 0.0
    arch_init_std: float = 1e-3
    arch_update_every: int = 1
    rl_samples: int = 4                   # REINFORCE: networks sampled per arch step
    rl_tradeoff: float = 0.1              # reward acc x (ref / cost)^tradeoff
    rl_baseline_decay: float = 0.99
    # the cost weight of the latency loss: lambda of add#linear, beta of mul#log
    cost_weight: float | None = option(None, "lambda of add#linear (0.1), beta of "
                                       "mul#log (0.3).", min=0)
    # retrain of the derived network (the deploy network itself)
    train_epochs: int = 2
    train_max_steps: int | None = 120
    train_learning_rate: float = 0.05
    train_weight_decay: float = 4e-5
    cutout: int = 0

    @classmethod
    def supports_space(cls, space: str) -> bool:
        """Returns whether ``space`` is ProxylessNAS's own (its MBConv blocks: the binary
        gates search the deploy network itself)."""
        return space == cls.__dataclass_fields__["space"].default

    def __post_init__(self):
        # --cost-weight is the latency loss's own weight (its form decides which)
        if self.cost_weight is not None:
            if self.latency_loss == "mul#log":
                self.loss_beta = self.cost_weight
            else:
                self.loss_lambda = self.cost_weight

    # ---- presets ------------------------------------------------------------------------

    @classmethod
    def preset_values(cls, preset: str, method: str) -> dict:
        """Returns what ``paper`` changes: the released ProxylessNAS code's setting."""
        if preset != "paper":
            return {}
        return dict(latency_loss="mul#log", warmup_epochs=40, epochs=120,
                    steps_per_epoch=None, batch_size=256,
                    warmup_learning_rate=0.05, learning_rate=0.025,
                    learning_rate_min=0.0, label_smoothing=0.1, grad_clip=None,
                    arch_learning_rate=1e-3, arch_update_every=5, rl_samples=10,
                    train_epochs=300, train_max_steps=None, train_batch_size=256,
                    train_learning_rate=0.05, dataset="cifar10", references="")

    # ---- helpers ------------------------------------------------------------------------

    def check(self) -> None:
        """Raises UserError (one line) for an out-of-range or unknown setting."""
        if self.method != "proxyless":
            raise UserError(f"ProxylessConfig is for method proxyless, got {self.method!r}")
        super().check()
        if self.latency_loss not in LOSS_FORMS:      # before the declared choice: its words
            raise UserError(f"--latency-loss must be mul#log or add#linear, got "
                            f"{self.latency_loss!r}")
        if not self.supports_space(self.space):
            raise UserError(f"--method proxyless searches the proxyless space, not "
                            f"{self.space!r}")
        for name in ("arch_update_every", "rl_samples"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("warmup_learning_rate", "learning_rate", "arch_learning_rate",
                     "loss_alpha"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("loss_beta", "loss_lambda", "rl_tradeoff", "weight_decay",
                     "train_weight_decay", "arch_weight_decay", "arch_init_std",
                     "learning_rate_min", "label_smoothing"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.label_smoothing >= 1:
            raise UserError(f"label_smoothing must be below 1, got {self.label_smoothing}")
        if not 0.0 <= self.rl_baseline_decay <= 1.0:
            raise UserError(f"rl_baseline_decay must be in [0, 1], got "
                            f"{self.rl_baseline_decay}")
        if not (0.0 <= self.arch_betas[0] < 1.0 and 0.0 <= self.arch_betas[1] < 1.0):
            raise UserError(f"arch_betas must be in [0, 1), got {self.arch_betas}")
        if (self.latency_target_ms is not None and self.latency_loss == "mul#log"
                and self.latency_target_ms <= 1.0):
            raise UserError(f"--latency-loss mul#log divides by log(ref in ms), which "
                            f"needs a target above 1 ms (got {self.latency_target_ms} "
                            f"ms); use --latency-loss add#linear")

    def deploy(self, num_classes: int = 10, in_channels: int = 3):
        """Returns the ProxylessDeployConfig searched, retrained, predicted and measured."""
        from nasbench.spaces.proxyless import ProxylessDeployConfig
        return ProxylessDeployConfig.from_layout(
            self.space_config, input_size=self.input_size, num_classes=num_classes,
            in_channels=in_channels, width_mult=self.width_mult,
            batches=(self.deploy_batch,))

    @property
    def data_input_size(self) -> int:
        """Returns the input size the data is loaded at (the layout's by default)."""
        from nasbench.config import default_train_input
        from nasbench.spaces.proxyless import LAYOUTS
        deploy = self.input_size or LAYOUTS[self.space_config]["input_size"]
        return self.train_input_size or default_train_input(self.dataset, deploy)

    def headline(self) -> str:
        """Returns the method's description for the log's first line."""
        return f"proxyless ({self.grad_estimator}, {self.latency_loss})"


declare_searcher("proxyless", config=ProxylessConfig,
                 impl="nasbench.searchers.proxyless:ProxylessSearcher",
                 summary="ProxylessNAS: binary gates (or REINFORCE) over the MBConv "
                         "blocks of the deploy network itself, with a latency loss.")
