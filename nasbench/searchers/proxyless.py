"""ProxylessNAS (Cai et al., ICLR 2019) as a searcher: binary gates or REINFORCE.

The supernet is the space's deploy network itself (no proxy). Warm-up epochs train only
the weights (single sampled paths); then every ``arch_update_every`` weight steps one
architecture step runs on a validation batch, with the latency loss of
:class:`~nasbench.oneshot.proxyless.ProxylessObjective` (``add#linear`` or ``mul#log``)
or the REINFORCE reward. Per-step cosine learning rates. The result is the argmax
candidate of every block; its slot logits are the alphas.

history.json: one record per epoch (warm-up epochs first): ``epoch``, ``phase``
("warmup" | "search"), ``lr`` (last weight lr), ``train_loss``, ``train_acc`` and
``val_acc`` in percent, ``val_loss`` (nats), ``arch_steps``, ``arch_loss``,
``expected_cost`` ({"latency": ms, "energy": J, "memory": B} under the epoch's final
alphas), ``alphas`` ({"blocks": [[p per candidate] per block]}, softmax probabilities,
0 for ``zero`` where not allowed), ``ops`` (candidate names), ``arch`` (argmax blocks),
``entropy``, ``seconds``, and ``reward`` with REINFORCE.
"""

from __future__ import annotations

import time

import torch

from nasbench import distributed
from nasbench.errors import UserError
from nasbench.files import deferred_interrupt
from nasbench.oneshot.proxyless import (
    ProxylessArch,
    ProxylessCostModel,
    ProxylessObjective,
    ProxylessSupernet,
    binary_arch_step,
    reinforce_arch_step,
    weight_step,
)
from nasbench.searchers.base import Outcome, SearchContext, Searcher, register_searcher, tally
from nasbench.searchers.proxyless_config import ProxylessConfig
from nasbench.train import cosine_lr


@register_searcher("proxyless")
class ProxylessSearcher(Searcher):
    """ProxylessNAS with two-path binary gates (``grad_estimator="binary"``) or
    REINFORCE."""

    config_class = ProxylessConfig
    stateful = ("model", "w_opt", "a_opt", "train_q", "val_q")
    plain_state = ("step", "acc", "baseline")
    #: runs data-parallel under torchrun (:mod:`nasbench.distributed`)
    data_parallel = True

    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        cfg, data, cl = ctx.config, ctx.data, ctx.channels_last
        self.cost_model = ProxylessCostModel(ctx.predictor.table)
        try:
            self.objective = ProxylessObjective(
                self.cost_model, cfg.latency_loss, cfg.loss_alpha, cfg.loss_beta,
                cfg.loss_lambda, cfg.latency_target_ms, cfg.rl_tradeoff,
                metrics=cfg.cost_metrics)
        except ValueError as e:
            raise UserError(str(e)) from None
        lo, hi = self.cost_model.bounds("latency")
        refs = ", ".join(f"{m} {v:.4g} {'ms' if m == 'latency' else ''}".strip()
                         for m, v in self.objective.refs.items()) or "none"
        ctx.log(f"{len(self.cost_model.tables['latency'])} searchable blocks; LUT latency "
                f"of the space {lo:.3f}-{hi:.3f} ms; loss reference: {refs}")
        model = ProxylessSupernet(ctx.space.deploy, cfg.arch_init_std)
        self.model = model.to(memory_format=torch.channels_last) if cl else model
        # the weight step's forward: the model itself, or its DDP wrapper under torchrun
        # (one sampled path per step: the other candidates get no gradient)
        self.forward = distributed.data_parallel(self.model, find_unused=True,
                                                 sync_bn=cfg.sync_bn)
        self.w_opt = torch.optim.SGD(self.model.weights(), cfg.warmup_learning_rate,
                                     momentum=cfg.momentum,
                                     nesterov=cfg.nesterov and cfg.momentum > 0,
                                     weight_decay=cfg.weight_decay)
        self.a_opt = torch.optim.Adam(self.model.arch_parameters(), cfg.arch_learning_rate,
                                      betas=tuple(float(b) for b in cfg.arch_betas),
                                      eps=cfg.arch_eps, weight_decay=cfg.arch_weight_decay)
        from nasbench.data import TensorLoader
        train_half, val_half = data.search_splits(cfg.train_portion, cfg.seed)
        n = -(-len(train_half) // cfg.batch_size)
        self.n_steps = min(n, cfg.steps_per_epoch) if cfg.steps_per_epoch else n
        self.train_q = TensorLoader(train_half, cfg.batch_size, mean=data.mean, std=data.std,
                                    augment=data.augment, seed=cfg.seed + 1, max_steps=self.n_steps,
                                    channels_last=cl)
        self.val_q = TensorLoader(val_half, cfg.batch_size, mean=data.mean, std=data.std,
                                  augment=False, seed=cfg.seed + 2, drop_last=True,
                                  channels_last=cl)
        self.step, self.acc, self.baseline = 0, None, {"value": None}

    @property
    def epochs(self) -> int:
        return self.ctx.config.warmup_epochs + self.ctx.config.epochs

    @property
    def steps_per_epoch(self) -> int:
        return self.n_steps

    def step_lr(self, epoch: int, step: int) -> float:
        """Returns the per-step cosine: warm-up from warmup_learning_rate to 0 over the
        warm-up steps, then learning_rate to learning_rate_min over the search steps."""
        cfg, n = self.ctx.config, self.n_steps
        if epoch < cfg.warmup_epochs:
            return cosine_lr(cfg.warmup_learning_rate, 0.0, epoch * n + step,
                             cfg.warmup_epochs * n)
        e = epoch - cfg.warmup_epochs
        return cosine_lr(cfg.learning_rate, cfg.learning_rate_min, e * n + step,
                         cfg.epochs * n)

    def run_epoch(self, epoch: int, on_step) -> dict:
        cfg = self.ctx.config
        warm = epoch < cfg.warmup_epochs
        acc = self.acc = self.acc or {"loss": 0.0, "correct": 0, "n": 0, "val_loss": 0.0,
                                      "val_correct": 0, "val_n": 0, "arch_steps": 0,
                                      "arch_loss": 0.0, "reward": 0.0, "lr": None,
                                      "t0": time.time()}
        # (an interrupt right after an epoch's last step leaves nothing to run)
        for x, y in (self.train_q if self.step < self.n_steps else ()):
            lr = self.step_lr(epoch, self.step)
            for g in self.w_opt.param_groups:
                g["lr"] = lr
            acc["lr"] = lr
            x, y = distributed.shard(x, y)      # torchrun: this rank's slice
            # the weight step and its arch step are one: an interrupt waits for both
            with deferred_interrupt():
                loss, logits = weight_step(self.model, self.w_opt, x, y, cfg.grad_clip,
                                           cfg.label_smoothing, forward=self.forward)
                tally(acc, loss, logits, y)
                if not warm and (self.step + 1) % cfg.arch_update_every == 0:
                    self._arch_step(acc)
                self.step += 1
            on_step(self.step, f"loss {acc['loss'] / acc['n']:.3f}")
        return self.close_epoch(self._record(epoch, warm, acc), self.model.derive())

    def _arch_step(self, acc: dict) -> None:
        cfg = self.ctx.config
        xv, yv = next(iter(self.val_q))       # the next batch (a new pass when one ends)
        xv, yv = distributed.shard(xv, yv)    # torchrun: this rank's slice
        reduce = distributed.grad_reducer()
        if cfg.grad_estimator == "binary":
            info = binary_arch_step(self.model, self.objective, self.a_opt, xv, yv,
                                    reduce=reduce)
        else:
            info = reinforce_arch_step(self.model, self.objective, self.a_opt, xv, yv,
                                       cfg.rl_samples, self.baseline, cfg.rl_baseline_decay,
                                       reduce=reduce)
            acc["reward"] += info["reward"]
        # the whole batch's figures (summed over the ranks' slices under torchrun)
        vl, vc, vn, al = distributed.global_sums(info["val_loss"] * yv.shape[0],
                                                 info["val_correct"], yv.shape[0],
                                                 info["loss"] * yv.shape[0])
        acc["val_loss"] += vl
        acc["val_correct"] += int(vc)
        acc["val_n"] += int(vn)
        acc["arch_loss"] += al / vn
        acc["arch_steps"] += 1

    def _record(self, epoch: int, warm: bool, acc: dict) -> dict:
        model = self.model
        with torch.no_grad():
            exp = {m: float(v) for m, v in self.cost_model.expected(model.alphas).items()}
            probs = model.probs().double()
        n, vn, an = max(acc["n"], 1), acc["val_n"], acc["arch_steps"]
        rec = {"epoch": epoch, "phase": "warmup" if warm else "search", "lr": acc["lr"],
               "train_loss": acc["loss"] / n, "train_acc": 100.0 * acc["correct"] / n,
               "val_loss": acc["val_loss"] / vn if vn else None,
               "val_acc": 100.0 * acc["val_correct"] / vn if vn else None,
               "arch_steps": an, "arch_loss": acc["arch_loss"] / an if an else None,
               "expected_cost": exp, "entropy": model.entropy(),
               "alphas": {"blocks": probs.tolist()}, "ops": list(model.primitives),
               "arch": list(model.derive().blocks), "seconds": time.time() - acc["t0"]}
        if acc.get("reward") and an:
            rec["reward"] = acc["reward"] / an
        return rec

    def epoch_line(self, h: dict) -> str:
        exp = ", ".join(f"E[{m}] {v:.4g}" for m, v in h["expected_cost"].items())
        val = (f" val loss {h['val_loss']:.3f} acc {h['val_acc']:.1f} %"
               if h["val_loss"] is not None else "")
        arch = " ".join(ProxylessArch(tuple(h["arch"])).summary().split())
        return (f"epoch {h['epoch'] + 1}/{self.epochs} ({h['phase']}): train loss "
                f"{h['train_loss']:.3f} acc {h['train_acc']:.1f} %{val}; {exp}; entropy "
                f"{h['entropy']:.3f}; argmax {arch}")

    def result(self) -> Outcome:
        return Outcome(self.model.derive(), self.model.alphas.detach().clone(),
                       extra={"loss_reference_ms": self.objective.refs.get("latency")})
