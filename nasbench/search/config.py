"""Search configuration: one dataclass with every setting, and two presets.

``quick`` (the default) finishes search + a short retrain in a few minutes on a 2-core
CPU. Its budget, and why:

* search network C=8, 5 cells, 32 images per batch, 2 epochs of at most 20 steps each
  (about 1 s per DARTS step on 2 cores; PC-DARTS is faster);
* a larger architecture learning rate (1e-2 instead of 3e-4) so that 40 Adam steps
  can move the alphas by a meaningful amount (Adam moves each alpha by about lr per
  step whatever the gradient's scale);
* the derived architecture is retrained for 1 epoch of at most 30 steps of batch 32 at
  C=16, 8 cells (``train_channels``/``train_layers``): the accuracy is that of this
  smaller copy, while cost (predicted and measured) is always that of the deploy network
  (``eval_channels``/``eval_layers``/``input_size``/``deploy_batch``, default the DARTS
  evaluation network C=36, 20 cells, 32x32, batch 1);
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

import dataclasses
from dataclasses import asdict, dataclass, fields

from ..errors import UserError

METHODS = ("darts", "pcdarts")
ORDERS = ("first", "second")
PRESETS = ("quick", "paper")
DATASETS = ("cifar10", "digits", "synthetic")
COST_METRICS = ("latency", "energy", "memory")


class DictConfig:
    """JSON round trip and copies for the search config dataclasses (tuple fields are
    stored as lists)."""

    def to_dict(self) -> dict:
        """Returns every setting as a JSON-ready dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        """Returns the config stored by :meth:`to_dict` (unknown keys are ignored)."""
        kw = {}
        for f in fields(cls):
            if f.name in d:
                v = d[f.name]
                kw[f.name] = tuple(v) if isinstance(v, list) and "tuple" in str(f.type) \
                    else v
        return cls(**kw)

    def replace(self, **changes):
        """Returns a copy with ``changes``."""
        return dataclasses.replace(self, **changes)


@dataclass
class DARTSConfig(DictConfig):
    """Every setting of a DARTS / PC-DARTS search, the retrain and the cost objective.

    Units: learning rates per step, ``latency_target_ms`` in milliseconds, sizes in
    pixels/channels. ``steps_per_epoch``/``train_max_steps`` cap an epoch's batches
    (None: the whole split)."""

    preset: str = "quick"
    method: str = "darts"                 # darts | pcdarts
    order: str = "first"                  # first | second (DARTS paper eq. 7-8)
    objective: str = "acc+latency"        # acc, acc+latency, acc+energy, acc+memory, sums
    # data
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    train_portion: float = 0.5            # search: train/val halves of the training split
    # search network
    channels: int = 8
    layers: int = 5
    steps: int = 4
    multiplier: int = 4
    stem_multiplier: int = 3
    partial_k: int = 4                    # PC-DARTS only
    epochs: int = 2
    steps_per_epoch: int | None = 20
    batch_size: int = 32
    learning_rate: float = 0.025
    learning_rate_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_learning_rate: float = 1e-2
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    warmup_epochs: int = 0                # epochs that train only the weights (PC-DARTS)
    # cost
    cost_weight: float | None = None      # None: 0.1 for the penalty, 1.0 for a target
    latency_target_ms: float | None = None
    hard_target: bool = True
    # deploy network (what the cost describes)
    eval_channels: int = 36
    eval_layers: int = 20
    input_size: int = 32
    deploy_batch: int = 1
    # retrain of the derived network
    train_epochs: int = 1
    train_max_steps: int | None = 30
    train_batch_size: int = 32
    train_channels: int | None = 16       # None: eval_channels
    train_layers: int | None = 8          # None: eval_layers
    train_learning_rate: float = 0.025
    train_weight_decay: float = 3e-4
    auxiliary_weight: float = 0.0         # > 0 adds the DARTS auxiliary head
    drop_path_prob: float = 0.0
    cutout: int = 16                      # cutout length for the retrain (0: off)
    # run
    seed: int = 2
    device: str = "cpu"
    lut: str | None = None
    out: str = "runs"
    threads: int | None = None
    measure: bool = True                  # measure the derived deploy network on device
    # reference networks for the report (trained with the retrain budget, measured);
    # comma-separated names of nasbench.references.REFERENCES, "" for none
    references: str = "resnet20,mobilenetv2,darts_v2,pc_darts"

    # ---- presets ------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, preset: str = "quick", method: str = "darts",
                    **overrides) -> DARTSConfig:
        """Returns the preset's config for ``method`` with ``overrides`` applied (None
        values are ignored, so CLI options left unset keep the preset's value)."""
        if preset not in PRESETS:
            raise UserError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        if method not in METHODS:
            raise UserError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
        base: dict = {"preset": preset, "method": method}
        if preset == "paper":
            base.update(channels=16, layers=8, epochs=50, steps_per_epoch=None, batch_size=64,
                        learning_rate=0.025, learning_rate_min=0.001, arch_learning_rate=3e-4,
                        train_epochs=600, train_max_steps=None, train_batch_size=96,
                        train_channels=None, train_layers=None, auxiliary_weight=0.4,
                        drop_path_prob=0.2, cutout=16, dataset="cifar10",
                        references="")  # 600-epoch retrains of references: opt in
            if method == "pcdarts":
                base.update(partial_k=4, batch_size=256, learning_rate=0.1,
                            learning_rate_min=0.0, arch_learning_rate=6e-4, warmup_epochs=15)
        names = {f.name for f in fields(cls)}
        for k, v in overrides.items():
            if k not in names:
                raise TypeError(f"DARTSConfig has no setting {k!r}")
            if v is not None:
                base[k] = v
        cfg = cls(**base)
        cfg.validate()
        return cfg

    # ---- helpers ------------------------------------------------------------------------

    def validate(self) -> None:
        """Raises UserError (one line) for an out-of-range or unknown setting."""
        if self.method not in METHODS:
            raise UserError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.order not in ORDERS:
            raise UserError(f"order must be first or second, got {self.order!r}")
        if self.dataset not in DATASETS:
            raise UserError(f"dataset must be one of {', '.join(DATASETS)}, "
                            f"got {self.dataset!r}")
        parse_objective(self.objective)
        positive = ("channels", "layers", "steps", "multiplier", "epochs", "batch_size",
                    "eval_channels", "eval_layers", "input_size", "deploy_batch",
                    "train_batch_size", "partial_k")
        for name in positive:
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if self.train_epochs < 0:
            raise UserError(f"train_epochs must be >= 0, got {self.train_epochs}")
        if self.layers < 3 or self.eval_layers < 3:
            raise UserError("layers must be at least 3 (a network has two reduction cells)")
        if self.input_size < 8:
            raise UserError(f"input size must be at least 8 pixels, got {self.input_size}")
        if not 0.0 < self.train_portion < 1.0:
            raise UserError(f"train_portion must be in (0, 1), got {self.train_portion}")
        if self.multiplier > self.steps:
            raise UserError("multiplier cannot exceed the number of nodes (steps)")
        if self.method == "pcdarts" and self.channels % self.partial_k:
            raise UserError(f"PC-DARTS needs channels ({self.channels}) divisible by K "
                            f"({self.partial_k})")
        if self.cost_weight is not None and self.cost_weight < 0:
            raise UserError(f"--cost-weight must be >= 0, got {self.cost_weight}")
        if self.latency_target_ms is not None:
            if self.latency_target_ms <= 0:
                raise UserError(f"--latency-target must be positive, got "
                                f"{self.latency_target_ms} ms")
            if "latency" not in parse_objective(self.objective):
                raise UserError("--latency-target needs an objective with latency "
                                "(e.g. --objective acc+latency)")
        for name in ("learning_rate", "arch_learning_rate", "train_learning_rate"):
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise UserError("steps_per_epoch must be positive")
        self.reference_list  # noqa: B018 - raises UserError for unknown names

    @property
    def reference_list(self) -> list[str]:
        """Returns the reference network names (empty for "" or "none")."""
        from ..references import parse_references
        return parse_references(self.references)

    @property
    def cost_metrics(self) -> list[str]:
        """Returns the cost metrics of the objective (may be empty)."""
        return parse_objective(self.objective)

    @property
    def effective_cost_weight(self) -> float:
        """Returns the cost weight in use: the given one, else 1.0 with a latency target
        (weight of the relative excess) and 0.1 for the penalty form."""
        if self.cost_weight is not None:
            return self.cost_weight
        return 1.0 if self.latency_target_ms is not None else 0.1

    @property
    def partial(self) -> int:
        """Returns K for the supernet: 1 for DARTS, ``partial_k`` for PC-DARTS."""
        return self.partial_k if self.method == "pcdarts" else 1

    def deploy(self, num_classes: int = 10, in_channels: int = 3):
        """Returns the DeployConfig of the network whose cost is optimised."""
        from ..spaces.darts import DeployConfig
        return DeployConfig(channels=self.eval_channels, layers=self.eval_layers,
                            input_size=self.input_size, in_channels=in_channels,
                            num_classes=num_classes, steps=self.steps,
                            multiplier=self.multiplier, stem_multiplier=self.stem_multiplier,
                            batches=(self.deploy_batch,))


def parse_objective(text: str) -> list[str]:
    """Returns the cost metrics of an objective such as ``acc+latency+energy`` (the
    accuracy term is always there); raises UserError for anything else."""
    parts = [p.strip().lower() for p in str(text).split("+") if p.strip()]
    if not parts or parts[0] not in ("acc", "accuracy"):
        raise UserError(f"--objective must start with acc (e.g. acc+latency), got {text!r}")
    metrics = []
    for p in parts[1:]:
        p = {"lat": "latency", "mem": "memory"}.get(p, p)
        if p not in COST_METRICS:
            raise UserError(f"unknown objective term {p!r} in {text!r} "
                            f"(use acc, acc+latency, acc+energy, acc+memory or sums)")
        if p not in metrics:
            metrics.append(p)
    return metrics


def parse_latency(text: str | float | None) -> float | None:
    """Returns a latency given as ``4ms``, ``4`` (ms), ``0.004s`` or ``4000us`` in ms."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip().lower().replace(" ", "")
    scale = 1.0
    for suffix, f in (("ms", 1.0), ("us", 1e-3), ("µs", 1e-3), ("s", 1e3)):
        if s.endswith(suffix):
            s, scale = s[: -len(suffix)], f
            break
    try:
        v = float(s) * scale
    except ValueError:
        raise UserError(f"--latency-target must look like 4ms, 4 or 0.004s, got {text!r}") \
            from None
    if v <= 0:
        raise UserError(f"--latency-target must be positive, got {text!r}")
    return v

