"""DARTS (Liu et al., ICLR 2019) and PC-DARTS (Xu et al., ICLR 2020) as a searcher.

The supernet is a proxy (``channels``/``layers`` of the config) of the space's deploy
network; each step is one weight step on the train half and, after the warm-up epochs,
one architecture step on the validation half (first or second order) whose loss adds
the cost objective: the expected LUT cost of the deploy network under the alphas (and
PC-DARTS's betas), see :mod:`nasbench.oneshot.cost`. The result is the DARTS rule's
genotype; its slot logits are the alphas, its slot weights PC-DARTS's edge
normalisation.

Warm-up epochs (``warmup_epochs``) come before the search epochs and train the weights
only, so that the first architecture steps compare ops that have learnt something.
Anti-collapse remedies (``anti_collapse``): ``beta`` adds beta-DARTS's regulariser
(:func:`~nasbench.oneshot.cost.beta_regulariser`) at a weight ramped linearly to
``beta_weight`` over the search epochs; ``pt`` derives the cell from DARTS-PT's
perturbation scores (:mod:`nasbench.oneshot.perturb`) instead of the alphas.

history.json: one record per epoch: ``epoch``, ``phase`` ("warmup" | "search"),
``lr``, ``beta_weight``, ``train_loss``, ``train_acc`` and ``val_acc`` in percent,
``val_loss`` (nats), ``arch_steps``, ``expected`` / ``expected_cost`` ({"latency": ms,
...} under the epoch's final alphas), ``derived_latency`` (ms: the derived cell's, with
a latency target), ``penalty`` (the cost term), ``alphas`` ({"normal", "reduce"} or
{"cell"}: softmax weights [edges x ops]), ``primitives``, ``ops``, ``genotype`` (the
derivation's), ``seconds``.
"""

from __future__ import annotations

import time

import torch

from nasbench import distributed
from nasbench.data import TensorLoader
from nasbench.files import deferred_interrupt
from nasbench.oneshot.architect import Architect, weight_step
from nasbench.oneshot.cost import CostModel, CostObjective, beta_regulariser
from nasbench.oneshot.perturb import perturbation_scores
from nasbench.searchers.base import (
    Outcome,
    SearchContext,
    Searcher,
    epoch_lr,
    register_searcher,
    tally,
)
from nasbench.searchers.darts_config import DARTSConfig


@register_searcher("darts", "pcdarts")
class DartsSearcher(Searcher):
    """DARTS / PC-DARTS (``method`` of the config; PC-DARTS samples ``partial_k``
    channels per edge and learns edge normalisation betas)."""

    config_class = DARTSConfig
    stateful = ("model", "w_opt", "architect", "train_q", "val_q")
    plain_state = ("step", "acc", "pt")
    #: runs data-parallel under torchrun (:mod:`nasbench.distributed`)
    data_parallel = True

    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        cfg, data, cl = ctx.config, ctx.data, ctx.channels_last
        self.latency_model = CostModel(ctx.predictor.table, ["latency"])
        self.cost_model = CostModel(ctx.predictor.table, ctx.metrics)
        # the space's supernet (DARTS cells, or NAS-Bench-201's), at the data's input
        model = ctx.space.supernet(cfg.channels, cfg.layers, cfg.partial,
                                   num_classes=data.num_classes,
                                   in_channels=data.in_channels, input_size=data.input_size)
        self.model = model.to(memory_format=torch.channels_last) if cl else model
        # the weight step's forward: the model itself, or its DDP wrapper under torchrun
        self.forward = distributed.data_parallel(self.model, sync_bn=cfg.sync_bn)
        self.w_opt = torch.optim.SGD(self.model.weights(), cfg.learning_rate,
                                     momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.objective = (CostObjective(self.cost_model, cfg.effective_cost_weight,
                                        cfg.latency_target_ms, cfg.effective_target_form)
                          if ctx.metrics else None)
        self.reg_weight = 0.0               # beta-DARTS: ramped per epoch
        self.architect = Architect(self.model, lr=cfg.arch_learning_rate,
                                   betas=cfg.arch_betas, weight_decay=cfg.arch_weight_decay,
                                   order=cfg.order, momentum=cfg.momentum,
                                   network_weight_decay=cfg.weight_decay,
                                   penalty=self.penalty,
                                   reduce=distributed.grad_reducer())
        train_half, val_half = data.search_splits(cfg.train_portion, cfg.seed)
        b = cfg.batch_size
        n = min(-(-len(train_half) // b), -(-len(val_half) // b))
        self.n_steps = min(n, cfg.steps_per_epoch) if cfg.steps_per_epoch else n
        kw = dict(mean=data.mean, std=data.std, augment=data.augment, max_steps=self.n_steps,
                  channels_last=cl)
        self.train_q = TensorLoader(train_half, b, seed=cfg.seed + 1, **kw)
        self.val_q = TensorLoader(val_half, b, seed=cfg.seed + 2, **kw)
        self.step, self.acc, self.pt = 0, None, None
        self.pt_q = val_half if cfg.anti_collapse == "pt" else None

    def penalty(self, model, ce: float) -> tuple[torch.Tensor, dict]:
        """Returns the architecture step's extra loss: the cost objective's term plus,
        with ``--anti-collapse beta``, beta-DARTS's regulariser at this epoch's weight."""
        pen, info = (self.objective(model, ce) if self.objective else
                     (torch.zeros(()), {}))
        if self.reg_weight:
            reg = beta_regulariser(model)
            pen = pen + self.reg_weight * reg.to(pen.dtype)
            info["beta_regulariser"] = float(reg.detach())
        return pen, info

    @property
    def epochs(self) -> int:
        """Returns the warm-up epochs (weights only) plus the search epochs."""
        cfg = self.ctx.config
        return cfg.warmup_epochs + cfg.epochs

    @property
    def steps_per_epoch(self) -> int:
        return self.n_steps

    def run_epoch(self, epoch: int, on_step) -> dict:
        cfg = self.ctx.config
        lr = epoch_lr(self.w_opt, cfg, epoch, self.epochs)
        search_epoch = epoch - cfg.warmup_epochs           # < 0: a warm-up epoch
        if cfg.anti_collapse == "beta" and search_epoch >= 0:
            self.reg_weight = cfg.beta_weight * (search_epoch + 1) / cfg.epochs
        acc = self.acc = self.acc or {"loss": 0.0, "correct": 0, "n": 0, "val_loss": 0.0,
                                      "val_correct": 0, "val_n": 0, "arch_steps": 0,
                                      "t0": time.time()}
        # (an interrupt right after an epoch's last step leaves nothing to run)
        batches = zip(self.train_q, self.val_q, strict=False) if self.step < self.n_steps \
            else ()
        for (x, y), (xv, yv) in batches:
            x, y, xv, yv = distributed.shard(x, y, xv, yv)   # torchrun: this rank's slice
            # the alpha step and the weight step are one: an interrupt waits for both
            with deferred_interrupt():
                if search_epoch >= 0:
                    info = self.architect.step(x, y, xv, yv, lr, self.w_opt)
                    vl, vc, vn = distributed.global_sums(info["val_loss"] * yv.shape[0],
                                                         info.get("val_correct", 0),
                                                         yv.shape[0])
                    acc["val_loss"] += vl
                    acc["val_correct"] += int(vc)
                    acc["val_n"] += int(vn)
                    acc["arch_steps"] += 1
                loss, logits = weight_step(self.model, self.w_opt, x, y, cfg.grad_clip,
                                           forward=self.forward)
                tally(acc, loss, logits, y)
                self.step += 1
            on_step(self.step, f"loss {acc['loss'] / acc['n']:.3f}")
        return self.close_epoch(self._record(epoch, lr, acc), self.model.genotype())

    def _record(self, epoch: int, lr: float, acc: dict) -> dict:
        model = self.model
        with torch.no_grad():
            w = model.arch_weights()
            exp = {m: float(v) for m, v in self.latency_model.expected_of_model(model).items()}
            if self.objective:
                exp.update({m: float(v) for m, v in
                            self.cost_model.expected_of_model(model).items()})
            ce = acc["val_loss"] / acc["val_n"] if acc["val_n"] else 0.0
            pen, derived = 0.0, None
            if self.objective:
                costs, info = self.objective.costs(model)
                pen = float(self.objective.penalty(costs, ce))
                derived = info.get("derived_latency")
        warm = epoch < self.ctx.config.warmup_epochs
        return {"epoch": epoch, "phase": "warmup" if warm else "search", "lr": lr,
                "beta_weight": self.reg_weight,
                "train_loss": acc["loss"] / max(acc["n"], 1),
                "train_acc": 100.0 * acc["correct"] / max(acc["n"], 1),
                "val_loss": acc["val_loss"] / acc["val_n"] if acc["val_n"] else None,
                "val_acc": 100.0 * acc["val_correct"] / acc["val_n"] if acc["val_n"] else None,
                "arch_steps": acc["arch_steps"], "expected": exp, "expected_cost": exp,
                "derived_latency": derived, "penalty": pen, "seconds": time.time() - acc["t0"],
                "alphas": {k: v.tolist() for k, v in w.items()},
                "primitives": list(model.primitives), "ops": list(model.primitives),
                "genotype": self.ctx.space.arch_to_dict(model.genotype())}

    def epoch_line(self, h: dict) -> str:
        exp = ", ".join(f"E[{m}] {v:.4g}" for m, v in h["expected"].items())
        val = f" val loss {h['val_loss']:.3f} acc {h['val_acc']:.1f} %" if h["val_loss"] else ""
        w = torch.tensor(next(iter(h["alphas"].values()))).mean(0).tolist()
        dist = " ".join(f"{p}:{x:.3f}" for p, x in zip(h["primitives"], w, strict=False))
        kind = next(iter(h["alphas"]))
        return (f"epoch {h['epoch'] + 1}/{self.epochs}: train loss {h['train_loss']:.3f} acc "
                f"{h['train_acc']:.1f} %{val}; {exp}; mean {kind} alphas {dist}")

    def result(self) -> Outcome:
        m, cfg = self.model, self.ctx.config
        w = m.slot_weights()          # PC-DARTS's edge normalisation, as the cost sees it
        w = None if w is None else w.detach().double()
        if cfg.anti_collapse != "pt":
            return Outcome(m.genotype(), m.slot_logits().detach(), w)
        if self.pt is None:           # once: a resume after it keeps its answer
            d = self.ctx.data
            q = TensorLoader(self.pt_q, cfg.batch_size, seed=cfg.seed + 3, mean=d.mean,
                             std=d.std, augment=False, max_steps=cfg.pt_batches,
                             channels_last=self.ctx.channels_last)
            self.pt = perturbation_scores(m, list(q)).tolist()
        drops = torch.tensor(self.pt, dtype=torch.float64)
        arch = m.derive(drops)
        self.ctx.log(f"DARTS-PT: {self.ctx.space.summary(arch)} (accuracy drop when an op "
                     f"is removed, pp, per edge: "
                     + "; ".join(" ".join(f"{x:+.1f}" for x in row) for row in self.pt) + ")")
        return Outcome(arch, m.slot_logits().detach(), w, preference=torch.exp(drops),
                       extra={"pt_scores": self.pt})
