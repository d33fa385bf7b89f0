"""Reference networks that give a report's Pareto front its context.

Each reference is trained with the *same* short budget as the searched network (same
data, steps, batch, optimiser and schedule; labelled so in the report) and measured on
the same device with the same meters. Hand-designed ones come from torchvision blocks:

* ``resnet20``: the CIFAR ResNet-20 of He et al. (3 stages of 3 BasicBlocks, 16/32/64
  channels; 1x1-conv projection shortcuts, torchvision's ``BasicBlock`` style);
* ``mobilenetv2``: torchvision's ``MobileNetV2`` with the usual CIFAR changes (stem
  and first-stage strides of 1 so a 32x32 input keeps a 4x4 map at the end);
* ``darts_v2`` / ``pc_darts``: the published genotypes, trained at the searched
  network's retrain size and measured at the deploy size (so their LUT prediction
  exists when the LUT is a DARTS LUT).

A reference is registered with one decorator (timm-style)::

    @register_reference("resnet20", "ResNet-20 (CIFAR)")
    def resnet20(num_classes, in_channels, input_size, size): ...

Results are cached per (data set, budget, device, deploy size) under the nasbench cache
folder, since the same budget gives the same numbers: a second search with the same
settings does not retrain them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .candidates import candidate
from .genotypes import DARTS_V2, PC_DARTS, Genotype


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


@dataclass(frozen=True)
class Reference:
    """One registered reference: ``build(num_classes, in_channels, input_size, size)``
    returns the module, where ``size`` is "train" or "deploy" (only DARTS-space
    references differ); ``genotype`` is set for DARTS-space ones."""

    name: str
    label: str
    build: Callable[..., nn.Module]
    genotype: Genotype | None = None


REFERENCES: dict[str, Reference] = {}


def register_reference(name: str, label: str, genotype: Genotype | None = None):
    """Decorator that registers a reference network builder; returns it unchanged."""
    def decorate(fn):
        if name in REFERENCES:
            raise ValueError(f"reference {name!r} is already registered")
        REFERENCES[name] = Reference(name, label, fn, genotype)
        return fn
    return decorate


def _stem_conv(conv: nn.Conv2d, in_channels: int, stride: int) -> nn.Conv2d:
    """Returns a copy of ``conv``'s geometry with another input width and stride."""
    return nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, stride=stride,
                     padding=conv.padding, bias=conv.bias is not None)


class ResNetCIFAR(nn.Module):
    """ResNet-(6n+2) for CIFAR from torchvision's BasicBlock (n=3: ResNet-20)."""

    def __init__(self, n: int = 3, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        from torchvision.models.resnet import BasicBlock
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        layers, c_in = [], 16
        for c, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                s = stride if i == 0 else 1
                down = None
                if s != 1 or c_in != c:
                    down = nn.Sequential(nn.Conv2d(c_in, c, 1, stride=s, bias=False),
                                         nn.BatchNorm2d(c))
                layers.append(BasicBlock(c_in, c, s, down))
                c_in = c
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


@register_reference("resnet20", "ResNet-20 (CIFAR)")
def resnet20(num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
             size: str = "deploy") -> nn.Module:
    """Returns ResNet-20 for CIFAR (0.27 M parameters at 10 classes)."""
    return ResNetCIFAR(3, num_classes, in_channels)


# torchvision's ImageNet setting with the strides of the first two stride-2 stages set
# to 1 (t, c, n, s): 32x32 -> 4x4 at the last stage instead of 1x1
MOBILENETV2_CIFAR = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
                     [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


@register_reference("mobilenetv2", "MobileNetV2 (CIFAR)")
def mobilenetv2(num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
                size: str = "deploy") -> nn.Module:
    """Returns torchvision's MobileNetV2 (width 1.0) with a stride-1 stem and the CIFAR
    stage strides (2.24 M parameters at 10 classes)."""
    from torchvision.models import MobileNetV2
    net = MobileNetV2(num_classes=num_classes, inverted_residual_setting=MOBILENETV2_CIFAR,
                      dropout=0.0)
    net.features[0][0] = _stem_conv(net.features[0][0], in_channels, 1)
    return net


def _darts_builder(genotype: Genotype):
    def build(num_classes=10, in_channels=3, input_size=32, size="deploy", *,
              channels: int = 36, layers: int = 20):
        from .models.network import build_network_from_genotype
        return build_network_from_genotype(genotype, C=channels, num_cells=layers,
                                           num_classes=num_classes,
                                           in_channels=in_channels, input_size=input_size)
    return build


register_reference("darts_v2", "DARTS_V2 (published)", DARTS_V2)(_darts_builder(DARTS_V2))
register_reference("pc_darts", "PC-DARTS (published)", PC_DARTS)(_darts_builder(PC_DARTS))

DEFAULT_REFERENCES = ("resnet20", "mobilenetv2", "darts_v2", "pc_darts")


def parse_references(text: str | None) -> list[str]:
    """Returns the reference names of a comma-separated list ("" / "none" / "off": none);
    raises UserError (one line) naming unknown ones."""
    names = [r.strip().lower() for r in (text or "").split(",") if r.strip()]
    if names in (["none"], ["off"]):
        return []
    unknown = [n for n in names if n not in REFERENCES]
    if unknown:
        from .errors import UserError
        raise UserError(f"unknown reference network(s) {', '.join(unknown)}; known: "
                        f"{', '.join(REFERENCES)} (or none)")
    return names


def reference_candidates(names, data, deploy, budget: RetrainBudget, device: str, *,
                         lut=None, measure: bool = True, log=print,
                         quiet: bool = False, keep_dir: Path | None = None) -> list[dict]:
    """Returns :func:`run_references` with a progress bar, or [] when training or
    measuring them fails (a search run is complete without its references)."""
    from .errors import UserError
    from .progress import progress_bar
    try:
        with progress_bar("reference networks", quiet=quiet) as cb:
            return run_references(names, data, deploy, budget, device, lut=lut,
                                  measure=measure, log=log, progress=cb,
                                  keep_dir=keep_dir)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - context for the report, not the result
        log(f"reference networks failed: {e.__class__.__name__}: {e}")
        return []


def build_reference(name: str, *, num_classes: int, in_channels: int, input_size: int,
                    size: str, channels: int = 36, layers: int = 20) -> nn.Module:
    """Returns the module of reference ``name`` at ``size`` ("train" or "deploy");
    DARTS-space references use ``channels``/``layers`` for their width and depth."""
    ref = REFERENCES[name]
    if ref.genotype is not None:
        return ref.build(num_classes, in_channels, input_size, size, channels=channels,
                         layers=layers)
    return ref.build(num_classes, in_channels, input_size, size)


def _cache_file(names, data_desc: dict, budget: RetrainBudget, deploy_desc: dict,
                device: str):
    from .profiling import cache_dir
    ident = json.dumps({"names": list(names), "data": data_desc, "budget": asdict(budget),
                        "deploy": deploy_desc, "device": device, "torch": torch.__version__},
                       sort_keys=True, default=str)
    return cache_dir() / "references" / f"{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json"


def train_reference(net: nn.Module, data, budget: RetrainBudget, channels_last: bool,
                    on_step: Callable | None = None) -> dict:
    """Trains ``net`` with ``budget`` and evaluates it on the test split; returns
    {"test_acc": fraction, "test_loss": nats, "test_n": images, "steps": batches
    trained, "seconds"}."""
    from .train import cosine_lr, evaluate, retrain_parts, train_epoch
    t0 = time.time()
    net, opt, tq, test_q = retrain_parts(net, data, budget, channels_last)
    steps = 0
    for e in range(budget.epochs):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(budget.learning_rate, 0.0, e, budget.epochs)
        steps += train_epoch(net, tq, opt, grad_clip=budget.grad_clip,
                             on_step=on_step)["steps"]
    ev = evaluate(net, test_q)
    return {"test_acc": ev["acc"], "test_loss": ev["loss"], "test_n": ev["n"], "steps": steps,
            "seconds": time.time() - t0}


def save_reference(path: Path, name: str, net: nn.Module, data, budget: RetrainBudget,
                   trained: dict) -> Path:
    """Writes a trained reference to ``path`` in the portable form of a run's
    ``model.pt`` (:mod:`nasbench.run.model`: weights, how to rebuild it, the
    preprocessing it was trained with, its test accuracy); returns ``path``."""
    from .run.model import FORMAT, preprocess_of
    from .run.util import atomic_torch_save
    from .spaces.darts import DartsSpace
    ref = REFERENCES[name]
    meta = {"format": FORMAT, "version": 1, "kind": "reference", "reference": name,
            "label": ref.label,
            "space": "darts" if ref.genotype is not None else "hand-designed",
            "arch": (DartsSpace.arch_to_dict(ref.genotype)
                     if ref.genotype is not None else None),
            "build": {"channels": budget.channels, "layers": budget.layers},
            "budget": asdict(budget), "data_dir": data.source if data.name == "cifar10" else None,
            "preprocess": preprocess_of(data), "test_acc": trained["test_acc"],
            "test_n": trained["test_n"]}
    atomic_torch_save({"meta": meta, "state_dict": {k: v.detach().cpu() for k, v in
                                                    net.state_dict().items()}}, path)
    return path


def run_references(names, data, deploy, budget: RetrainBudget, device: str, *, lut=None,
                   measure: bool = True, log=print, progress=None,
                   use_cache: bool = True, keep_dir: Path | None = None) -> list[dict]:
    """Trains (with ``budget``), evaluates, measures (on ``device`` at the deploy input
    and batch) and, for DARTS-space references with a DARTS ``lut``, predicts each
    reference; returns their candidate records (role "reference"). Cached results of
    the same data, budget, device and deploy size are reused (the LUT prediction is
    always recomputed). With ``keep_dir`` each trained network is kept there as
    ``<name>.pt`` (:func:`save_reference`; the cache keeps the weights too, so a reused
    result still hands its network over; a cached result without them is trained
    again)."""
    from .predict.predictor import predict_costs
    from .run.measure import count_complexity, measure_deploy
    from .spaces.darts import DartsSpace
    names = parse_references(",".join(names))
    deploy_desc = deploy.describe() | {"batch": deploy.batches[0]}
    cache = _cache_file(names, data.describe(), budget, deploy_desc, device)
    cached = {}
    if use_cache and cache.is_file():
        try:
            cached = {c["key"]: c for c in json.loads(cache.read_text())}
        except (ValueError, KeyError, TypeError) as e:
            from .errors import warn_damaged
            warn_damaged(cache, "reference cache", "the references are trained again", e)
            cached = {}
    out, store = [], []
    cl = str(device) == "cpu"
    dshape = dict(num_classes=deploy.num_classes, in_channels=deploy.in_channels,
                  input_size=deploy.input_size)
    for i, name in enumerate(names):
        ref = REFERENCES[name]
        if progress:
            progress(i, len(names), ref.label)
        rec = cached.get(name)
        kept = Path(keep_dir) / f"{name}.pt" if keep_dir is not None else None
        # trained weights live in the cache (handed to every run that reuses the result)
        # or, without a cache, straight in the run
        weights = cache.with_suffix("") / f"{name}.pt" if use_cache else kept
        if rec is not None and kept is not None and not weights.is_file():
            rec = None                        # cached before weights were kept
        if rec is None:
            with torch.random.fork_rng():
                torch.manual_seed(budget.seed)
                # trained at the data's input size (it may be smaller than the deploy
                # network's, e.g. digits at 16x16), measured at the deploy size
                net = build_reference(name, size="train", channels=budget.channels,
                                      layers=budget.layers,
                                      **(dshape | {"input_size": data.input_size}))
            tr = train_reference(net, data, budget, cl)
            if weights is not None:
                weights.parent.mkdir(parents=True, exist_ok=True)
                save_reference(weights, name, net, data, budget, tr)
            # DARTS-space references at the deploy size of a DARTS run, else at the
            # DARTS evaluation size (C=36, 20 cells)
            deploy_net = build_reference(name, size="deploy",
                                         channels=getattr(deploy, "channels", 36),
                                         layers=getattr(deploy, "layers", 20),
                                         **dshape).eval()
            params, macs = count_complexity(deploy_net, deploy)
            measured = measure_deploy(deploy_net, deploy, device, log, lut) if measure \
                else None
            rec = {"key": name, "train": tr, "params": params, "macs": macs,
                   "measured": measured}
            log(f"reference {ref.label}: test accuracy {100 * tr['test_acc']:.2f} % after "
                f"{tr['steps']} steps ({tr['seconds']:.0f} s)")
        else:
            log(f"reference {ref.label}: reused from {cache}")
        if kept is not None and kept != weights:
            from profilers.lut import atomic_write_bytes
            kept.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(kept, weights.read_bytes())
        store.append(rec)
        predicted = {}
        if (ref.genotype is not None and lut is not None
                and deploy.describe().get("space", "darts") == "darts"):
            predicted = predict_costs(DartsSpace(deploy), lut, ref.genotype)
        c = candidate(ref.label, "reference", arch=ref.genotype,
                      space="darts" if ref.genotype is not None else "hand-designed",
                      summary=None if ref.genotype is not None else ref.label,
                      test_acc=rec["train"]["test_acc"], predicted=predicted,
                      measured=rec["measured"], params=rec["params"], macs=rec["macs"],
                      train={"epochs": budget.epochs, "steps": rec["train"]["steps"]},
                      test_n=rec["train"].get("test_n"), classes=data.num_classes)
        c["budget"] = budget.describe()
        out.append(c)
    if progress:
        progress(len(names), len(names), "")
    if use_cache:
        from profilers.lut import atomic_write_text
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps(store, default=float))
    return out
