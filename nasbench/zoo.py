"""The reference networks that give a report's Pareto front its context, registered
by name (timm-style: one decorator per network):

* ``resnet20``: the CIFAR ResNet-20 of He et al. (3 stages of 3 BasicBlocks, 16/32/64
  channels; 1x1-conv projection shortcuts, torchvision's ``BasicBlock`` style);
* ``mobilenetv2``: torchvision's ``MobileNetV2`` with the usual CIFAR changes (stem
  and first-stage strides of 1 so a 32x32 input keeps a 4x4 map at the end);
* ``darts_v2`` / ``pc_darts``: the published genotypes, trained at the searched
  network's retrain size and measured at the deploy size.

How they are trained, measured and cached for a run: :mod:`nasbench.run.references`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from nasbench.errors import UserError
from nasbench.genotypes import DARTS_V2, PC_DARTS, Genotype


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
        from nasbench.spaces.darts_network import build_network_from_genotype
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
        raise UserError(f"unknown reference network(s) {', '.join(unknown)}; known: "
                        f"{', '.join(REFERENCES)} (or none)")
    return names


def build_reference(name: str, *, num_classes: int, in_channels: int, input_size: int,
                    size: str, channels: int = 36, layers: int = 20) -> nn.Module:
    """Returns the module of reference ``name`` at ``size`` ("train" or "deploy");
    DARTS-space references use ``channels``/``layers`` for their width and depth."""
    ref = REFERENCES[name]
    if ref.genotype is not None:
        return ref.build(num_classes, in_channels, input_size, size, channels=channels,
                         layers=layers)
    return ref.build(num_classes, in_channels, input_size, size)

