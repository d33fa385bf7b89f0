"""The torch.fx executor: every op of the DARTS LUT at its enumerated shapes, DARTS_V2
end to end, fusion, buffer reuse and the error on unsupported layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("pyopencl")

from kernels.executor import UnsupportedLayerError, compile_module  # noqa: E402
from kernels.runtime import Runtime  # noqa: E402
from nasbench.genotypes import DARTS_V2  # noqa: E402
from nasbench.spaces.darts import DeployConfig, enumerate_instances  # noqa: E402
from nasbench.spaces.darts_network import build_network_from_genotype  # noqa: E402
from tests.test_kernels import check  # noqa: E402

INSTANCES = enumerate_instances(DeployConfig())


def _representative():
    """One instance per op name and stride (the first enumerated): 20 of the 50."""
    seen, out = set(), []
    for inst in INSTANCES:
        if (inst.op, inst.stride) not in seen:
            seen.add((inst.op, inst.stride))
            out.append(inst)
    return out


@pytest.fixture(scope="module")
def rt():
    return Runtime(0, 0)


@pytest.mark.parametrize("inst", _representative(), ids=lambda i: i.key)
def test_op_representative(rt, inst):
    check(inst.build(), (1, inst.c_in, inst.h, inst.w), rt)


@pytest.mark.full
@pytest.mark.parametrize("inst", INSTANCES, ids=lambda i: i.key)
def test_op_full_sweep(rt, inst):
    check(inst.build(), (1, inst.c_in, inst.h, inst.w), rt)


def test_darts_v2_small(rt):
    net = build_network_from_genotype(DARTS_V2, C=8, num_cells=5)
    cm = check(net, (2, 3, 32, 32), rt)
    # BN folded and ReLU/add fused: far fewer launches than torch layers
    n_layers = sum(1 for m in net.modules() if not list(m.children()))
    assert len(cm.steps) < n_layers


@pytest.mark.slow
def test_darts_v2_full(rt):
    net = build_network_from_genotype(DARTS_V2, C=36, num_cells=20)
    check(net, (1, 3, 32, 32), rt)


def test_sep_conv_fusion(rt):
    inst = next(i for i in INSTANCES if i.op == "sep_conv_3x3")
    cm = check(inst.build(), (1, inst.c_in, inst.h, inst.w), rt)
    # relu, dw, pw, bn, relu, dw, pw, bn -> 4 kernels: BN folded, ReLU applied on load
    assert [s.kernel_name for s in cm.steps] == ["conv_dw", "conv_pw"] * 2


def test_buffer_reuse(rt):
    net = build_network_from_genotype(DARTS_V2, C=8, num_cells=5)
    cm = compile_module(net, (1, 3, 32, 32), rt)
    mem = cm.memory
    assert mem.peak_live_bytes <= mem.activation_bytes
    assert mem.activation_bytes < mem.naive_bytes / 4
    assert mem.total_bytes == mem.activation_bytes + mem.weight_bytes


def test_repeated_runs_are_identical(rt):
    inst = next(i for i in INSTANCES if i.op == "dil_conv_5x5")
    cm = compile_module(inst.build(), (1, inst.c_in, inst.h, inst.w), rt)
    x = torch.randn(1, inst.c_in, inst.h, inst.w)
    a = cm.forward(x)
    cm.run()
    b = cm.read_output()
    assert (a == b).all()
    assert cm.run() > 0
    cm.release()


class WithUpsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.cells = nn.ModuleList([nn.Sequential(nn.Conv2d(3, 3, 1)) for _ in range(4)])
        self.cells[3].add_module("_ops", nn.ModuleList([nn.ReLU(), nn.Upsample(scale_factor=2)]))

    def forward(self, x):
        for c in self.cells[:3]:
            x = c(x)
        return self.cells[3]._ops[1](self.cells[3]._ops[0](x))


def test_unsupported_layer_is_named(rt):
    with pytest.raises(UnsupportedLayerError) as err:
        compile_module(WithUpsample(), (1, 3, 8, 8), rt)
    assert str(err.value) == (
        "cells.3._ops.1: nn.Upsample is not supported by the OpenCL executor")


def test_unsupported_function_is_named(rt):
    class Sig(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    with pytest.raises(UnsupportedLayerError, match="sigmoid"):
        compile_module(Sig(), (1, 3, 4, 4), rt)
