"""Reference networks: built from torchvision blocks, right sizes and shapes."""

import pytest
import torch

from nasbench.run.references import REFERENCES, build_reference


@pytest.mark.parametrize("name,params", [("resnet20", 272_474), ("mobilenetv2", 2_236_682)])
def test_hand_designed_references(name, params):
    net = build_reference(name, num_classes=10, in_channels=3, input_size=32, size="deploy")
    assert sum(p.numel() for p in net.parameters()) == params
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_mobilenetv2_uses_torchvision_blocks_and_cifar_strides():
    from torchvision.models.mobilenetv2 import InvertedResidual
    net = build_reference("mobilenetv2", num_classes=10, in_channels=1, input_size=32,
                          size="deploy")
    assert sum(isinstance(m, InvertedResidual) for m in net.modules()) == 17
    feats = net.features(torch.zeros(1, 1, 32, 32))
    assert feats.shape[-2:] == (4, 4)          # stride 8 overall on a 32x32 input


def test_darts_references_follow_the_requested_size():
    small = build_reference("darts_v2", num_classes=10, in_channels=3, input_size=16,
                            size="train", channels=4, layers=3)
    big = build_reference("darts_v2", num_classes=10, in_channels=3, input_size=16,
                          size="deploy", channels=8, layers=3)
    n = [sum(p.numel() for p in m.parameters()) for m in (small, big)]
    assert n[0] < n[1]
    assert REFERENCES["pc_darts"].genotype is not None
    assert REFERENCES["resnet20"].genotype is None
