"""ENAS (Pham et al., ICML 2018) as a searcher: an LSTM controller samples single paths of
the space's supernet, whose shared weights train on the children it samples.

An epoch is ``steps_per_epoch`` weight steps, each on a child drawn from the controller
(SGD on the train half, cosine over the epochs, momentum 0.9, weight decay 3e-4 as
DARTS), then ``controller_steps`` controller steps, each drawing
``controller_aggregate`` children, scoring each on the next validation batch with the
shared weights (batch-statistics BatchNorm, as ENAS) and taking one REINFORCE step
(:mod:`nasbench.oneshot.controller`). Every step is atomic against Ctrl-C and the whole
state (controller, its optimiser and baseline, supernet, optimiser, loaders, sampling
generator, step) is checkpointed, so a resumed run equals an uninterrupted one.

Reward: the child's validation accuracy (fraction), times MnasNet's factor
``(cost/target)^w`` with a latency target (w = -0.07 with ``--soft-target``; hard: 0
under the target, -1 over it); cost from the run's cost function (the calibrated LUT's
predictor, or a tabular device's table). Without a target: accuracy alone.

Derivation: ``derive_samples`` children drawn from the trained controller (a generator
of its own: deriving changes nothing), each distinct one scored on the same
``derive_batches`` validation batches; the best by accuracy among those within a hard
target (the cheapest, marked as missing it, when none is), or by reward with a soft one.

history.json: one record per epoch: ``epoch``, ``lr``, ``train_loss``, ``train_acc`` (%),
``controller_steps``, ``reward``, ``val_acc`` (%: the controller's samples),
``baseline``, ``entropy`` (nats, per sample), ``advantage``, ``greedy`` (the
controller's most likely architecture, JSON) and its ``greedy_cost``, ``probabilities``
(per decision, along the greedy path), ``seconds``.
"""

from __future__ import annotations

import random
import time

import torch

from nasbench.files import deferred_interrupt
from nasbench.oneshot.architect import weight_step
from nasbench.oneshot.controller import Controller, mnasnet_reward, reinforce_update
from nasbench.searchers.base import (
    Outcome,
    SearchContext,
    Searcher,
    epoch_lr,
    register_searcher,
    tally,
)
from nasbench.searchers.enas_config import ENASConfig
from nasbench.searchers.evaluate import run_cost


@register_searcher("enas")
class ENASSearcher(Searcher):
    """ENAS on the darts or nb201 space (see the module doc)."""

    config_class = ENASConfig
    stateful = ("model", "w_opt", "controller", "c_opt", "train_q", "val_q")
    plain_state = ("step", "acc", "baseline", "derived")

    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        cfg, data, cl, space = ctx.config, ctx.data, ctx.channels_last, ctx.space
        model = space.supernet(cfg.channels, cfg.layers, 1, num_classes=data.num_classes,
                               in_channels=data.in_channels, input_size=data.input_size)
        self.model = model.to(memory_format=torch.channels_last) if cl else model
        self.w_opt = torch.optim.SGD(self.model.weights(), cfg.learning_rate,
                                     momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.controller = Controller(space.choices(), cfg.controller_hidden,
                                     cfg.controller_temperature, cfg.controller_tanh)
        self.c_opt = torch.optim.Adam(self.controller.parameters(), cfg.controller_lr)
        self.generator = torch.Generator().manual_seed(cfg.seed + 3)
        self.cost = run_cost(ctx)
        from nasbench.data import TensorLoader
        train_half, val_half = data.search_splits(cfg.train_portion, cfg.seed)
        b = cfg.batch_size
        n = -(-len(train_half) // b)
        self.n_steps = min(n, cfg.steps_per_epoch) if cfg.steps_per_epoch else n
        kw = dict(mean=data.mean, std=data.std, channels_last=cl)
        self.train_q = TensorLoader(train_half, b, augment=data.augment, seed=cfg.seed + 1,
                                    max_steps=self.n_steps, **kw)
        self.val_q = TensorLoader(val_half, b, seed=cfg.seed + 2, drop_last=True, **kw)
        # the derivation's batches: the first of the validation half, in order
        fixed = TensorLoader(val_half, b, shuffle=False, max_steps=cfg.derive_batches, **kw)
        self.derive_q = list(fixed)
        self.step, self.acc, self.baseline, self.derived = 0, None, {"value": None}, None
        ctx.log(f"ENAS: {len(self.controller.names)} decisions, {space.size():.3g} "
                f"architectures; reward: {self.reward_text()}")

    def reward_text(self) -> str:
        """Returns the reward in words (for the log)."""
        cfg, t = self.ctx.config, self.ctx.target_ms
        if t is None:
            return "validation accuracy"
        form = ("acc x (lat/target)^-1 over the target (hard)" if cfg.hard_target else
                f"acc x (lat/target)^{cfg.soft_exponent:g} (soft)")
        return f"{form}, target {t:.4g} ms"

    @property
    def steps_per_epoch(self) -> int:
        return self.n_steps + self.ctx.config.controller_steps

    def sample(self, greedy: bool = False, generator=None):
        """Returns (architecture, log-probability, entropy) of one draw of the
        controller (``greedy``: its most likely architecture; no gradients)."""
        with torch.no_grad():
            values, logp, ent = self.controller(generator=generator or self.generator,
                                                greedy=greedy)
        return self.ctx.space.decode(values), logp, ent

    def reward(self, accuracy: float, arch) -> tuple[float, dict]:
        """Returns (reward, cost) of a child of ``accuracy`` (fraction): MnasNet's
        reward under the run's latency target (see the module doc)."""
        cfg = self.ctx.config
        cost = self.cost(arch)
        return mnasnet_reward(accuracy, cost.get("latency"), self.ctx.target_ms,
                              cfg.hard_target, cfg.soft_exponent), cost

    def run_epoch(self, epoch: int, on_step) -> dict:
        cfg = self.ctx.config
        lr = epoch_lr(self.w_opt, cfg, epoch)
        acc = self.acc = self.acc or {"loss": 0.0, "correct": 0, "n": 0, "c_steps": 0,
                                      "reward": 0.0, "val_acc": 0.0, "entropy": 0.0,
                                      "advantage": 0.0, "samples": 0, "t0": time.time()}
        while self.step < self.steps_per_epoch:
            # a step (its sampling, forward and update) is done whole or not at all
            with deferred_interrupt():
                if self.step < self.n_steps:
                    x, y = next(iter(self.train_q))
                    arch, _, _ = self.sample()
                    loss, logits = weight_step(self.model, self.w_opt, x, y, cfg.grad_clip,
                                               arch=arch)
                    tally(acc, loss, logits, y)
                    info = f"loss {acc['loss'] / acc['n']:.3f}"
                else:
                    self._controller_step(acc)
                    info = f"reward {acc['reward'] / acc['c_steps']:.3f}"
                self.step += 1
            on_step(self.step, info)
        greedy, _, _ = self.sample(greedy=True)
        return self.close_epoch(self._record(epoch, lr, acc, greedy), greedy)

    def _controller_step(self, acc: dict) -> None:
        cfg = self.ctx.config
        samples, vals = [], []
        for _ in range(cfg.controller_aggregate):
            values, logp, ent = self.controller(generator=self.generator)
            arch = self.ctx.space.decode(values)
            batch = next(iter(self.val_q))       # the next batch (a new pass when one ends)
            a = self.model.path_accuracy(arch, [batch]) / 100.0
            r, _ = self.reward(a, arch)
            samples.append((logp, ent, r))
            vals.append(a)
        info = reinforce_update(self.c_opt, samples, self.baseline, cfg.baseline_decay,
                                cfg.entropy_weight)
        acc["c_steps"] += 1
        acc["samples"] += len(samples)
        acc["reward"] += info["reward"]
        acc["advantage"] += info["advantage"]
        acc["entropy"] += info["entropy"]
        acc["val_acc"] += 100.0 * sum(vals) / len(vals)

    def _record(self, epoch: int, lr: float, acc: dict, greedy) -> dict:
        c = max(acc["c_steps"], 1)
        n = max(acc["n"], 1)
        space = self.ctx.space
        return {"epoch": epoch, "lr": lr, "train_loss": acc["loss"] / n,
                "train_acc": 100.0 * acc["correct"] / n, "controller_steps": acc["c_steps"],
                "reward": acc["reward"] / c if acc["c_steps"] else None,
                "val_acc": acc["val_acc"] / c if acc["c_steps"] else None,
                "advantage": acc["advantage"] / c if acc["c_steps"] else None,
                "entropy": acc["entropy"] / c if acc["c_steps"] else None,
                "baseline": self.baseline["value"],
                "greedy": space.arch_to_dict(greedy), "greedy_cost": self.cost(greedy),
                "probabilities": self.controller.probabilities(),
                "seconds": time.time() - acc["t0"]}

    def epoch_line(self, h: dict) -> str:
        ctrl = (f"; reward {h['reward']:.3f} (val acc {h['val_acc']:.1f} %), baseline "
                f"{h['baseline']:.3f}, entropy {h['entropy']:.2f}"
                if h["reward"] is not None else "")
        lat = h["greedy_cost"].get("latency")
        cost = f", {lat:.3f} ms" if lat is not None else ""
        arch = self.ctx.space.arch_from_dict(h["greedy"])
        return (f"epoch {h['epoch'] + 1}/{self.epochs}: train loss {h['train_loss']:.3f} "
                f"acc {h['train_acc']:.1f} %{ctrl}; greedy {self.ctx.space.summary(arch)}"
                f"{cost}")

    def derive(self) -> tuple[dict, list[dict]]:
        """Returns the derivation (see the module doc): ``{"arch" (JSON), "accuracy"
        (%), "cost", "met", "sampled", "distinct", "within"}`` and the scored distinct
        samples (``arch``, ``accuracy``, ``reward``, ``cost``, ``met``). Draws from a
        generator of its own and scores with side-effect-free ``path_accuracy``, so
        deriving again gives the same."""
        cfg, space, t = self.ctx.config, self.ctx.space, self.ctx.target_ms
        gen = torch.Generator().manual_seed(cfg.seed + 4)
        seen: dict[str, object] = {}
        for _ in range(cfg.derive_samples):
            arch, _, _ = self.sample(generator=gen)
            if space.valid(arch):          # a cell whose output ignores its input: never
                seen.setdefault(space.arch_id(arch), arch)
        if not seen:                       # (every sample invalid: the controller's pick)
            arch = space.sample_valid(random.Random(cfg.seed + 4))
            seen[space.arch_id(arch)] = arch
        rows = []
        for arch in seen.values():
            a = self.model.path_accuracy(arch, self.derive_q)
            r, cost = self.reward(a, arch)
            lat = cost.get("latency")
            rows.append({"arch": arch, "accuracy": a, "reward": r, "cost": cost,
                         "met": t is None or (lat is not None and lat <= t)})
        if t is not None and not cfg.hard_target:
            best = max(rows, key=lambda r: r["reward"])
        else:
            ok = [r for r in rows if r["met"]]
            best = (max(ok, key=lambda r: r["accuracy"]) if ok else
                    min(rows, key=lambda r: r["cost"].get("latency") or 0.0))
        return {"arch": space.arch_to_dict(best["arch"]), "accuracy": best["accuracy"],
                "cost": best["cost"], "met": best["met"], "sampled": cfg.derive_samples,
                "distinct": len(rows), "within": sum(r["met"] for r in rows)}, rows

    def result(self) -> Outcome:
        if self.derived is None:            # once: a resume after it keeps its answer
            derived, rows = self.derive()
            with deferred_interrupt():      # the answer and its visits, or neither
                for r in rows:
                    self.note_visit(r["arch"], epoch=self.ctx.config.epochs - 1,
                                    kind="derivation sample", accuracy=r["accuracy"],
                                    cost=r["cost"], value=r["reward"])
                self.derived = derived
        d = self.derived
        within = (f", {d['within']} within the target" if self.ctx.target_ms is not None
                  else "")
        self.ctx.log(f"derived from {d['sampled']} samples ({d['distinct']} distinct"
                     f"{within}): shared-weight validation accuracy {d['accuracy']:.2f} %")
        return Outcome(self.ctx.space.arch_from_dict(d["arch"]), cost=d["cost"],
                       extra={"accuracy": d["accuracy"], "samples": d["sampled"],
                              "distinct": d["distinct"], "within": d["within"]})

    def state_dict(self) -> dict:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
