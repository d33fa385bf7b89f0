"""ENAS: the controller's log-probability and entropy against a hand computation, the
REINFORCE direction, MnasNet's two reward forms, the searcher end to end on the
synthetic NAS-Bench-201 folder (hard target as a filter, resume mid-epoch equals an
uninterrupted run) and bad input through the CLI."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nasbench.cli import main
from nasbench.errors import UserError
from nasbench.oneshot.controller import Controller, mnasnet_reward, reinforce_update

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import cost_ms, write_fake_nb201  # noqa: E402

TINY = {"a": ["x", "y"], "b": ["u", "v"]}


def test_log_prob_and_entropy_by_hand_with_zero_lstm_weights():
    """All LSTM weights 0: every gate is sigmoid(0) = 1/2 and the cell input tanh(0) = 0,
    so h = 0 at every step and a decision's logits are its head's bias."""
    c = Controller(TINY, hidden=3, temperature=None, tanh_constant=None)
    with torch.no_grad():
        for p in c.parameters():
            p.zero_()
        c.heads[0].bias.copy_(torch.tensor([0.0, math.log(3.0)]))   # p(a) = 1/4, 3/4
        c.heads[1].bias.copy_(torch.tensor([math.log(4.0), 0.0]))   # p(b) = 4/5, 1/5
    values, logp, ent = c({"a": "y", "b": "v"})
    assert values == {"a": "y", "b": "v"}
    assert float(logp.detach()) == pytest.approx(math.log(3 / 4) + math.log(1 / 5), abs=1e-6)

    def h(*p):
        return -sum(q * math.log(q) for q in p)

    assert float(ent.detach()) == pytest.approx(h(1 / 4, 3 / 4) + h(4 / 5, 1 / 5), abs=1e-6)


def _lstm_by_hand(cell, x, h, c):
    """One step of an LSTM cell written out (PyTorch's gate order i, f, g, o)."""
    z = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    i, f, g, o = z.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def test_log_prob_and_entropy_match_the_lstm_written_out():
    torch.manual_seed(3)
    c = Controller(TINY, hidden=4, temperature=5.0, tanh_constant=1.1).double()
    with torch.no_grad():
        for p in c.parameters():                 # larger weights than the init: visible
            p.uniform_(-1.0, 1.0)
    values = {"a": "x", "b": "v"}
    _, logp, ent = c(values)
    h = cc = torch.zeros(1, 4, dtype=torch.float64)
    inp = c.start
    want_lp = want_h = 0.0
    for k, name in enumerate(TINY):
        h, cc = _lstm_by_hand(c.lstm, inp, h, cc)
        z = h @ c.heads[k].weight.T + c.heads[k].bias
        z = 1.1 * torch.tanh(z / 5.0)
        p = torch.exp(z) / torch.exp(z).sum()
        i = TINY[name].index(values[name])
        want_lp += float(torch.log(p[0, i]).detach())
        want_h += float(-(p * torch.log(p)).sum().detach())
        inp = c.embeds[k].weight[i:i + 1]
    assert float(logp.detach()) == pytest.approx(want_lp, abs=1e-12)
    assert float(ent.detach()) == pytest.approx(want_h, abs=1e-12)
    # a draw reports the log-probability of what it drew
    g = torch.Generator().manual_seed(0)
    drawn, lp2, _ = c(generator=g)
    assert float(c(drawn)[1].detach()) == pytest.approx(float(lp2.detach()), abs=1e-12)
    with pytest.raises(ValueError, match="no option 'z'"):
        c({"a": "z", "b": "u"})


def test_draws_follow_the_policy():
    c = Controller(TINY, hidden=3, temperature=None, tanh_constant=None)
    with torch.no_grad():
        for p in c.parameters():
            p.zero_()
        c.heads[0].bias.copy_(torch.tensor([0.0, math.log(3.0)]))
    g = torch.Generator().manual_seed(1)
    n = 2000
    ys = sum(c(generator=g)[0]["a"] == "y" for _ in range(n))
    assert abs(ys / n - 0.75) < 0.035            # 4 standard errors
    assert c(greedy=True)[0]["a"] == "y"


def test_reinforce_raises_the_probability_of_the_rewarded_option():
    torch.manual_seed(0)
    c = Controller({"op": ["none", "conv", "pool"], "other": ["p", "q"]}, hidden=8)
    opt = torch.optim.Adam(c.parameters(), 0.05)
    before = c.probabilities()["op"][1]
    baseline = {"value": None}
    g = torch.Generator().manual_seed(0)
    for _ in range(15):
        samples = []
        for _ in range(4):
            values, lp, ent = c(generator=g)
            samples.append((lp, ent, 1.0 if values["op"] == "conv" else 0.0))
        info = reinforce_update(opt, samples, baseline, decay=0.9, entropy_weight=1e-4)
    after = c.probabilities()["op"][1]
    assert after > before + 0.2, (before, after)
    assert 0.0 < info["baseline"] < 1.0
    # the opposite reward lowers it
    for _ in range(25):
        samples = []
        for _ in range(4):
            values, lp, ent = c(generator=g)
            samples.append((lp, ent, 0.0 if values["op"] == "conv" else 1.0))
        reinforce_update(opt, samples, baseline, decay=0.9, entropy_weight=1e-4)
    assert c.probabilities()["op"][1] < after - 0.1


def test_the_entropy_bonus_alone_flattens_the_policy():
    c = Controller(TINY, hidden=3, temperature=None, tanh_constant=None)
    with torch.no_grad():
        c.heads[0].bias.copy_(torch.tensor([0.0, 2.0]))
    opt = torch.optim.SGD(c.parameters(), 0.5)
    h0 = float(c({"a": "x", "b": "u"})[2].detach())
    for _ in range(10):       # equal rewards: the advantage is 0, only entropy pushes
        _, lp, ent = c({"a": "x", "b": "u"})
        reinforce_update(opt, [(lp, ent, 1.0)], {"value": 1.0}, entropy_weight=1.0)
    assert float(c({"a": "x", "b": "u"})[2].detach()) > h0


def test_mnasnet_reward_soft_and_hard():
    assert mnasnet_reward(0.9, 2.0, None, hard=True) == 0.9            # no target
    assert mnasnet_reward(0.9, None, 1.0, hard=True) == 0.9            # no cost
    assert mnasnet_reward(0.9, 0.5, 1.0, hard=True) == 0.9             # w = 0 under
    assert mnasnet_reward(0.9, 2.0, 1.0, hard=True) == pytest.approx(0.45)   # w = -1
    assert mnasnet_reward(0.9, 2.0, 1.0, hard=False) == pytest.approx(0.9 * 2 ** -0.07)
    assert mnasnet_reward(0.9, 0.5, 1.0, hard=False) == pytest.approx(0.9 * 0.5 ** -0.07)
    # soft: the cheaper of two equally accurate children wins, even under the target
    assert mnasnet_reward(0.8, 0.5, 1.0, False) > mnasnet_reward(0.8, 0.9, 1.0, False)
    assert mnasnet_reward(0.8, 0.5, 1.0, True) == mnasnet_reward(0.8, 0.9, 1.0, True)


# ---- the searcher through the runner ------------------------------------------------------


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


def _cfg(fake, tmp_path, **kw):
    from nasbench.searchers import ENASConfig
    base = dict(space="nb201", benchmark_dir=str(fake), device="hw-nas-bench:edgegpu",
                dataset="synthetic", train_input_size=16, out=str(tmp_path / "runs"),
                epochs=2, steps_per_epoch=3, batch_size=16, channels=4, layers=1,
                controller_steps=2, controller_aggregate=2, controller_hidden=16,
                derive_samples=12, derive_batches=1, train_epochs=0)
    return ENASConfig.from_preset("quick", "enas", **{**base, **kw})


def test_enas_runs_and_its_hard_target_filters_the_derivation(fake, tmp_path, monkeypatch):
    from nasbench.run.runner import run_search
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    r = run_search(_cfg(fake, tmp_path, latency_target_ms=1.2), quiet=True)
    assert r.status == "complete"
    assert cost_ms(r.genotype) <= 1.2 and r.target["met"]
    hist = json.loads((Path(r.run_dir) / "history.json").read_text())
    assert [h["controller_steps"] for h in hist] == [2, 2]
    assert all(0.0 <= h["reward"] <= 1.0 and h["entropy"] > 0 for h in hist)
    samples = [v for v in r.visited if v.get("kind") == "derivation sample"]
    assert 1 <= len(samples) <= 12
    within = [v for v in samples if v["cost"]["latency"] <= 1.2]
    best = max(within, key=lambda v: v["accuracy"])
    assert best["arch"]["arch"] == r.genotype.to_str()
    # the argmax of each epoch (the controller's greedy architecture) is noted too
    assert sum(v.get("kind") == "argmax after the epoch" for v in r.visited) == 2
    # an impossible target (every cell costs 0.5 ms or more): the cheapest sample, marked
    r = run_search(_cfg(fake, tmp_path, latency_target_ms=0.3, epochs=1), quiet=True)
    samples = [v for v in r.visited if v.get("kind") == "derivation sample"]
    cheapest = min(samples, key=lambda v: v["cost"]["latency"])
    assert r.genotype.to_str() == cheapest["arch"]["arch"] and not r.target["met"]


def test_enas_interrupted_and_resumed_equals_uninterrupted(fake, tmp_path, monkeypatch):
    from nasbench.run.runner import run_search
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = _cfg(fake, tmp_path, latency_target_ms=1.5, hard_target=False)
    full = run_search(cfg, quiet=True)
    # step 4 is the first controller step of epoch 1; then stop again in epoch 2
    cut = run_search(cfg.replace(out=str(tmp_path / "cut")), quiet=True,
                     _interrupt_after_steps=4)
    assert cut.status == "interrupted"
    cut = run_search(resume=cut.run_dir, quiet=True, _interrupt_after_steps=3)
    assert cut.status == "interrupted"
    done = run_search(resume=cut.run_dir, quiet=True)
    assert done.status == "complete"
    assert done.genotype == full.genotype
    a = torch.load(Path(full.run_dir) / "checkpoint.pt", weights_only=False)
    b = torch.load(Path(done.run_dir) / "checkpoint.pt", weights_only=False)
    for part in ("controller", "model"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)
    assert a["baseline"] == b["baseline"]
    h1 = json.loads((Path(full.run_dir) / "history.json").read_text())
    h2 = json.loads((Path(done.run_dir) / "history.json").read_text())
    for x, y in zip(h1, h2, strict=True):
        for k in ("train_loss", "reward", "baseline", "greedy"):
            assert x[k] == y[k], k


def test_enas_refuses_the_proxyless_space_and_bad_options():
    from nasbench.searchers import ENASConfig
    with pytest.raises(UserError, match="single paths .* proxyless"):
        ENASConfig.from_preset("quick", "enas", space="proxyless")
    with pytest.raises(UserError, match="--controller-hidden must be a positive"):
        ENASConfig.from_preset("quick", "enas", controller_hidden=0)
    with pytest.raises(UserError, match="baseline-decay"):
        ENASConfig.from_preset("quick", "enas", baseline_decay=1.0)
    with pytest.raises(UserError, match="entropy-weight must be a finite number"):
        ENASConfig.from_preset("quick", "enas", entropy_weight=float("nan"))
    cfg = ENASConfig.from_preset("paper", "enas")
    assert (cfg.channels, cfg.layers, cfg.epochs, cfg.controller_hidden) == (20, 8, 150, 100)
    assert cfg.controller_lr == 3.5e-4 and cfg.entropy_weight == 1e-4
    assert cfg.baseline_decay == 0.99 and cfg.learning_rate == 0.05


@pytest.mark.parametrize("args, words", [
    (["--controller-hidden", "0"], "--controller-hidden must be a positive integer"),
    (["--entropy-weight", "nan"], "entropy-weight must be a finite number"),
    (["--controller-aggregate", "0"], "--controller-aggregate must be positive"),
    (["--space", "proxyless"], "single paths"),
    (["--cost-weight", "0.5"], "--latency-target"),
    (["--order", "second"], "--order"),
    (["--trials", "5"], "multi-trial"),
])
def test_bad_enas_input_is_one_line_and_exit_2(args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    rc = main(["search", "--method", "enas", "-q", "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert words in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "cache").exists()


def test_enas_options_are_refused_by_other_methods(tmp_path, capsys):
    rc = main(["search", "--method", "darts", "--controller-hidden", "50", "-q",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--method enas only" in err, err


def test_single_path_forward_is_what_enas_trains():
    """The shared weights ENAS trains are the supernet's: one weight step on a sampled
    child moves that child's ops only."""
    from nasbench.oneshot.architect import weight_step
    from nasbench.spaces.nb201 import NB201DeployConfig, NB201Space
    space = NB201Space(NB201DeployConfig())
    net = space.supernet(4, 1, 1, input_size=8)
    c = Controller(space.choices(), hidden=8)
    values, _, _ = c(generator=torch.Generator().manual_seed(0))
    arch = space.decode(values)
    opt = torch.optim.SGD(net.weights(), 0.1)
    weight_step(net, opt, torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,)), arch=arch)
    for e, op in enumerate(arch.ops):
        mixed = net.cells[0].edges[e]
        for pos, i in enumerate(mixed._index):
            got = [p.grad is not None for p in mixed._ops[pos].parameters()]
            if got:
                assert all(got) == (space.candidate_ops[i] == op)
    assert F.softmax(net.alphas, -1).shape == (6, 5)


def test_bench_runs_enas_as_a_one_shot_method(fake, tmp_path, monkeypatch):
    """``nasbench bench --method enas``: trained through the runner (no retrain), its
    derived cell looked up in the table; the derivation's samples are its found set."""
    from nasbench.benchmarks import NB201Bench
    from nasbench.run.bench import BenchSpec, run_bench
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    spec = BenchSpec(method="enas", device="hw-nas-bench:edgegpu", benchmark_dir=str(fake),
                     seeds=1, epochs=1, steps_per_epoch=2, target=2.0, data_dir="unused",
                     extra={"dataset": "synthetic", "data_dir": None, "batch_size": 8,
                            "channels": 4, "layers": 1, "train_input_size": 16,
                            "controller_steps": 1, "controller_aggregate": 1,
                            "derive_samples": 10, "derive_batches": 1})
    out = run_bench(spec, tmp_path / "b", quiet=True)
    run = out["runs"][0]
    b = NB201Bench(fake)
    assert run["arch"] == b.arch(run["index"]).to_str()
    assert run["met"] and cost_ms(b.arch(run["index"])) <= 2.0
    assert out["budget"]["epochs"] == 1
    assert 1 <= run["queries"] <= 11         # the distinct samples and the epoch's argmax
