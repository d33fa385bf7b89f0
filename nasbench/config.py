"""The settings every run shares (:class:`RunConfig`); each searcher's config adds only
its own fields by subclassing it (``DARTSConfig``, ``ProxylessConfig``...).

Shared: the preset and method, the objective and its latency target, the data, the
search loop's shape (epochs, steps per epoch, batch), the space's deploy input and
batch, the retrain budget every candidate gets (derived network and references), and
the run's device, LUT, output folder, threads, measurement and reference networks.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from nasbench.errors import UserError
from nasbench.options import check_config, check_finite, option
from nasbench.registry import SEARCHERS, SPACES, searcher_config

DATASETS = ("cifar10", "digits", "synthetic", "folder")
COST_METRICS = ("latency", "energy", "memory")


class DictConfig:
    """JSON round trip and copies for the config dataclasses (tuple fields are stored
    as lists)."""

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


@dataclass(frozen=True)
class RetrainBudget:
    """The short training every candidate gets (derived network and references).

    ``max_steps`` caps the batches of an epoch (None: the whole split); ``channels`` and
    ``layers`` size the DARTS-space networks during training."""

    epochs: int = 1
    max_steps: int | None = 30
    batch_size: int = 32
    learning_rate: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    cutout: int = 16
    seed: int = 2
    channels: int = 16
    layers: int = 8

    def describe(self) -> str:
        """Returns the budget in words, for labels."""
        steps = f"at most {self.max_steps} steps" if self.max_steps else "full epochs"
        return f"{self.epochs} epoch(s), {steps} of batch {self.batch_size}"


@dataclass
class RunConfig(DictConfig):
    """The settings of a run that do not depend on the searcher (see the module doc).

    Units: ``latency_target_ms`` in milliseconds, learning rates per step, sizes in
    pixels. ``steps_per_epoch``/``train_max_steps`` cap an epoch's batches (None: the
    whole split)."""

    PRESETS: ClassVar[tuple[str, ...]] = ("quick", "paper")
    #: the family of the methods this config serves: "one-shot" or "multi-trial"
    KIND: ClassVar[str] = "one-shot"
    #: a plugin may list its methods; built-ins are checked against the registry
    METHODS: ClassVar[tuple[str, ...]] = ()

    preset: str = option("quick", "quick (minutes on a CPU) or paper (the method's "
                         "paper settings).", choices=("quick", "paper"))
    method: str = option("", "The searcher (a registered name).", cli=False)
    space: str = option("", "The search space (a registered name; default: the "
                        "method's).", choices=lambda: SPACES.names())
    objective: str = option("acc+latency", "acc, acc+latency, acc+energy, acc+memory or "
                            "sums (acc+latency+energy).")
    latency_target_ms: float | None = option(
        None, "Hard latency target for the deploy network: 4ms, 4 (ms) or 0.004s.",
        flag="--latency-target", parse=lambda text: parse_latency(text), gt=0)
    hard_target: bool = option(True, "Only penalise the excess; do not repair a derived "
                               "network that misses the target.", flag="--soft-target",
                               invert=True)
    # data
    dataset: str = option("digits", "cifar10, digits (default; offline; cifar10 with "
                          "--data-dir or --preset paper), synthetic, or folder (your "
                          "images: --data-dir holds one folder per class).",
                          choices=DATASETS)
    data_dir: str | None = option(None, "Folder with cifar-10-batches-py (or that folder "
                                  "itself); --dataset folder: a folder of class folders "
                                  "(or train/ and test/ folders of them).")
    download: bool = option(False, "Download CIFAR-10 if the folder has none.")
    train_portion: float = option(0.5, "search: the share of the training split the "
                                  "weights train on (the rest: validation).", gt=0,
                                  max=0.999, cli=False)
    # the search loop
    epochs: int = option(3, "Search epochs.", min=1)
    steps_per_epoch: int | None = option(20, "Cap on search steps per epoch (0: the "
                                         "whole split).", min=0)
    batch_size: int = option(32, "Search batch size.", min=1)
    warmup_epochs: int = option(0, "Weight-only warm-up epochs before the search epochs.",
                                min=0, cli=False)
    # the deploy network's input and batch (what the cost describes)
    input_size: int | None = option(32, "Input height = width of data and deploy "
                                    "network.", flag="--input", min=8)
    # the size the data are loaded and trained at (search and retrain; None: the deploy
    # input, except digits: 16, twice their native 8x8 - 4x cheaper steps than 32x32)
    train_input_size: int | None = option(None, "Input height = width the data are loaded "
                                          "and trained at (default: the deploy input; "
                                          "digits: 16).", flag="--train-input", min=8)
    deploy_batch: int = option(1, "Deploy batch size the cost is for.", flag="--batch",
                               min=1)
    # retrain of the derived network (and of the references)
    train_epochs: int = option(4, "Retrain epochs of the derived network (0: none).",
                               min=0)
    train_max_steps: int | None = 50
    train_batch_size: int = 32
    train_learning_rate: float = 0.05
    train_weight_decay: float = 3e-4
    momentum: float = 0.9
    grad_clip: float | None = 5.0
    cutout: int = 16                      # cutout length for the retrain (0: off)
    # run
    seed: int = option(2, "Random seed.", min=0)
    device: str = option("cpu", "Device the cost is for (cpu, cuda[:N], rocm[:N], "
                         "opencl[:P[:D]], rx580...; hw-nas-bench:DEV with --space nb201).",
                         short="-d")
    lut: str | None = option(None, "LUT file (default: this device's cached LUT, "
                             "profiled first when absent).")
    # NAS-Bench-201 / HW-NAS-Bench tables (nb201): the chosen cell's table values, and
    # what a hw-nas-bench:DEV device reads
    benchmark_dir: str | None = option(None, "nb201: the folder of the NAS-Bench-201 / "
                                       "HW-NAS-Bench CSV files (the chosen cell's table "
                                       "values; needed by --device hw-nas-bench:DEV).")
    out: str = option("runs", "Folder that receives the run directory.")
    threads: int | None = option(None, "torch threads (default: torch's).", min=1)
    measure: bool = True                  # measure the derived deploy network on device
    # torchrun (data-parallel one-shot search): BatchNorm statistics of the whole batch
    # (exact, one all-reduce per layer) instead of each rank's slice (faster)
    sync_bn: bool = option(False, "torchrun (data-parallel one-shot methods): BatchNorm "
                           "statistics of the whole batch, as one process (exact; one "
                           "all-reduce per layer), instead of each process's slice.")
    # reference networks for the report (trained with the retrain budget, measured);
    # comma-separated names of nasbench.zoo.REFERENCES, "" for none
    references: str = option("resnet20,mobilenetv2,darts_v2,pc_darts",
                             "Reference networks trained with the same budget and "
                             "measured, for the report: comma-separated resnet20, "
                             "mobilenetv2, darts_v2, pc_darts, or none.", names=True)

    # ---- presets ------------------------------------------------------------------------

    @classmethod
    def preset_values(cls, preset: str, method: str) -> dict:
        """Returns the settings a preset changes for ``method`` (subclasses)."""
        return {}

    @classmethod
    def space_values(cls, space: str, preset: str, method: str) -> dict:
        """Returns the settings a space changes on top of the preset (subclasses: e.g.
        the nb201 deploy network's size)."""
        return {}

    @classmethod
    def from_preset(cls, preset: str = "quick", method: str | None = None, **overrides):
        """Returns the preset's config for ``method`` with ``overrides`` applied (None
        values are ignored, so CLI options left unset keep the preset's value); raises
        UserError for an unknown preset or method, or an out-of-range value."""
        if preset not in cls.PRESETS:
            raise UserError(f"--preset must be one of {', '.join(cls.PRESETS)}, "
                            f"got {preset!r}")
        method = method or (cls.METHODS[0] if cls.METHODS else
                             cls.__dataclass_fields__["method"].default)
        if cls.METHODS and method not in cls.METHODS:
            raise UserError(f"--method must be one of {', '.join(cls.METHODS)}, "
                            f"got {method!r}")
        if not cls.METHODS and (method not in SEARCHERS or searcher_config(method) is not cls):
            mine = [m for m in SEARCHERS.names() if searcher_config(m) is cls]
            raise UserError(f"--method must be one of {', '.join(mine)}, got {method!r}")
        space = overrides.get("space") or cls.space
        base: dict = {"preset": preset, "method": method,
                      **cls.preset_values(preset, method),
                      **cls.space_values(space, preset, method)}
        names = {f.name for f in fields(cls)}
        for k, v in overrides.items():
            if k not in names:
                raise TypeError(f"{cls.__name__} has no setting {k!r}")
            if v is not None:
                base[k] = v
        cfg = cls(**base)
        cfg.validate()
        return cfg

    # ---- checks -------------------------------------------------------------------------

    def check_finite(self) -> None:
        """Raises UserError (one line) naming the first numeric setting that is NaN or
        infinite: one check for every float field, whatever its searcher."""
        check_finite(self)

    def validate(self) -> None:
        """Raises UserError (one line) for an out-of-range or unknown setting: a
        non-finite number, then the config's own checks (:meth:`check`: what one
        setting's declaration cannot say, e.g. a relation between two), then every
        declared range, choice and list of names (:func:`nasbench.options.check_config`)."""
        self.check_finite()
        self.check()
        check_config(self)

    def check(self) -> None:
        """Raises UserError (one line) for what the declarations cannot say (subclasses
        extend it; the declared ranges are checked after it, by :meth:`validate`)."""
        if self.METHODS and self.method not in self.METHODS:
            raise UserError(f"method must be one of {', '.join(self.METHODS)}, "
                            f"got {self.method!r}")
        if self.dataset not in DATASETS:
            raise UserError(f"dataset must be one of {', '.join(DATASETS)}, "
                            f"got {self.dataset!r}")
        metrics = parse_objective(self.objective)
        if self.train_batch_size < 1:
            raise UserError(f"train_batch_size must be positive, got {self.train_batch_size}")
        if self.cutout < 0:
            raise UserError(f"cutout must be >= 0, got {self.cutout}")
        if self.input_size is not None and self.input_size < 8:
            raise UserError(f"input size must be at least 8 pixels, got {self.input_size}")
        if self.train_input_size is not None and self.train_input_size < 8:
            raise UserError(f"--train-input must be at least 8 pixels, got "
                            f"{self.train_input_size}")
        if not 0.0 < self.train_portion < 1.0:
            raise UserError(f"train_portion must be in (0, 1), got {self.train_portion}")
        if not self.train_learning_rate > 0:
            raise UserError(f"train_learning_rate must be positive, got "
                            f"{self.train_learning_rate}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise UserError("steps_per_epoch must be positive")
        if self.train_max_steps is not None and self.train_max_steps < 1:
            raise UserError("train_max_steps must be positive")
        if self.latency_target_ms is not None:
            if not self.latency_target_ms > 0:
                raise UserError(f"--latency-target must be positive, got "
                                f"{self.latency_target_ms} ms")
            if "latency" not in metrics:
                raise UserError("--latency-target needs an objective with latency "
                                "(e.g. --objective acc+latency)")
        self.reference_list  # noqa: B018 - raises UserError for unknown names
        if str(self.device).startswith("hw-nas-bench"):
            if self.space != "nb201":
                raise UserError(f"--device {self.device} is a NAS-Bench-201 table: use "
                                f"--space nb201")
            if self.reference_list:
                raise UserError(f"--device {self.device} times NAS-Bench-201 cells only: "
                                f"no reference networks (--references none)")

    # ---- derived settings ---------------------------------------------------------------

    @property
    def reference_list(self) -> list[str]:
        """Returns the reference network names (empty for "" or "none")."""
        from nasbench.zoo import parse_references
        return parse_references(self.references)

    @property
    def cost_metrics(self) -> list[str]:
        """Returns the cost metrics of the objective (may be empty)."""
        return parse_objective(self.objective)

    @property
    def data_input_size(self) -> int:
        """Returns the input size the data are loaded and trained at (pixels)."""
        return self.train_input_size or default_train_input(self.dataset,
                                                            self.input_size or 32)

    @classmethod
    def supports_space(cls, space: str) -> bool:
        """Returns whether this config's searchers run on ``space`` (any, by default;
        validate() says why not in one line)."""
        return True

    def deploy(self, num_classes: int = 10, in_channels: int = 3):
        """Returns the space's deploy config (the network whose cost is optimised)."""
        raise NotImplementedError

    def train_size(self) -> dict:
        """Returns the sizes of the retrain copy that differ from the deploy network's
        (e.g. DARTS's ``channels``/``layers``), {} when the deploy network is trained."""
        return {}

    def train_build_options(self) -> dict:
        """Returns the space ``build`` options of the retrained network (sizes and
        training-only parts, e.g. DARTS's auxiliary head)."""
        return self.train_size()

    def retrain_epoch(self, net, epoch: int) -> dict:
        """Prepares ``net`` for retrain epoch ``epoch`` and returns the extra keyword
        arguments of ``train_epoch`` (none by default)."""
        return {}

    def retrain_budget(self):
        """Returns the retrain budget (the derived network's and the references')."""
        size = self.train_size()
        return RetrainBudget(epochs=self.train_epochs, max_steps=self.train_max_steps,
                             batch_size=self.train_batch_size,
                             learning_rate=self.train_learning_rate, momentum=self.momentum,
                             weight_decay=self.train_weight_decay,
                             grad_clip=self.grad_clip or 0.0, cutout=self.cutout,
                             seed=self.seed,
                             **{k: v for k, v in (("channels", size.get("C")),
                                                  ("layers", size.get("num_cells")))
                                if v is not None})

    def headline(self) -> str:
        """Returns the method's description for the log's first line."""
        return self.method


def default_train_input(dataset: str, deploy_input: int) -> int:
    """Returns the default training input size: digits (8x8 images) at 16x16 at most,
    the others at the deploy network's input."""
    return min(deploy_input, 16) if dataset == "digits" else deploy_input


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


def _parse_quantity(text, units, flag: str, looks: str) -> float:
    """Returns ``text`` (a number with an optional unit suffix of ``units``: (suffix,
    scale) pairs, first match wins) times the unit's scale; raises UserError naming
    ``flag`` (one line) for anything else or a value that is not positive."""
    s = str(text).strip().replace(" ", "")
    scale = 1.0
    for suffix, f in units:
        if s.endswith(suffix):
            s, scale = s[: -len(suffix)], f
            break
    try:
        v = float(s) * scale
    except ValueError:
        raise UserError(f"{flag} must look like {looks}, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise UserError(f"{flag} must be a positive number, got {text!r}")
    return v


def parse_memory(text: str | float | None) -> float | None:
    """Returns a memory size given as ``8MiB``, ``512KiB``, ``8MB``, ``1GiB`` or a plain
    number (bytes) in bytes; raises UserError (one line) for anything else."""
    if text is None:
        return None
    return _parse_quantity(text, (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10),
                                  ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("kB", 1e3),
                                  ("B", 1)),
                           "--memory-target", "8MiB, 512KiB, 8MB or a number of bytes")


def parse_latency(text: str | float | None) -> float | None:
    """Returns a latency given as ``4ms``, ``4`` (ms), ``0.004s`` or ``4000us`` in ms."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return parse_latency(repr(float(text)))
    return _parse_quantity(str(text).lower(), (("ms", 1.0), ("us", 1e-3), ("µs", 1e-3),
                                               ("s", 1e3)),
                           "--latency-target", "4ms, 4 or 0.004s")
