"""Zero-cost proxies: each against a value computed by hand (numpy) on a tiny network,
determinism, the on-disk cache, degenerate networks scored worst, the aggregate."""

import json
import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from nasbench.data import load_dataset
from nasbench.errors import UserError
from nasbench.proxies import DEFAULT_PROXY, parse_proxy, proxy_names
from nasbench.proxies.measures import Probe, get_proxy
from nasbench.proxies.scorer import WORST, Aggregate, ProxyScorer, is_worst
from nasbench.spaces import get_space
from nasbench.spaces.nb201 import NB201Arch, NB201DeployConfig

W1 = np.array([[2.0, -2.6, 0.4, -0.6, -0.5],
               [-0.2, -2.0, -0.2, -0.9, 3.3],
               [0.2, -0.4, -0.3, -0.7, -1.1],
               [-0.4, 0.5, -0.2, 1.0, -0.2],
               [0.0, 1.5, 0.5, -0.5, -0.2],
               [0.5, 1.9, -0.3, -0.2, 1.0]])
W2 = np.array([[-0.9, -0.3, 0.9, 0.6, 0.1, 0.7],
               [-2.8, 1.0, -1.0, -1.7, 0.3, 0.4]])
X = np.array([[1.0, 0.5, -0.3, 0.8, -1.2],
              [-0.7, 1.1, 0.4, -0.2, 0.6],
              [0.3, -0.9, 1.3, 0.5, 0.1],
              [1.4, 0.2, -0.6, -1.0, 0.9]])
Y = np.array([0, 1, 1, 0])
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
       "nor_conv_3x3~2|"
DISCONNECTED = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|"


def tiny() -> nn.Module:
    net = nn.Sequential(nn.Linear(5, 6, bias=False), nn.ReLU(), nn.Linear(6, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W1))
        net[2].weight.copy_(torch.tensor(W2))
    return net


def probe() -> Probe:
    return Probe(tiny, torch.tensor(X, dtype=torch.float32), torch.tensor(Y),
                 channels_last=False)


def grads(x: np.ndarray, y: np.ndarray):
    """Returns (dL/dW1, dL/dW2) of the mean cross-entropy, by hand."""
    pre = x @ W1.T
    h = np.maximum(pre, 0)
    out = h @ W2.T
    p = np.exp(out - out.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dout = (p - np.eye(2)[y]) / len(y)
    dh = dout @ W2
    return (dh * (pre > 0)).T @ x, dout.T @ h


def test_every_proxy_is_registered_and_parsed():
    assert set(proxy_names()) >= {"synflow", "naswot", "jacob_cov", "snip", "grad_norm",
                                  "zico", "params", "flops"}
    assert parse_proxy(DEFAULT_PROXY) == ["jacob_cov", "naswot", "params"]
    with pytest.raises(UserError, match="--proxy must be one of .*got 'nope'"):
        parse_proxy("naswot+nope")
    with pytest.raises(UserError, match="twice"):
        parse_proxy("naswot+naswot")


def test_naswot_is_the_log_determinant_of_the_relu_agreement_kernel():
    codes = (X @ W1.T) > 0
    k = np.array([[np.sum(a == b) for b in codes] for a in codes], float)
    sign, want = np.linalg.slogdet(k)
    assert sign > 0
    assert get_proxy("naswot")(probe()) == pytest.approx(want, rel=1e-9)


def test_jacob_cov_scores_the_correlation_of_the_input_jacobians():
    mask = (X @ W1.T) > 0
    jac = np.stack([W1.T @ (m * (W2.T @ np.ones(2))) for m in mask])
    v = np.linalg.eigvalsh(np.corrcoef(jac))
    want = -np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5))
    assert get_proxy("jacob_cov")(probe()) == pytest.approx(want, rel=1e-5)


def test_snip_and_grad_norm_read_the_loss_gradient():
    g1, g2 = grads(X, Y)
    snip = np.abs(W1 * g1).sum() + np.abs(W2 * g2).sum()
    norm = np.linalg.norm(g1) + np.linalg.norm(g2)
    p = probe()
    assert get_proxy("snip")(p) == pytest.approx(snip, rel=1e-5)
    assert get_proxy("grad_norm")(p) == pytest.approx(norm, rel=1e-5)


def test_zico_compares_the_gradients_of_the_two_half_batches():
    halves = [grads(X[:2], Y[:2]), grads(X[2:], Y[2:])]
    want = 0.0
    for layer in range(2):
        g = np.stack([h[layer] for h in halves])
        std, mean = g.std(0), np.abs(g).mean(0)
        want += math.log((mean[std > 0] / std[std > 0]).sum())
    assert get_proxy("zico")(probe()) == pytest.approx(want, rel=1e-5)


def test_synflow_is_the_synaptic_flow_of_the_positive_network():
    a1, a2 = np.abs(W1), np.abs(W2)
    h = a1 @ np.ones(5)                      # every unit active: weights and input > 0
    want = (a2 * h[None, :]).sum() + (a1 * a2.sum(0)[:, None]).sum()
    assert get_proxy("synflow")(probe()) == pytest.approx(want, rel=1e-6)   # float32 w


def test_params_and_flops_count_the_network():
    p = probe()
    assert get_proxy("params")(p) == 42.0              # 6 x 5 + 2 x 6
    assert get_proxy("flops")(p) == 42.0               # one image: the same MACs


def test_a_network_whose_output_ignores_its_input_is_degenerate():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = tiny()

        def forward(self, x):
            return self.body(x) * 0 + self.body[2].weight.sum()

    p = Probe(Constant, torch.tensor(X, dtype=torch.float32), torch.tensor(Y),
              channels_last=False)
    assert p.ignores_input and not probe().ignores_input


@pytest.fixture(scope="module")
def images():
    return load_dataset("synthetic", input_size=16)


def nb201():
    return get_space("nb201")(NB201DeployConfig(channels=8, cells=1, input_size=16))


def test_scores_are_seeded_and_deterministic(tmp_path, images):
    arch = NB201Arch.from_str(CELL)
    names = ["naswot", "jacob_cov", "synflow", "snip", "zico"]
    a = ProxyScorer(nb201(), images, batch=16, seed=0, cache_dir=tmp_path / "a")
    b = ProxyScorer(nb201(), images, batch=16, seed=0, cache_dir=tmp_path / "b")
    c = ProxyScorer(nb201(), images, batch=16, seed=1, cache_dir=tmp_path / "c")
    first = a.compute(arch, names)
    assert first == b.compute(arch, names)
    # one pass order or another, alone or together: the same values (BN's running
    # statistics move with every train-mode pass; synflow builds its own network)
    assert a.compute(arch, list(reversed(names))) == first
    for n in names:
        assert a.compute(arch, [n]) == {n: first[n]}, n
    assert a.compute(arch, ["snip", "synflow"]) == {k: first[k] for k in ("snip",
                                                                           "synflow")}
    assert all(math.isfinite(v) for v in first.values())
    other = c.compute(arch, names)
    assert all(other[n] != first[n] for n in names)


def test_the_cache_serves_another_scorer_and_follows_the_settings(tmp_path, images,
                                                                   monkeypatch):
    arch = NB201Arch.from_str(CELL)
    a = ProxyScorer(nb201(), images, batch=16, cache_dir=tmp_path)
    got = a.scores(arch, ["naswot", "params"])
    assert a.computed == 1
    b = ProxyScorer(nb201(), images, batch=16, cache_dir=tmp_path)
    assert b.scores(arch, ["params", "naswot"]) == {k: got[k] for k in ("params",
                                                                        "naswot")}
    assert (b.computed, b.cache_hits) == (0, 1)
    b.scores(arch, ["naswot", "synflow"])          # one more proxy: added to its file
    assert b.computed == 1
    rec = json.loads(next((tmp_path / "proxies").iterdir()).read_text())
    assert set(rec["scores"]) == {"naswot", "params", "synflow"}
    assert rec["settings"]["torch"] == torch.__version__ and rec["arch_id"]
    # another batch, seed or data set is another entry
    keys = {ProxyScorer(nb201(), images, batch=16, cache_dir=tmp_path).key(arch),
            ProxyScorer(nb201(), images, batch=8, cache_dir=tmp_path).key(arch),
            ProxyScorer(nb201(), images, batch=16, seed=3, cache_dir=tmp_path).key(arch),
            ProxyScorer(nb201(), load_dataset("digits", input_size=16), batch=16,
                        cache_dir=tmp_path).key(arch)}
    assert len(keys) == 4
    # a new definition of a proxy (its version) is computed again
    monkeypatch.setattr(get_proxy("naswot"), "version", 2)
    c = ProxyScorer(nb201(), images, batch=16, cache_dir=tmp_path)
    c.scores(arch, ["naswot", "params"])
    assert c.computed == 1


def test_a_damaged_cache_entry_is_a_warning_and_is_rebuilt(tmp_path, images, capsys):
    arch = NB201Arch.from_str(CELL)
    s = ProxyScorer(nb201(), images, batch=16, cache_dir=tmp_path)
    path = tmp_path / "proxies" / f"{s.key(arch)}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"scores": ')
    got = s.scores(arch, ["params"])
    assert got["params"] > 0 and s.computed == 1
    err = capsys.readouterr().err
    assert "warning: proxy cache entry" in err and str(path) in err
    assert json.loads(path.read_text())["scores"] == got           # rebuilt


def test_a_disconnected_cell_scores_worst_and_its_aggregate_zero(tmp_path, images):
    s = ProxyScorer(nb201(), images, batch=16, cache_dir=tmp_path)
    bad = s.scores(NB201Arch.from_str(DISCONNECTED), proxy_names())
    assert all(v == WORST and math.isfinite(v) for v in bad.values())
    assert s.computed == 0 and s.degenerate == 1          # nothing was run for it
    rng = random.Random(0)
    ref = [s.scores(nb201().sample_valid(rng), ["naswot", "params"]) for _ in range(4)]
    agg = Aggregate.fit(["naswot", "params"], ref + [bad])   # the worst is left out
    assert agg(bad) == 0.0
    assert all(0.0 < agg(r) < 100.0 for r in ref)


def test_the_aggregate_is_a_monotone_0_to_100_scale():
    ref = [{"naswot": float(v), "params": float(10 ** v)} for v in range(1, 8)]
    agg = Aggregate.fit(["naswot", "params"], ref)
    scores = [agg(r) for r in ref]
    assert scores == sorted(scores) and scores[3] == pytest.approx(50.0)
    # one member's far tail is clipped: it cannot sink a cell to a degenerate's 0
    far = agg({"naswot": -1e9, "params": 10 ** 7})
    assert 0.0 < far < 50.0
    assert is_worst(WORST) and not is_worst(-1e30)
    with pytest.raises(UserError, match="at least 2"):
        Aggregate.fit(["naswot"], [{"naswot": WORST}, {"naswot": 1.0}])


def test_the_scorer_refuses_a_batch_larger_than_the_training_split(tmp_path, images):
    with pytest.raises(UserError, match="fewer than"):
        ProxyScorer(nb201(), images, batch=10_000, cache_dir=tmp_path)
    with pytest.raises(UserError, match="at least 2"):
        ProxyScorer(nb201(), images, batch=1, cache_dir=tmp_path)
