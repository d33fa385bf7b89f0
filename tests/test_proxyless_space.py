"""The ProxylessNAS space: block shapes, the identity-shortcut rule, layouts, LUT keys,
and the profiling enumeration against the modules that actually run."""

import json

import pytest
import torch

from nasbench.cli import main
from nasbench.luts import cached_lut_path, deploy_provenance, get_device, profile_items
from nasbench.oneshot.proxyless import ProxylessArch, ProxylessSupernet
from nasbench.ops import MBCONV_OPS, OPS, PROXYLESS_PRIMITIVES, MBConv, SkipBlock
from nasbench.spaces.proxyless import (
    ProxylessDeployConfig,
    arch_instances,
    block_candidate_instances,
    block_instance,
    block_plan,
    enumerate_instances,
    make_divisible,
    network_fixed_instances,
    paper_key,
)
from nasbench.spaces.proxyless_network import build_proxyless_network
from profilers.lut import LUT

SMALL = ProxylessDeployConfig.from_layout("cifar", input_size=16, width_mult=0.5)


def test_candidates_are_the_papers():
    assert PROXYLESS_PRIMITIVES == ["mb_k3_e3", "mb_k3_e6", "mb_k5_e3", "mb_k5_e6",
                                    "mb_k7_e3", "mb_k7_e6", "zero"]
    # an op belongs to the spaces that list it (OpSpec has no single space any more)
    from nasbench.spaces import get_space
    assert list(get_space("proxyless").candidate_ops) == PROXYLESS_PRIMITIVES
    assert "none" not in PROXYLESS_PRIMITIVES and "none" in get_space("darts").candidate_ops
    assert OPS["mb_k5_e6"].group == "mbconv" and OPS["zero"].group == "skip"
    for n in ("px_stem", "mb_k3_e1", "px_feature_mix"):
        assert OPS[n].kind == "fixed"


@pytest.mark.parametrize("name", list(MBCONV_OPS))
@pytest.mark.parametrize("c_in,c_out,stride,h", [(8, 8, 1, 8), (8, 16, 2, 9), (16, 8, 1, 5)])
def test_mbconv_structure_and_shape(name, c_in, c_out, stride, h):
    k, e = MBCONV_OPS[name]
    m = OPS[name].build(c_in, c_out, stride).eval()
    assert isinstance(m, MBConv)
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    mid = c_in * e
    if e == 1:                       # no expansion layer
        assert len(convs) == 2 and convs[0].groups == c_in
    else:
        assert len(convs) == 3 and convs[0].kernel_size == (1, 1)
        assert convs[0].out_channels == mid
    dw = convs[-2]
    assert dw.kernel_size == (k, k) and dw.groups == mid and dw.stride == (stride, stride)
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == c_out
    acts = [x for x in m.modules() if isinstance(x, torch.nn.ReLU6)]
    assert len(acts) == (1 if e == 1 else 2)          # the projection is linear
    y = m(torch.randn(2, c_in, h, h))
    assert tuple(y.shape[1:]) == OPS[name].shape(c_in, c_out, h, h, stride)
    assert y.shape[2] == -(-h // stride)


def _zero_last_bn(m: MBConv):
    bn = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)][-1]
    torch.nn.init.zeros_(bn.weight)
    torch.nn.init.zeros_(bn.bias)


@pytest.mark.parametrize("c_in,c_out,stride,identity", [(8, 8, 1, True), (8, 16, 1, False),
                                                        (8, 8, 2, False)])
def test_identity_shortcut_rule(c_in, c_out, stride, identity):
    m = OPS["mb_k3_e3"].build(c_in, c_out, stride).eval()
    assert m.identity is identity
    _zero_last_bn(m)                  # the conv branch now outputs exactly 0
    x = torch.randn(2, c_in, 8, 8)
    y = m(x)
    if identity:
        assert torch.equal(y, x)     # only the shortcut is left
    else:
        assert torch.count_nonzero(y) == 0
    # zero: the block is skipped, and only where the shortcut exists
    z = OPS["zero"].build(8, 8, 1)
    assert isinstance(z, SkipBlock) and torch.equal(z(x), x)
    with pytest.raises(ValueError):
        OPS["zero"].build(8, 16, 1)


def test_block_plan_marks_identity_blocks_and_zero_candidates():
    for cfg in (ProxylessDeployConfig(), ProxylessDeployConfig.from_layout("imagenet"), SMALL):
        for g in block_plan(cfg):
            assert g.identity == (g.stride == 1 and g.c_in == g.c_out)
            assert ("zero" in g.candidates) == g.identity
            assert len(g.candidates) == (7 if g.identity else 6)
            if not g.identity:
                with pytest.raises(ValueError):
                    block_instance(g, "zero")


def test_layouts():
    c = ProxylessDeployConfig()
    plan = block_plan(c)
    assert len(plan) == 12 and sum(g.identity for g in plan) == 7
    assert plan[0].h_in == 32 and plan[-1].h_out == 4 and plan[-1].c_out == 160
    # the paper's ImageNet layout: 224 -> 112 (stem) -> 7x7 head, 21 searchable blocks
    im = ProxylessDeployConfig.from_layout("imagenet")
    p = block_plan(im)
    assert len(p) == 21 and p[0].h_in == 112 and p[0].c_in == 16 and p[-1].h_out == 7
    assert [g.c_out for g in p if g.index in (0, 4, 8, 12, 16, 20)] == [24, 40, 80, 96, 192,
                                                                        320]
    assert (im.feature_channels, im.num_classes, im.stem_channels) == (1280, 1000, 32)
    d = c.describe()
    assert d["space"] == "proxyless" and json.loads(json.dumps(d)) == d
    assert make_divisible(24 * 0.5) == 16 and make_divisible(40 * 1.4) == 56
    assert SMALL.stem_channels == 16 and block_plan(SMALL)[-1].c_out == 80


def test_lut_keys_carry_the_proxyless_table_fields():
    g = block_plan(ProxylessDeployConfig())[0]
    inst = block_instance(g, "mb_k5_e3")
    assert inst.key == "mb_k5_e3/c16-24/h32w32/s2/o16x16x24/e3/k5/id0"
    assert paper_key(inst) == ("expanded_conv-input:32x32x16-output:16x16x24-expand:3-"
                               "kernel:5-stride:2-idskip:0")
    ident = block_plan(ProxylessDeployConfig())[1]
    assert block_instance(ident, "mb_k7_e6").key.endswith("/e6/k7/id1")
    assert block_instance(ident, "zero").key == "zero/c24-24/h16w16/s1/o16x16x24/id1"
    stem, first, mix, head = network_fixed_instances(ProxylessDeployConfig())
    assert paper_key(stem) == "Conv-input:32x32x3-output:32x32x24"
    assert paper_key(mix) == "Conv_1-input:4x4x160-output:4x4x640"
    assert paper_key(head) == "Logits-input:4x4x640-output:10"


def observed(cfg: ProxylessDeployConfig) -> dict:
    """Runs the supernet once per candidate column with hooks on every module and returns
    {(op, c_in, c_out, h, w, stride): output (C, H, W)} of the modules that ran."""
    net = ProxylessSupernet(cfg).eval()
    seen = {}

    def hook(name, stride):
        def f(mod, inp, out):
            x = inp[0]
            shape = tuple(out.shape[1:]) if out.dim() == 4 else (out.shape[1], 1, 1)
            seen[(name, x.shape[1], shape[0], x.shape[2], x.shape[3], stride)] = shape
        return f

    net.stem.register_forward_hook(hook("px_stem", cfg.stem_stride))
    net.first.register_forward_hook(hook("mb_k3_e1", 1))
    net.feature_mix.register_forward_hook(hook("px_feature_mix", 1))
    net.classifier.register_forward_hook(hook("gap_linear", 1))
    for g, blk in zip(net.plan, net.blocks, strict=True):
        for name, m in blk.ops.items():
            m.register_forward_hook(hook(name, g.stride))
    with torch.no_grad():
        for o in range(len(PROXYLESS_PRIMITIVES)):
            net.set_path([o if net.allowed[b, o] else 0 for b in range(len(net.plan))])
            net(torch.randn(1, cfg.in_channels, cfg.input_size, cfg.input_size))
    return seen


@pytest.mark.parametrize("cfg", [SMALL, ProxylessDeployConfig(input_size=8)])
def test_enumeration_equals_the_modules_that_run(cfg):
    seen = observed(cfg)
    insts = enumerate_instances(cfg)
    enumerated = {(i.op, i.c_in, i.c_out, i.h, i.w, i.stride): i for i in insts}
    assert set(enumerated) == set(seen)
    assert len(insts) == len(seen) == len({i.key for i in insts})
    for k, inst in enumerated.items():
        assert inst.output_shape() == seen[k], k
    # counts: 4 fixed parts + the distinct (block shape x candidate) pairs
    shapes = {(g.c_in, g.c_out, g.h_in, g.stride) for g in block_plan(cfg)}
    assert len(insts) == 4 + sum(7 if c == o and s == 1 else 6 for c, o, _, s in shapes)
    assert len(block_candidate_instances(cfg)) == sum(len(g.candidates)
                                                      for g in block_plan(cfg))
    # the profiler measures exactly these, at every batch size
    two = cfg.replace(batches=(1, 4))
    items = profile_items(two)
    assert len(items) == 2 * len(insts)
    assert {it.key.rsplit("/", 2)[0] for it in items} == {i.key for i in insts}
    assert deploy_provenance(cfg)["space"] == "proxyless"
    assert "-proxyless-" in cached_lut_path(get_device("cpu"), cfg).name


def test_derived_network_runs_exactly_its_lut_instances():
    plan = block_plan(SMALL)
    blocks = ["zero" if g.identity else PROXYLESS_PRIMITIVES[g.index % 6] for g in plan]
    arch = ProxylessArch(tuple(blocks))
    net = build_proxyless_network(arch, SMALL).eval()
    insts = net.instances()
    assert [i.key for i in insts] == [i.key for i in arch_instances(SMALL, blocks)]
    assert len(net.layers) == len(plan) + 4
    shapes = []
    for m in net.layers:
        m.register_forward_hook(lambda mod, i, o: shapes.append(
            (i[0].shape[1], i[0].shape[2], tuple(o.shape[1:]))))
    with torch.no_grad():
        y = net(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 10)
    for (c, h, out), inst in zip(shapes, insts, strict=True):
        assert (c, h) == (inst.c_in, inst.h)
        assert out == inst.output_shape() or out == (inst.c_out,)
    with pytest.raises(ValueError, match="not a candidate"):
        build_proxyless_network(ProxylessArch(("zero",) * len(plan)), SMALL)


def test_cli_profile_proxyless(tmp_path, monkeypatch, capsys):
    """The CLI wiring (space, layout, provenance, one entry per instance); the meters are
    replaced by a stub, the real loop is tests/test_profile.py's."""
    import profilers.build

    def fake_measure(item, device, backend, settings, energy_meter=None, anchor=None):
        return {**item.fields, "latency_ms": {"median": 0.1, "mean": 0.1, "p5": 0.1,
                                              "p95": 0.1, "cv": 0.0, "repeats": 3},
                "noisy": False, "memory_bytes": 1, "energy_j": None, "energy_reason": "x"}

    monkeypatch.setattr(profilers.build, "measure_item", fake_measure)
    out = tmp_path / "px.json"
    assert main(["profile", "--space", "proxyless", "--config", "cifar", "--input", "16",
                 "--width-mult", "0.5", "--out", str(out), "--quiet"]) == 0
    lut = LUT.load(out)
    assert lut.provenance["space"] == "proxyless"
    assert lut.provenance["deploy"] == SMALL.describe()
    assert set(lut.entries) == {it.key for it in profile_items(SMALL)}
    e = lut.entry(block_instance(block_plan(SMALL)[1], "mb_k5_e6").key, 1)
    assert (e["e"], e["k"], e["id"], e["o"]) == (6, 5, 1, "8x8x16")
    capsys.readouterr()
    for args, msg in ((["--config", "mobile"], "unknown proxyless space config"),
                      (["--channels", "8"], "DARTS network"),
                      (["--width-mult", "0"], "width multiplier")):
        assert main(["profile", "--space", "proxyless", *args]) == 2
        assert msg in capsys.readouterr().err


@pytest.mark.slow
def test_real_tiny_profile(tmp_path):
    from nasbench.luts import run_profile
    from profilers.latency import LatencySettings
    cfg = ProxylessDeployConfig.from_layout("cifar", input_size=8, width_mult=0.25)
    fast = LatencySettings(warmup=1, warmup_s=0.0, min_repeats=3, max_repeats=5,
                           time_cap_s=0.02)
    lut = run_profile(get_device("cpu"), cfg, tmp_path / "t.json", settings=fast)
    assert lut.missing([i.key for i in enumerate_instances(cfg)], 1) == []
