"""ProxylessNAS search: gate sampling, the binary-gate gradient, expected cost against a
hand computation, both loss forms, derivation, the hard-target repair, the config."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from nasbench.errors import UserError
from nasbench.luts import get_device
from nasbench.oneshot.proxyless import (
    ProxylessArch,
    ProxylessCostModel,
    ProxylessObjective,
    ProxylessSupernet,
    arch_lut_cost,
    binary_arch_step,
    reinforce_arch_step,
    repair_arch_to_target,
    weight_step,
)
from nasbench.ops import PROXYLESS_PRIMITIVES
from nasbench.searchers.proxyless_config import ProxylessConfig
from nasbench.spaces.proxyless import (
    ProxylessDeployConfig,
    arch_instances,
    block_instance,
    block_plan,
    enumerate_instances,
    network_fixed_instances,
)
from profilers.lut import LUT, full_key
from tests.conftest import make_entry

TINY = ProxylessDeployConfig.from_layout("cifar", input_size=8, width_mult=0.25)


def op_cost(inst) -> float:
    """A deterministic fake latency (ms): grows with kernel, expansion and width."""
    if inst.op == "zero":
        return 0.002
    a = dict(inst.attrs)
    return round(0.05 + inst.c_in * a.get("e", 1) * a.get("k", 1) / 400.0, 4)


def proxyless_lut(deploy, drop=(), device=None, energy=False) -> LUT:
    """Returns a LUT of ``deploy`` with :func:`op_cost` latencies (and energy)."""
    entries = {}
    for inst in enumerate_instances(deploy):
        if inst.op in drop:
            continue
        e = make_entry(inst.key, deploy.batches[0], op_cost(inst))
        if energy:
            e["energy_j"] = op_cost(inst) * 1e-3
        entries[full_key(inst.key, deploy.batches[0])] = e
    dev = device or get_device("cpu").to_dict()
    return LUT({"device": dev, "deploy": deploy.describe(), "space": "proxyless",
                "batches": list(deploy.batches)}, entries)


@pytest.fixture
def net():
    torch.manual_seed(0)
    return ProxylessSupernet(TINY)


def hooks_on_candidates(net):
    ran = []
    for b, blk in enumerate(net.blocks):
        for name, m in blk.ops.items():
            m.register_forward_hook(lambda mod, i, o, b=b, name=name: ran.append((b, name)))
    return ran


def test_single_path_runs_only_the_sampled_ops(net):
    ran = hooks_on_candidates(net)
    x = torch.randn(4, 3, 8, 8)
    for _ in range(3):
        ran.clear()
        idx = net.sample_single()
        net(x)
        assert sorted(ran) == [(b, PROXYLESS_PRIMITIVES[i]) for b, i in enumerate(idx)]
    # a weight step leaves every unsampled path without a gradient (not decayed, not moved)
    opt = torch.optim.SGD(net.weights(), 0.1, momentum=0.9, weight_decay=1e-3)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    ran.clear()
    weight_step(net, opt, x, torch.randint(0, 10, (4,)))
    used = set(ran)
    assert len(used) == len(net.blocks)
    for b, blk in enumerate(net.blocks):
        for name, m in blk.ops.items():
            for p in m.parameters():
                if (b, name) in used:
                    assert p.grad is not None
                else:
                    assert p.grad is None
        for name, m in blk.ops.items():
            if (b, name) not in used:
                for pn, p in m.named_parameters():
                    assert torch.equal(p, before[f"blocks.{b}.ops.{name}.{pn}"])
    assert net.alphas.grad is None


def test_two_path_mode_runs_two_ops_and_gates_select_the_active(net):
    ran = hooks_on_candidates(net)
    x = torch.randn(4, 3, 8, 8)
    inv = net.sample_two()
    y = net(x)
    assert sorted(ran) == sorted([(b, PROXYLESS_PRIMITIVES[int(i)]) for b in
                                  range(len(net.blocks)) for i in inv[b]])
    assert all(int(inv[b, 0]) != int(inv[b, 1]) for b in range(len(net.blocks)))
    # the output is that of the active path alone
    net.set_path([int(i) for i in inv[:, 0]])
    assert torch.allclose(net(x), y.detach())


def test_sampling_follows_the_distribution_and_respects_the_mask(net):
    with torch.no_grad():
        net.alphas.zero_()
        net.alphas[:, PROXYLESS_PRIMITIVES.index("zero")] = 50.0   # zero would dominate
        net.alphas[:, 2] = 49.0
    counts = torch.zeros_like(net.alphas)
    for _ in range(50):
        for b, i in enumerate(net.sample_single()):
            counts[b, i] += 1
    for b, g in enumerate(net.plan):
        if g.identity:
            assert counts[b, 6] > 25                  # p(zero) = e / (e + 1) = 0.73
        else:
            assert counts[b, 6] == 0 and counts[b, 2] == 50
    for _ in range(10):
        inv = net.sample_two()
        for b, g in enumerate(net.plan):
            if not g.identity:
                assert 6 not in inv[b].tolist()


def test_binary_gate_gradient_matches_its_definition(net):
    """dL/dalpha_i = sum_j dL/dg_j p~_j (delta_ij - p~_i) over the two sampled paths,
    checked against autograd of sum_j dL/dg_j p~_j(alpha)."""
    torch.manual_seed(1)
    with torch.no_grad():
        net.alphas.normal_(0, 0.5)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    inv = net.sample_two()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    gates_grad = net._gates.grad.clone()
    assert gates_grad.abs().sum() > 0
    net.alphas.grad = None
    net.set_binary_gate_grad()
    a = net.alphas.detach().clone().requires_grad_(True)
    surrogate = sum((gates_grad[b, inv[b]] * torch.softmax(a[b, inv[b]], 0)).sum()
                    for b in range(len(net.blocks)))
    (want,) = torch.autograd.grad(surrogate, a)
    assert torch.allclose(net.alphas.grad, want, atol=1e-7)
    # only the two sampled alphas of a block get a gradient
    assert ((net.alphas.grad != 0).sum(1) <= 2).all()


def test_inactive_gate_gradient_is_the_path_output_projection(net):
    """dL/dg of the inactive path = <dL/dy, op_inactive(x)> at the last block."""
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 10, (2,))
    inv = net.sample_two()
    feats = {}
    last = net.blocks[-1]
    last.register_forward_hook(lambda m, i, o: feats.update(x=i[0], y=o))
    feats_y = []

    def keep(m, i, o):
        o.retain_grad()
        feats_y.append(o)

    last.register_forward_hook(keep)
    F.cross_entropy(net(x), y).backward()
    with torch.no_grad():
        other = last.ops[last.inactive](feats["x"])
    b = len(net.blocks) - 1
    want = (feats_y[0].grad * other).sum()
    assert torch.allclose(net._gates.grad[b, inv[b, 1]], want, rtol=1e-4, atol=1e-6)


def test_arch_step_rescale_keeps_the_mass_of_the_two_paths(net):
    """Without a cost term only the two involved alphas move, and the sum of their exp
    is kept, so every other candidate's probability is unchanged."""
    opt = torch.optim.Adam(net.arch_parameters(), 0.1, betas=(0.0, 0.999))
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    p0 = net.probs().detach().clone()
    a0 = net.alphas.detach().clone()
    info = binary_arch_step(net, ProxylessObjective(None), opt, x, y)
    assert info["val_loss"] > 0 and 0 <= info["val_correct"] <= 4
    inv = net._involved
    p1 = net.probs().detach()
    for b in range(len(net.blocks)):
        others = [o for o in range(7) if o not in inv[b].tolist()]
        assert torch.allclose(p1[b, others], p0[b, others], atol=1e-6)
        assert torch.allclose(torch.logsumexp(net.alphas[b, inv[b]].detach(), 0),
                              torch.logsumexp(a0[b, inv[b]], 0), atol=1e-5)
    assert not torch.equal(net.alphas.detach(), a0)
    # weights were frozen during the step and are trainable again
    assert all(p.requires_grad for p in net.weights())


def test_expected_latency_against_a_hand_computation(net):
    lut = proxyless_lut(TINY)
    cm = ProxylessCostModel.from_lut(lut, TINY, ["latency"])
    torch.manual_seed(3)
    alphas = torch.randn(len(net.plan), 7, dtype=torch.float64, requires_grad=True)
    fixed = sum(op_cost(i) for i in network_fixed_instances(TINY))
    want = fixed
    for b, g in enumerate(block_plan(TINY)):
        cands = g.candidates
        z = sum(math.exp(float(alphas.detach()[b, PROXYLESS_PRIMITIVES.index(c)]))
                for c in cands)
        for c in cands:
            p = math.exp(float(alphas.detach()[b, PROXYLESS_PRIMITIVES.index(c)])) / z
            want += p * op_cost(block_instance(g, c))
    got = cm.expected(alphas)["latency"]
    assert abs(float(got.detach()) - want) < 1e-9
    got.backward()
    assert alphas.grad is not None and alphas.grad.abs().sum() > 0
    # the masked 'zero' alpha of a shortcut-free block gets no gradient
    assert all(alphas.grad[b, 6] == 0 for b, g in enumerate(block_plan(TINY))
               if not g.identity)
    # one-hot alphas give the LUT cost of that network, = the sum over its instances
    arch = ProxylessArch(tuple(g.candidates[-1] for g in block_plan(TINY)))
    onehot = torch.full((len(net.plan), 7), -1e4, dtype=torch.float64)
    for b, op in enumerate(arch.blocks):
        onehot[b, PROXYLESS_PRIMITIVES.index(op)] = 0.0
    by_hand = sum(op_cost(i) for i in arch_instances(TINY, list(arch.blocks)))
    assert abs(float(cm.expected(onehot)["latency"]) - by_hand) < 1e-9
    assert abs(cm.arch_cost(arch)["latency"] - by_hand) < 1e-9
    assert abs(arch_lut_cost(lut, TINY, arch) - by_hand) < 1e-9
    lo, hi = cm.bounds()
    assert lo < cm.reference["latency"] < hi


def test_both_loss_forms_against_the_papers_formulas():
    lut = proxyless_lut(TINY)
    cm = ProxylessCostModel.from_lut(lut, TINY, ["latency"])
    ce = torch.tensor(2.0, requires_grad=True)
    e = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)
    mul = ProxylessObjective(cm, "mul#log", alpha=0.2, beta=0.3, latency_target_ms=3.0)
    got = mul.loss(ce, {"latency": e})
    assert abs(got.item() - 0.2 * 2.0 * (math.log(4.0) / math.log(3.0)) ** 0.3) < 1e-6
    got.backward()
    assert e.grad > 0 and ce.grad > 0           # slower or less accurate: higher loss
    e.grad = None
    add = ProxylessObjective(cm, "add#linear", lam=0.1, latency_target_ms=3.0)
    got = add.loss(ce, {"latency": e})
    assert abs(got.item() - (2.0 + 0.1 * (4.0 - 3.0) / 3.0)) < 1e-6
    got.backward()
    assert abs(float(e.grad) - 0.1 / 3.0) < 1e-9
    # without a target the reference is E[latency] under uniform alphas
    assert ProxylessObjective(cm, "add#linear").refs["latency"] == cm.reference["latency"]
    # log(ref) must be positive (ref above 1 ms)
    with pytest.raises(ValueError, match="above 1 ms"):
        ProxylessObjective(cm, "mul#log", latency_target_ms=0.8)
    assert ProxylessObjective(None).loss(ce, {}) is ce
    # energy: the same machinery on the LUT's energy column (mJ in the log form)
    cme = ProxylessCostModel.from_lut(proxyless_lut(TINY, energy=True), TINY,
                                      ["latency", "energy"])
    obj = ProxylessObjective(cme, "add#linear", metrics=["energy"])
    assert list(obj.refs) == ["energy"]
    ex = cme.expected(torch.zeros(len(block_plan(TINY)), 7))
    assert abs(ex["energy"].item() - 1e-3 * ex["latency"].item()) < 1e-12
    assert abs(obj.loss(ce, ex).item() - 2.0) < 1e-9          # uniform alphas: E = ref


def test_the_target_steers_add_linear_and_only_scales_mul_log():
    cm = ProxylessCostModel.from_lut(proxyless_lut(TINY), TINY, ["latency"])
    ce = torch.tensor(2.0)
    ratios = []
    for e in (4.0, 9.0):
        ex = {"latency": torch.tensor(e, dtype=torch.float64)}
        lo = ProxylessObjective(cm, "mul#log", latency_target_ms=3.0).loss(ce, ex)
        hi = ProxylessObjective(cm, "mul#log", latency_target_ms=6.0).loss(ce, ex)
        ratios.append(float(lo / hi))
    # mul#log: the target is a constant factor (log 6 / log 3)^beta of the whole loss
    assert abs(ratios[0] - ratios[1]) < 1e-6
    assert abs(ratios[0] - (math.log(6) / math.log(3)) ** 0.3) < 1e-6
    # add#linear: the latency gradient is lambda / ref
    grads = []
    for ref in (3.0, 6.0):
        e = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
        ProxylessObjective(cm, "add#linear", lam=0.1, latency_target_ms=ref).loss(
            ce, {"latency": e}).backward()
        grads.append(float(e.grad))
    assert abs(grads[0] - 2 * grads[1]) < 1e-12
    # mul#log is undefined where a network can cost 1 ms or less (log E <= 0)
    cheap = LUT({}, {k: {**v, "latency_ms": {"median": v["latency_ms"]["median"] / 10}}
                     for k, v in proxyless_lut(TINY).entries.items()})
    cm_cheap = ProxylessCostModel.from_lut(cheap, TINY, ["latency"])
    with pytest.raises(ValueError, match="cheapest network"):
        ProxylessObjective(cm_cheap, "mul#log", latency_target_ms=3.0)


def test_latency_loss_steers_the_alphas_to_cheaper_blocks(net):
    lut = proxyless_lut(TINY)
    cm = ProxylessCostModel.from_lut(lut, TINY, ["latency"])
    obj = ProxylessObjective(cm, "add#linear", lam=20.0)
    opt = torch.optim.Adam(net.arch_parameters(), 0.1, betas=(0.0, 0.999))
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    e0 = float(cm.expected(net.alphas.detach())["latency"])
    for _ in range(10):
        binary_arch_step(net, obj, opt, x, y)
    assert float(cm.expected(net.alphas.detach())["latency"]) < 0.9 * e0


def test_reinforce_step_moves_towards_higher_reward(net):
    lut = proxyless_lut(TINY)
    cm = ProxylessCostModel.from_lut(lut, TINY, ["latency"])
    obj = ProxylessObjective(cm, "mul#log", latency_target_ms=2.0, tradeoff=1.0)
    obj.reward = lambda acc, costs: -costs["latency"]      # reward = cheapness only
    opt = torch.optim.Adam(net.arch_parameters(), 0.1, betas=(0.0, 0.999))
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    baseline = {"value": None}
    e0 = float(cm.expected(net.alphas.detach())["latency"])
    for _ in range(10):
        info = reinforce_arch_step(net, obj, opt, x, y, 3, baseline, 0.99)
    assert baseline["value"] is not None and math.isfinite(info["loss"])
    assert float(cm.expected(net.alphas.detach())["latency"]) < e0
    # the real reward: acc x (ref / lat)^tradeoff
    real = ProxylessObjective(cm, "mul#log", latency_target_ms=2.0, tradeoff=0.1)
    assert abs(real.reward(0.5, {"latency": 4.0}) - 0.5 * 0.5 ** 0.1) < 1e-12


def test_derivation_is_argmax_and_zero_only_where_allowed(net):
    with torch.no_grad():
        net.alphas.zero_()
        net.alphas[:, 6] = 5.0                   # zero preferred everywhere
        net.alphas[:, 3] = 4.0                   # then mb_k5_e6
    arch = net.derive()
    for g, op in zip(net.plan, arch.blocks, strict=True):
        assert op == ("zero" if g.identity else "mb_k5_e6")
    arch.validate_for(TINY)


def test_repair_meets_the_target_or_says_it_cannot(net):
    cm = ProxylessCostModel.from_lut(proxyless_lut(TINY), TINY, ["latency"])
    dear = ProxylessArch(tuple("mb_k7_e6" for _ in net.plan))
    cost = cm.arch_cost(dear)["latency"]
    lo, hi = cm.bounds()
    assert abs(cost - hi) < 1e-9
    target = (lo + hi) / 2
    rep = repair_arch_to_target(dear, cm, target, net.probs())
    assert rep.met and rep.after_ms <= target < rep.before_ms and rep.swaps
    assert abs(cm.arch_cost(rep.arch)["latency"] - rep.after_ms) < 1e-9
    assert all(s["saved"] > 0 for s in rep.swaps)
    ok = repair_arch_to_target(dear, cm, hi + 1, net.probs())
    assert ok.met and not ok.swaps and ok.arch == dear
    bad = repair_arch_to_target(dear, cm, lo / 2, net.probs())
    assert not bad.met and "cannot meet" in bad.message
    assert abs(bad.after_ms - lo) < 1e-9 and abs(bad.lower_bound_ms - lo) < 1e-9


def test_arch_round_trip():
    arch = ProxylessArch(("mb_k3_e3", "zero", "mb_k7_e6"), "cifar")
    d = json.loads(json.dumps(arch.to_dict()))
    assert d["space"] == "proxyless" and d["blocks"] == ["mb_k3_e3", "zero", "mb_k7_e6"]
    assert ProxylessArch.from_dict(d) == arch
    assert arch.summary() == "k3e3 skip k7e6" and "\n" not in arch.summary()
    with pytest.raises(ValueError, match="unknown proxyless candidate"):
        ProxylessArch(("mb_k9_e9",))
    with pytest.raises(ValueError):
        ProxylessArch.from_dict({"normal": []})


def test_presets_and_validation():
    q = ProxylessConfig.from_preset()
    assert (q.preset, q.dataset, q.space_config, q.latency_loss, q.grad_estimator) == \
        ("quick", "digits", "cifar", "add#linear", "binary")
    p = ProxylessConfig.from_preset("paper")
    assert (p.warmup_epochs, p.epochs, p.batch_size, p.learning_rate,
            p.warmup_learning_rate, p.weight_decay, p.nesterov) == \
        (40, 120, 256, 0.025, 0.05, 4e-5, True)
    assert (p.arch_learning_rate, p.arch_betas, p.arch_eps, p.arch_update_every,
            p.latency_loss, p.loss_alpha, p.loss_beta, p.loss_lambda, p.label_smoothing) == \
        (1e-3, (0.0, 0.999), 1e-8, 5, "mul#log", 0.2, 0.3, 0.1, 0.1)
    assert ProxylessConfig.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert ProxylessConfig.from_preset("quick", epochs=7).epochs == 7
    bad = [dict(latency_loss="mul"), dict(grad_estimator="evolution"),
           dict(space_config="mobile"), dict(epochs=0), dict(width_mult=0.0),
           dict(objective="acc", latency_target_ms=4.0), dict(latency_target_ms=-1.0),
           dict(latency_loss="mul#log", latency_target_ms=0.5), dict(rl_baseline_decay=2.0),
           dict(arch_learning_rate=0.0)]
    for kw in bad:
        with pytest.raises(UserError) as ei:
            ProxylessConfig.from_preset("quick", **kw)
        assert "\n" not in str(ei.value)
    with pytest.raises(UserError):
        ProxylessConfig.from_preset("fast")
    assert ProxylessConfig.from_preset(latency_target_ms=0.5).latency_target_ms == 0.5
    d = q.deploy(num_classes=10)
    assert d.describe()["space"] == "proxyless" and d.batches == (1,)
