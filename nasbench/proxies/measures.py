"""The zero-cost proxies: a score of an *untrained* network from one minibatch.

Each proxy is a function ``proxy(probe) -> float`` registered with
:func:`register_proxy` (timm-style; ``--proxy NAME`` looks it up). Every score is
oriented so that **higher is better** (a network predicted to train to a higher
accuracy). A :class:`Probe` holds one freshly initialised network and one minibatch and
computes each pass the proxies share once:

* the **activation pass** (train mode, one forward): the binary ReLU codes (NASWOT)
  and the logits (the check that the output depends on the input at all); with
  jacob_cov, the same forward is followed by one backward of the summed logits to the
  input (the per-image input Jacobians);
* the **loss pass** (cross-entropy on the whole minibatch): weight gradients (grad_norm,
  snip);
* the **split loss pass** (the minibatch in two halves): two gradients per weight (ZiCo);
* synflow's own pass on a float64 copy with every parameter made positive.

The definitions follow the papers (and NASLib, whose public scores check ours):

============  ========================================================================
synflow       sum over conv/linear weights of |w * dR/dw|, R = the sum of the outputs
              of the all-positive float64 network (BN as identity) on an all-ones
              input (Tanaka et al. 2020; Abdelfattah et al. ICLR 2021)
naswot        log |K|, K[i, j] = the number of ReLU units on which images i and j agree
              (both active or both inactive), float64 (Mellor et al. ICML 2021)
jacob_cov     -sum_k log(v_k + 1e-5) + 1 / (v_k + 1e-5), v = eigenvalues of the
              correlation matrix of the per-image input Jacobians (Mellor et al. 2020)
snip          sum over conv/linear weights of |w * dL/dw| (Lee et al. ICLR 2019)
grad_norm     sum over conv/linear weights of ||dL/dw||_2
zico          sum over conv/linear weights of log(sum_i E|g_i| / std(g_i)), the
              gradient's mean and standard deviation over two half-batches (Li et al.
              ICLR 2023)
params        trainable parameters (count)
flops         multiply-accumulates of one image's forward (thop; NASLib's "flops")
============  ========================================================================

A network whose output ignores its input (the same logits for every image) is degenerate:
its scorer records it as the worst (see :mod:`nasbench.proxies.scorer`); a
log-determinant of a singular kernel is taken with a jitter of 1e-6 of its mean
diagonal, so every score of a working network is finite.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasbench.registry import PROXIES

#: the weights the weight-based proxies sum over (the papers' "prunable" layers)
WEIGHTED = (nn.Conv2d, nn.Linear)
JACOB_K = 1e-5


def register_proxy(name: str, *, log_scale: bool = False, passes: tuple[str, ...] = (),
                   version: int = 1):
    """Decorator that registers ``fn(probe) -> float`` as the proxy ``name``.
    ``log_scale``: its values are positive and multiplicative (a count, a product of
    weights), so an aggregate compares their logarithms. ``passes``: the
    :class:`Probe` passes it reads that a scorer should run first (so that a shared
    pass runs once, e.g. ``"jacobian"``, whose forward also gives the activations).
    ``version``: raise it when the definition changes, so cached scores of the old
    one are computed again. Returns ``fn``."""

    def decorate(fn: Callable):
        fn.proxy_name, fn.log_scale, fn.passes = name, log_scale, passes
        fn.version = version
        PROXIES.add((name,), fn)
        return fn

    return decorate


def get_proxy(name: str) -> Callable:
    """Returns the proxy function ``name``; raises UserError naming the known ones."""
    return PROXIES.get(name)


class Probe:
    """One network and one minibatch, with the passes the proxies share (computed on
    first use). ``build()`` returns a freshly initialised network (the caller seeds
    it); ``images`` float32 normalised [B, C, H, W], ``labels`` int64 [B]."""

    def __init__(self, build: Callable[[], nn.Module], images: torch.Tensor,
                 labels: torch.Tensor, *, channels_last: bool | None = None):
        self.build, self.images, self.labels = build, images, labels
        self.net = build()
        self.net.train()                    # BN on batch statistics, as at step 0
        # channels-last halves a CPU forward (measured on nb201); it serves the passes
        # without weight gradients only: oneDNN's strided 1x1 weight gradient is wrong
        # on channels-last for widths not a multiple of 8 (test_pcdarts_single_thread)
        self.channels_last = (images.device.type == "cpu" and images.dim() == 4
                              if channels_last is None else channels_last)

    def _format(self, channels_last: bool) -> torch.memory_format:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=fmt)
        return fmt

    def weights(self, net: nn.Module | None = None) -> list[nn.Parameter]:
        """Returns the conv/linear weights of the network (or of ``net``), in order."""
        return [m.weight for m in (net or self.net).modules()
                if isinstance(m, WEIGHTED) and m.weight is not None]

    @cached_property
    def activations(self) -> dict:
        """Returns {"kernel": float64 [B, B] NASWOT kernel, "output": the logits
        [B, K]} of one forward (no gradient: NASWOT needs none)."""
        return self._forward(jacobian=False)

    @cached_property
    def jacobian(self) -> torch.Tensor:
        """Returns the float64 [B, D] per-image input gradients of the summed logits
        (their forward also fills :attr:`activations`, so the two cost one pass)."""
        return self._forward(jacobian=True)["jacobian"]

    def _forward(self, jacobian: bool) -> dict:
        b = self.images.shape[0]
        kernel = torch.zeros(b, b, dtype=torch.float64, device=self.images.device)

        def hook(_module, _inputs, out):
            c = (out.detach().reshape(b, -1) > 0).to(torch.float32)
            # agreements = both on + both off = 2 c.c' - s_i - s_j + n, one product:
            # float32 is exact here (integer counts < 2^24 per layer), then float64
            both = (c @ c.T).to(torch.float64)
            s = c.sum(dim=1, dtype=torch.float64)
            kernel.add_(2 * both - s[:, None] - s[None, :] + c.shape[1])

        hooks = [m.register_forward_hook(hook) for m in self.net.modules()
                 if isinstance(m, (nn.ReLU, nn.ReLU6))]
        fmt = self._format(self.channels_last)
        x = self.images.clone(memory_format=fmt).requires_grad_(jacobian)
        try:
            with torch.set_grad_enabled(jacobian):
                out = self.net(x)
                # the input gradient only: no weight gradient is computed
                grad = torch.autograd.grad(out.sum(), x)[0] if jacobian else None
        finally:
            for h in hooks:
                h.remove()
        res = {"kernel": kernel, "output": out.detach()}
        if jacobian:
            res["jacobian"] = grad.detach().reshape(b, -1).to(torch.float64)
        self.__dict__.setdefault("activations", res)     # one pass serves both
        return res

    @property
    def ignores_input(self) -> bool:
        """Returns whether the output does not depend on the input: every image of the
        minibatch gives the same logits (a degenerate network)."""
        out = self.activations["output"]
        return not bool((out - out[:1]).abs().max() > 0)

    def _loss_grads(self, images, labels) -> list[torch.Tensor]:
        self._format(False)
        self.net.zero_grad(set_to_none=True)
        F.cross_entropy(self.net(images), labels).backward()
        grads = [w.grad.detach().clone() if w.grad is not None else torch.zeros_like(w)
                 for w in self.weights()]
        self.net.zero_grad(set_to_none=True)
        return grads

    @cached_property
    def loss_grads(self) -> list[torch.Tensor]:
        """Returns dL/dw of each conv/linear weight, L = the minibatch's cross-entropy."""
        return self._loss_grads(self.images, self.labels)

    @cached_property
    def split_grads(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Returns (dL1/dw, dL2/dw) per conv/linear weight: the minibatch's two halves."""
        h = self.images.shape[0] // 2
        a = self._loss_grads(self.images[:h], self.labels[:h])
        b = self._loss_grads(self.images[h:2 * h], self.labels[h:2 * h])
        return list(zip(a, b, strict=True))


def logdet(kernel: torch.Tensor) -> float:
    """Returns log |kernel| (float64) of a symmetric positive semi-definite matrix; a
    singular one gets a jitter of 1e-6 of its mean diagonal (finite, and low)."""
    sign, value = torch.linalg.slogdet(kernel)
    if sign > 0 and torch.isfinite(value):
        return float(value)
    jitter = 1e-6 * float(kernel.diagonal().mean().clamp_min(1.0))
    sign, value = torch.linalg.slogdet(kernel + jitter * torch.eye(
        len(kernel), dtype=kernel.dtype, device=kernel.device))
    return float(value)


@register_proxy("naswot")
def naswot(probe: Probe) -> float:
    """Returns NASWOT's score: log |K| of the ReLU agreement kernel (nats)."""
    return logdet(probe.activations["kernel"])


@register_proxy("jacob_cov", passes=("jacobian",))
def jacob_cov(probe: Probe) -> float:
    """Returns the Jacobian-covariance score (higher: the images' Jacobians are less
    correlated)."""
    jac = probe.jacobian
    jac = jac - jac.mean(dim=1, keepdim=True)
    norm = jac.norm(dim=1, keepdim=True)
    # an image whose Jacobian is constant has no correlation to speak of: it counts as
    # perfectly correlated with nothing (a zero row), which only lowers the score
    corr = (jac / norm.clamp_min(1e-300)) @ (jac / norm.clamp_min(1e-300)).T
    corr.diagonal().copy_(torch.where(norm.squeeze(1) > 0, 1.0, 0.0))
    v = torch.linalg.eigvalsh(corr).clamp_min(0)
    return float(-torch.sum(torch.log(v + JACOB_K) + 1.0 / (v + JACOB_K)))


@register_proxy("snip", log_scale=True)
def snip(probe: Probe) -> float:
    """Returns SNIP's saliency: sum |w * dL/dw| over conv/linear weights."""
    return float(sum((w.detach() * g).abs().sum().double()
                     for w, g in zip(probe.weights(), probe.loss_grads, strict=True)))


@register_proxy("grad_norm", log_scale=True)
def grad_norm(probe: Probe) -> float:
    """Returns the sum over conv/linear weights of the L2 norm of dL/dw."""
    return float(sum(g.double().norm() for g in probe.loss_grads))


@register_proxy("zico")
def zico(probe: Probe) -> float:
    """Returns ZiCo: sum over conv/linear weights of log(sum E|g| / std(g)), over the
    minibatch's two halves (elements whose gradient does not vary are left out). The
    paper's formula on each half's own gradient; the authors' code accumulates the
    second half's gradient onto the first (no zero_grad between them), so its values
    differ from ours."""
    total = 0.0
    for g1, g2 in probe.split_grads:
        g = torch.stack([g1, g2]).double()
        std = g.std(dim=0, unbiased=False)
        keep = std > 0
        if not bool(keep.any()):
            continue
        s = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
        if s > 0:
            total += float(np.log(s))
    return total


@register_proxy("synflow", log_scale=True)
def synflow(probe: Probe) -> float:
    """Returns synflow: sum |w * dR/dw| over conv/linear weights of the network made
    all-positive, float64, BN as identity (eval mode at initialisation), R = the sum of
    its output on an all-ones image."""
    net = probe.build().double().eval()     # fresh: other passes moved BN's statistics
    with torch.no_grad():
        for p in net.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    net.zero_grad(set_to_none=True)
    x = torch.ones((1, *probe.images.shape[1:]), dtype=torch.float64,
                   device=probe.images.device)
    net(x).sum().backward()
    return float(sum((w.detach() * w.grad).abs().sum() for w in probe.weights(net)
                     if w.grad is not None))


@register_proxy("params", log_scale=True)
def params(probe: Probe) -> float:
    """Returns the number of trainable parameters."""
    return float(sum(p.numel() for p in probe.net.parameters() if p.requires_grad))


@register_proxy("flops", log_scale=True)
def flops(probe: Probe) -> float:
    """Returns the multiply-accumulates of one image's forward, counted by thop."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import thop
        net = copy.deepcopy(probe.net).eval()
        macs, _ = thop.profile(net, inputs=(probe.images[:1].clone(),), verbose=False)
    return float(macs)
