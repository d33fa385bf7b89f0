"""The ENAS controller (Pham et al., ICML 2018): an LSTM policy over a space's
decisions, its REINFORCE update, and MnasNet's hardware-aware reward.

The controller walks the space's categorical decisions (``space.choices()``: NAS-Bench-
201's op per edge; DARTS's pair of inputs and the two ops of every node of both cells)
one by one. At each decision the LSTM cell (ENAS: hidden size 100) reads the embedding
of the previous choice (a learned start input first), a per-decision linear head turns
its hidden state into logits over the decision's options, shaped as ENAS shapes them
(``tanh_constant * tanh(logits / temperature)``: bounded logits keep exploring), and an
option is drawn. A sample returns the options, the sum of their log-probabilities and
the sum of the per-decision entropies (nats), both differentiable.

REINFORCE (:func:`reinforce_update`): loss = -(R - b) log p(a) - w_H H(a) averaged over
the samples of one update, with b an exponential moving average of the rewards (decay
0.99), updated with each reward before its advantage is taken, as the ENAS code does;
the entropy term is a differentiable bonus (weight 1e-4) rather than ENAS's
entropy-in-the-reward (the same aim: keep the policy from collapsing early).

Reward (:func:`mnasnet_reward`): MnasNet's (Tan et al., CVPR 2019) ``acc x
(cost/target)^w``, w = -0.07 everywhere (soft target) or 0 under the target and -1 over
it (hard target); accuracy alone without a target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# MnasNet's reward lives with the cost model; re-exported for the controller's users
from nasbench.oneshot.cost import SOFT_EXPONENT, mnasnet_reward  # noqa: F401


class Controller(nn.Module):
    """ENAS's LSTM controller over ``choices`` ({decision: [options]}, in order).

    ``forward(values=None, generator=None, greedy=False)`` returns ``(values, log_prob,
    entropy)``: ``values`` {decision: option} drawn from the policy (``generator``: a
    torch.Generator for reproducible draws; ``greedy``: the most likely option at every
    step) or, given ``values``, those options scored (teacher forcing); ``log_prob`` and
    ``entropy`` are 0-d tensors in nats with gradients to the controller's parameters.
    Parameters are initialised uniformly in [-0.1, 0.1] (ENAS)."""

    def __init__(self, choices: dict[str, list], hidden: int = 100,
                 temperature: float | None = 5.0, tanh_constant: float | None = 1.1):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"the controller's hidden size must be positive, got {hidden}")
        if not choices or any(len(v) < 1 for v in choices.values()):
            raise ValueError("the controller needs at least one decision with options")
        self.names = list(choices)
        self.options = [list(v) for v in choices.values()]
        self.hidden = hidden
        self.temperature, self.tanh_constant = temperature, tanh_constant
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.heads = nn.ModuleList(nn.Linear(hidden, len(o)) for o in self.options)
        self.embeds = nn.ModuleList(nn.Embedding(len(o), hidden) for o in self.options)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def logits(self, k: int, h: torch.Tensor) -> torch.Tensor:
        """Returns decision ``k``'s logits [options] from the LSTM's hidden state: the
        head's, divided by the temperature and squashed by ``tanh_constant * tanh``
        where those are set (ENAS)."""
        z = self.heads[k](h)[0]
        if self.temperature:
            z = z / self.temperature
        if self.tanh_constant:
            z = self.tanh_constant * torch.tanh(z)
        return z

    def forward(self, values: dict | None = None, generator: torch.Generator | None = None,
                greedy: bool = False):
        h = c = self.start.new_zeros(1, self.hidden)
        inp = self.start
        log_prob = entropy = self.start.new_zeros(())
        out = {}
        for k, (name, opts) in enumerate(zip(self.names, self.options, strict=True)):
            h, c = self.lstm(inp, (h, c))
            logq = F.log_softmax(self.logits(k, h), -1)
            if values is not None:
                try:
                    i = opts.index(values[name])
                except (KeyError, ValueError):
                    raise ValueError(f"decision {name!r} has no option "
                                     f"{values.get(name)!r} (options: {opts})") from None
            elif greedy:
                i = int(logq.argmax())
            else:
                i = int(torch.multinomial(logq.detach().exp(), 1, generator=generator))
            log_prob = log_prob + logq[i]
            entropy = entropy - (logq.exp() * logq).sum()
            out[name] = opts[i]
            inp = self.embeds[k](torch.tensor([i], device=h.device))
        return out, log_prob, entropy

    def probabilities(self) -> dict[str, list[float]]:
        """Returns each decision's option probabilities along the greedy path (the
        policy's mode), for the history."""
        out = {}
        with torch.no_grad():
            h = c = self.start.new_zeros(1, self.hidden)
            inp = self.start
            for k, name in enumerate(self.names):
                h, c = self.lstm(inp, (h, c))
                p = F.softmax(self.logits(k, h), -1)
                out[name] = p.tolist()
                inp = self.embeds[k](p.argmax().view(1))
        return out


def reinforce_update(optimizer: torch.optim.Optimizer, samples: list[tuple], baseline: dict,
                     decay: float = 0.99, entropy_weight: float = 1e-4,
                     grad_clip: float | None = None) -> dict:
    """Does one REINFORCE step on the controller: ``samples`` are ``(log_prob, entropy,
    reward)`` of architectures drawn from it (log_prob and entropy with gradients);
    ``baseline`` ({"value": float or None}) is the moving average, updated in place
    (first reward: the average starts there). Returns {"loss", "reward", "advantage",
    "baseline", "entropy"}: means over the samples (reward's unit; entropy in nats)."""
    loss = 0.0
    adv_sum = 0.0
    for log_prob, entropy, reward in samples:
        b = baseline.get("value")
        b = reward if b is None else decay * b + (1.0 - decay) * reward
        baseline["value"] = b
        adv = reward - b
        adv_sum += adv
        loss = loss - adv * log_prob - entropy_weight * entropy
    loss = loss / len(samples)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    n = len(samples)
    return {"loss": float(loss.detach()), "reward": sum(s[2] for s in samples) / n,
            "advantage": adv_sum / n, "baseline": baseline["value"],
            "entropy": float(sum(float(s[1].detach()) for s in samples) / n)}
