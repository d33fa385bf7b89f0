"""The bilevel optimisation of DARTS: weight steps on the train half, architecture steps
on the validation half.

First order: the architecture gradient is d L_val(w, alpha) / d alpha at the current
weights. Second order (the DARTS paper, eq. 7-8): the gradient of
L_val(w', alpha) with w' = w - eta * dL_train(w, alpha)/dw one virtual SGD step ahead
(momentum and weight decay included, as in the DARTS code); the second-derivative term
is the finite-difference Hessian-vector product

    d2L_train/(dalpha dw) . v  ~=  (dL_train(w+, alpha)/dalpha - dL_train(w-, alpha)/dalpha) / 2R

with v = dL_val(w', alpha)/dw', w+- = w +- R v and R = 0.01 / ||v||.

The extra forward passes of the second-order step run through
``torch.func.functional_call`` with copied BN buffers, so the running statistics of the
real network are not disturbed. Gradients are taken with ``torch.autograd.grad`` with
respect to exactly what is needed: the alpha step never computes weight gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def weight_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, grad_clip: float | None = 5.0, arch=None,
                forward: nn.Module | None = None) -> tuple[float, torch.Tensor]:
    """Does one SGD step on the network weights; returns (loss, detached logits).

    The architecture parameters are frozen during the step, so the softmax weights are
    constants and no op output is kept for an alpha gradient. Given ``arch``, the step
    is that single path's (SPOS, ENAS): the other ops get no gradient, so SGD leaves
    them (and their momentum and weight decay) alone. ``forward``: the module the
    forward runs through when it is not ``model`` itself (its data-parallel wrapper,
    :func:`nasbench.distributed.data_parallel`)."""
    alphas = model.arch_parameters()
    for a in alphas:
        a.requires_grad_(False)
    try:
        optimizer.zero_grad(set_to_none=True)
        net = forward or model
        logits = net(x) if arch is None else net(x, arch=arch)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.weights(), grad_clip)
        optimizer.step()
    finally:
        for a in alphas:
            a.requires_grad_(True)
    return float(loss.detach()), logits.detach()


def _same(grads, n: int) -> list:
    """Returns ``grads`` as a list (the reduction of a single process)."""
    return list(grads)


class Architect:
    """Updates the architecture parameters of a search network with Adam.

    ``fd_radius`` is the r of R = r / ||v|| in the finite-difference Hessian-vector
    product (0.01 in the DARTS paper; smaller values are more exact in float64).

    ``penalty`` (optional) maps the model and the step's validation cross-entropy
    (float, nats) to ``(penalty_tensor, info_dict)``; its gradient is added to the
    accuracy gradient (the penalty depends on alpha only), and the accuracy gradient is
    first scaled by ``info["ce_factor"]`` when the info has one (a multiplicative cost
    form, ``CE * factor``).

    ``reduce`` (optional; data-parallel runs: :func:`nasbench.distributed.
    average_grads`) maps the gradients of a batch slice and the slice's size to those
    of the whole batch; every data gradient of the step goes through it."""

    def __init__(self, model: nn.Module, *, lr: float = 3e-4, betas=(0.5, 0.999),
                 weight_decay: float = 1e-3, order: str = "first", momentum: float = 0.9,
                 network_weight_decay: float = 3e-4, fd_radius: float = 1e-2,
                 penalty: Callable[[nn.Module], tuple[torch.Tensor, dict]] | None = None,
                 reduce: Callable[[list, int], list] | None = None):
        if order not in ("first", "second"):
            raise ValueError(f"order must be 'first' or 'second', not {order!r}")
        self.model = model
        self.reduce = reduce or _same
        self.order = order
        self.momentum = momentum
        self.network_weight_decay = network_weight_decay
        self.fd_radius = fd_radius
        self.penalty = penalty
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=lr, betas=tuple(betas),
                                          weight_decay=weight_decay)

    # ---- gradients ----------------------------------------------------------------------

    def first_order_grads(self, x_val, y_val) -> tuple[list[torch.Tensor], float]:
        """Returns (d L_val / d alpha for each arch parameter, L_val)."""
        arch = self.model.arch_parameters()
        logits = self.model(x_val)
        self._last_correct = int((logits.detach().argmax(1) == y_val).sum())
        loss = F.cross_entropy(logits, y_val)
        return self.reduce(torch.autograd.grad(loss, arch), y_val.shape[0]), \
            float(loss.detach())

    def second_order_grads(self, x_train, y_train, x_val, y_val, eta: float,
                           w_optimizer: torch.optim.Optimizer | None = None
                           ) -> tuple[list[torch.Tensor], float]:
        """Returns (the unrolled architecture gradient of the DARTS paper, L_val(w'))."""
        model = self.model
        arch = model.arch_parameters()
        named = model.named_weights()
        names = [n for n, _ in named]
        weights = [p for _, p in named]
        buffers = {n: b.clone() for n, b in model.named_buffers()}

        def call(params, x):
            return functional_call(model, {**dict(zip(names, params, strict=True)), **buffers},
                                   (x,))

        # w' = w - eta * (momentum buffer + grad + wd * w), as the DARTS code does
        loss = F.cross_entropy(call(weights, x_train), y_train)
        grads = self.reduce(torch.autograd.grad(loss, weights), y_train.shape[0])
        unrolled = []
        for p, g in zip(weights, grads, strict=False):
            step = g + self.network_weight_decay * p.detach()
            state = w_optimizer.state.get(p, {}) if w_optimizer is not None else {}
            buf = state.get("momentum_buffer")
            if buf is not None:
                step = step + self.momentum * buf
            unrolled.append((p.detach() - eta * step).requires_grad_(True))
        del loss, grads

        logits = call(unrolled, x_val)
        self._last_correct = int((logits.detach().argmax(1) == y_val).sum())
        val_loss = F.cross_entropy(logits, y_val)
        g = self.reduce(torch.autograd.grad(val_loss, arch + unrolled), y_val.shape[0])
        d_alpha, v = g[:len(arch)], g[len(arch):]
        hvp = self.hessian_vector_product(v, call, weights, arch, x_train, y_train,
                                          self.fd_radius, self.reduce)
        out = [da - eta * h for da, h in zip(d_alpha, hvp, strict=False)]
        return out, float(val_loss.detach())

    @staticmethod
    def hessian_vector_product(v, call, weights, arch, x, y, r: float = 1e-2,
                               reduce=None):
        """Returns the finite-difference d2L_train/(dalpha dw) . v for each arch param
        (central difference with step R = r / ||v|| along v; ``reduce``: see the class
        doc)."""
        reduce = reduce or _same
        norm = torch.sqrt(sum((t.detach() ** 2).sum() for t in v))
        R = r / norm
        plus = [p.detach() + R * t for p, t in zip(weights, v, strict=False)]
        g_plus = reduce(torch.autograd.grad(F.cross_entropy(call(plus, x), y), arch),
                        y.shape[0])
        minus = [p.detach() - R * t for p, t in zip(weights, v, strict=False)]
        g_minus = reduce(torch.autograd.grad(F.cross_entropy(call(minus, x), y), arch),
                         y.shape[0])
        return [(a - b) / (2 * R) for a, b in zip(g_plus, g_minus, strict=False)]

    # ---- step ---------------------------------------------------------------------------

    def step(self, x_train, y_train, x_val, y_val, eta: float,
             w_optimizer: torch.optim.Optimizer | None = None) -> dict:
        """Does one architecture step; returns {"val_loss": float (nats), "val_correct":
        int (correct val predictions of the step's forward), "penalty": float, plus the
        penalty's info (expected costs in LUT units)}."""
        arch = self.model.arch_parameters()
        if self.order == "first":
            grads, val_loss = self.first_order_grads(x_val, y_val)
        else:
            grads, val_loss = self.second_order_grads(x_train, y_train, x_val, y_val, eta,
                                                      w_optimizer)
        info: dict = {"val_loss": val_loss, "val_correct": self._last_correct, "penalty": 0.0}
        if self.penalty is not None:
            pen, extra = self.penalty(self.model, val_loss)
            factor = extra.pop("ce_factor", 1.0)
            if factor != 1.0:               # a multiplicative cost form scales CE
                grads = [g * factor for g in grads]
            if pen.requires_grad:
                pg = torch.autograd.grad(pen, arch, allow_unused=True)
                grads = [g if p is None else g + p for g, p in zip(grads, pg, strict=False)]
            info["penalty"] = float(pen.detach())
            info.update(extra)
        for a, g in zip(arch, grads, strict=False):
            a.grad = g.detach()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return info

    def state_dict(self) -> dict:
        """Returns the Adam state (for checkpoints)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restores the Adam state of :meth:`state_dict`."""
        self.optimizer.load_state_dict(state)
