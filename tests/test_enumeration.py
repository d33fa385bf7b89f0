"""The LUT enumeration must describe exactly the op instances of the deploy network."""

import pytest
import torch

from nasbench.genotypes import Genotype
from nasbench.ops import OPS, PRIMITIVES
from nasbench.spaces.darts import (
    DeployConfig,
    cell_plan,
    enumerate_instances,
    network_edge_instances,
    network_fixed_instances,
)
from nasbench.spaces.darts_network import build_network_from_genotype

# every input index 0..4 appears, so every (stride, resolution) an edge can have is used
INDICES = [0, 1, 2, 0, 3, 1, 4, 0]


def all_edges(op):
    edges = [(op, i) for i in INDICES]
    return Genotype(edges, [2, 3, 4, 5], edges, [2, 3, 4, 5])


def observed_instances(cfg: DeployConfig):
    """Runs real networks with hooks and returns {(op, c_in, c_out, h, w, stride):
    output shape} for every op module placed, for every primitive."""
    seen = {}

    def hook_for(name, stride):
        def hook(mod, inp, out):
            x = inp[0]
            seen[(name, x.shape[1], out.shape[1], x.shape[2], x.shape[3], stride)] = \
                tuple(out.shape[1:])
        return hook

    for op in PRIMITIVES:
        net = build_network_from_genotype(all_edges(op), C=cfg.channels, num_cells=cfg.layers,
                                          input_size=cfg.input_size).eval()
        for cell in net.cells:
            for k, m in enumerate(cell._ops):
                stride = 2 if cell.reduction and INDICES[k] < 2 else 1
                m.register_forward_hook(hook_for(op, stride))
            pre0 = cell.preprocess0
            name0 = "factorized_reduce" if pre0.__class__.__name__ == "FactorizedReduce" \
                else "relu_conv_bn_1x1"
            pre0.register_forward_hook(hook_for(name0, 2 if name0 == "factorized_reduce" else 1))
            cell.preprocess1.register_forward_hook(hook_for("relu_conv_bn_1x1", 1))

            def sums(mod, inp, out):  # each node adds two C-channel tensors at the output size
                c = out.shape[1] // len(mod._concat)
                seen[("node_add", 2 * c, c, out.shape[2], out.shape[3], 1)] = \
                    (c, out.shape[2], out.shape[3])
            cell.register_forward_hook(sums)
        net.stem.register_forward_hook(hook_for("stem", 1))
        net.head.register_forward_hook(
            lambda m, i, o: seen.__setitem__(("gap_linear", i[0].shape[1], o.shape[1],
                                              i[0].shape[2], i[0].shape[3], 1),
                                             (o.shape[1], 1, 1)))
        with torch.no_grad():
            net(torch.randn(1, 3, cfg.input_size, cfg.input_size))
    return seen


@pytest.mark.parametrize("cfg", [DeployConfig(), DeployConfig(channels=8, layers=5,
                                                               input_size=16)])
def test_enumeration_equals_modules_of_the_network(cfg):
    seen = observed_instances(cfg)
    insts = enumerate_instances(cfg)
    enumerated = {(i.op, i.c_in, i.c_out, i.h, i.w, i.stride): i for i in insts}
    assert set(enumerated) == set(seen)
    assert len(insts) == len(seen)
    for k, inst in enumerated.items():
        assert inst.output_shape() == seen[k], k


def test_default_deploy_network_counts():
    cfg = DeployConfig()
    insts = enumerate_instances(cfg)
    prims = [i for i in insts if OPS[i.op].kind == "primitive"]
    # 8 primitives at 3 normal shapes + 2 stride-2 reduction shapes
    assert len(prims) == 8 * 5
    assert len(insts) == 53           # + one node sum per cell geometry
    # with repetitions: 20 cells x 14 edges x 8 ops, and stem + 2 per cell + head
    assert len(network_edge_instances(cfg)) == 20 * 14 * 8
    assert len(network_fixed_instances(cfg)) == 1 + 2 * 20 + 1


def test_cell_plan_matches_darts_stacking():
    plan = cell_plan(36, 20, 32)
    assert [g.index for g in plan if g.reduction] == [6, 13]
    assert plan[6].c == 72 and plan[13].c == 144
    assert plan[7].reduction_prev and plan[7].h_prev_prev == 32 and plan[7].h_in == 16
    assert plan[-1].h_out == 8 and plan[-1].c == 144


def test_registry_builds_every_op_with_declared_shape():
    for name, spec in OPS.items():
        c_out = 10 if name == "gap_linear" else 16
        c_in = {"stem": 3, "node_add": 32}.get(name, 16)   # node_add: two stacked operands
        for stride in ((1, 2) if spec.kind == "primitive" else (1,)):
            m = spec.build(c_in, c_out, stride).eval()
            y = m(torch.randn(2, c_in, 8, 8))
            y_shape = tuple(y.shape[1:]) if y.dim() == 4 else (y.shape[1], 1, 1)
            assert y_shape == spec.shape(c_in, c_out, 8, 8, stride), name


def test_duplicate_registration_rejected():
    from nasbench.ops import register_op
    with pytest.raises(ValueError):
        register_op("sep_conv_3x3", group="sep_conv")(lambda *a, **k: None)
