"""Reference networks (:mod:`nasbench.zoo`) trained and measured for a run.

Each reference is trained with the *same* short budget as the searched network (same
data, steps, batch, optimiser and schedule; labelled so in the report) and measured on
the same device with the same meters; its weights are kept in the run
(``references/NAME.pt``).

Results are cached per (data set, budget, device, deploy size) under the nasbench cache
folder, since the same budget gives the same numbers: a second search with the same
settings does not retrain them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from nasbench.candidates import candidate
from nasbench.config import RetrainBudget
from nasbench.errors import UserError, warn_damaged
from nasbench.files import atomic_torch_save
from nasbench.progress import progress_bar
from nasbench.zoo import (  # noqa: F401 - the registry, re-exported for callers
    DEFAULT_REFERENCES,
    REFERENCES,
    Reference,
    build_reference,
    parse_references,
    register_reference,
)
from profilers.lut import atomic_write_bytes, atomic_write_text


def reference_candidates(names, data, deploy, budget: RetrainBudget, device: str, *,
                         lut=None, measure: bool = True, log=print,
                         quiet: bool = False, keep_dir: Path | None = None) -> list[dict]:
    """Returns :func:`run_references` with a progress bar, or [] when training or
    measuring them fails (a search run is complete without its references)."""
    try:
        with progress_bar("reference networks", quiet=quiet) as cb:
            return run_references(names, data, deploy, budget, device, lut=lut,
                                  measure=measure, log=log, progress=cb,
                                  keep_dir=keep_dir)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - context for the report, not the result
        log(f"reference networks failed: {e.__class__.__name__}: {e}")
        return []


def _cache_file(names, data_desc: dict, budget: RetrainBudget, deploy_desc: dict,
                device: str):
    from nasbench.luts import cache_dir
    ident = json.dumps({"names": list(names), "data": data_desc, "budget": asdict(budget),
                        "deploy": deploy_desc, "device": device, "torch": torch.__version__},
                       sort_keys=True, default=str)
    return cache_dir() / "references" / f"{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json"


def train_reference(net: nn.Module, data, budget: RetrainBudget, channels_last: bool,
                    on_step: Callable | None = None) -> dict:
    """Trains ``net`` with ``budget`` and evaluates it on the test split; returns
    {"test_acc": fraction, "test_loss": nats, "test_n": images, "steps": batches
    trained, "seconds"}."""
    from nasbench.train import cosine_lr, evaluate, retrain_parts, train_epoch
    t0 = time.time()
    net, opt, tq, test_q = retrain_parts(net, data, budget, channels_last)
    steps = 0
    for e in range(budget.epochs):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(budget.learning_rate, 0.0, e, budget.epochs)
        steps += train_epoch(net, tq, opt, grad_clip=budget.grad_clip,
                             on_step=on_step)["steps"]
    ev = evaluate(net, test_q)
    return {"test_acc": ev["acc"], "test_loss": ev["loss"], "test_n": ev["n"], "steps": steps,
            "seconds": time.time() - t0}


def save_reference(path: Path, name: str, net: nn.Module, data, budget: RetrainBudget,
                   trained: dict) -> Path:
    """Writes a trained reference to ``path`` in the portable form of a run's
    ``model.pt`` (:mod:`nasbench.run.model`: weights, how to rebuild it, the
    preprocessing it was trained with, its test accuracy); returns ``path``."""
    from nasbench.run.model import FORMAT, preprocess_of
    from nasbench.spaces.darts import DartsSpace
    ref = REFERENCES[name]
    meta = {"format": FORMAT, "version": 1, "kind": "reference", "reference": name,
            "label": ref.label,
            "space": "darts" if ref.genotype is not None else "hand-designed",
            "arch": (DartsSpace.arch_to_dict(ref.genotype)
                     if ref.genotype is not None else None),
            "build": {"channels": budget.channels, "layers": budget.layers},
            "budget": asdict(budget), "data_dir": data.source if data.name == "cifar10" else None,
            "preprocess": preprocess_of(data), "test_acc": trained["test_acc"],
            "test_n": trained["test_n"]}
    atomic_torch_save({"meta": meta, "state_dict": {k: v.detach().cpu() for k, v in
                                                    net.state_dict().items()}}, path)
    return path


def run_references(names, data, deploy, budget: RetrainBudget, device: str, *, lut=None,
                   measure: bool = True, log=print, progress=None,
                   use_cache: bool = True, keep_dir: Path | None = None) -> list[dict]:
    """Trains (with ``budget``), evaluates, measures (on ``device`` at the deploy input
    and batch) and, for DARTS-space references with a DARTS ``lut``, predicts each
    reference; returns their candidate records (role "reference"). Cached results of
    the same data, budget, device and deploy size are reused (the LUT prediction is
    always recomputed). With ``keep_dir`` each trained network is kept there as
    ``<name>.pt`` (:func:`save_reference`; the cache keeps the weights too, so a reused
    result still hands its network over; a cached result without them is trained
    again)."""
    from nasbench.predict.predictor import predict_costs
    from nasbench.run.measure import count_complexity, measure_deploy
    from nasbench.spaces.darts import DartsSpace
    names = parse_references(",".join(names))
    deploy_desc = deploy.describe() | {"batch": deploy.batches[0]}
    cache = _cache_file(names, data.describe(), budget, deploy_desc, device)
    cached = {}
    if use_cache and cache.is_file():
        try:
            cached = {c["key"]: c for c in json.loads(cache.read_text())}
        except (ValueError, KeyError, TypeError) as e:
            warn_damaged(cache, "reference cache", "the references are trained again", e)
            cached = {}
    out, store = [], []
    cl = str(device) == "cpu"
    dshape = dict(num_classes=deploy.num_classes, in_channels=deploy.in_channels,
                  input_size=deploy.input_size)
    for i, name in enumerate(names):
        ref = REFERENCES[name]
        if progress:
            progress(i, len(names), ref.label)
        rec = cached.get(name)
        kept = Path(keep_dir) / f"{name}.pt" if keep_dir is not None else None
        # trained weights live in the cache (handed to every run that reuses the result)
        # or, without a cache, straight in the run
        weights = cache.with_suffix("") / f"{name}.pt" if use_cache else kept
        if rec is not None and kept is not None and not weights.is_file():
            rec = None                        # cached before weights were kept
        if rec is None:
            with torch.random.fork_rng():
                torch.manual_seed(budget.seed)
                # trained at the data's input size (it may be smaller than the deploy
                # network's, e.g. digits at 16x16), measured at the deploy size
                net = build_reference(name, size="train", channels=budget.channels,
                                      layers=budget.layers,
                                      **(dshape | {"input_size": data.input_size}))
            tr = train_reference(net, data, budget, cl)
            if weights is not None:
                weights.parent.mkdir(parents=True, exist_ok=True)
                save_reference(weights, name, net, data, budget, tr)
            # DARTS-space references at the deploy size of a DARTS run, else at the
            # DARTS evaluation size (C=36, 20 cells)
            deploy_net = build_reference(name, size="deploy",
                                         channels=getattr(deploy, "channels", 36),
                                         layers=getattr(deploy, "layers", 20),
                                         **dshape).eval()
            params, macs = count_complexity(deploy_net, deploy)
            measured = measure_deploy(deploy_net, deploy, device, log, lut) if measure \
                else None
            rec = {"key": name, "train": tr, "params": params, "macs": macs,
                   "measured": measured}
            log(f"reference {ref.label}: test accuracy {100 * tr['test_acc']:.2f} % after "
                f"{tr['steps']} steps ({tr['seconds']:.0f} s)")
        else:
            log(f"reference {ref.label}: reused from {cache}")
        if kept is not None and kept != weights:
            kept.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(kept, weights.read_bytes())
        store.append(rec)
        predicted = {}
        if (ref.genotype is not None and lut is not None
                and deploy.describe().get("space", "darts") == "darts"):
            predicted = predict_costs(DartsSpace(deploy), lut, ref.genotype)
        c = candidate(ref.label, "reference", arch=ref.genotype,
                      space="darts" if ref.genotype is not None else "hand-designed",
                      summary=None if ref.genotype is not None else ref.label,
                      test_acc=rec["train"]["test_acc"], predicted=predicted,
                      measured=rec["measured"], params=rec["params"], macs=rec["macs"],
                      train={"epochs": budget.epochs, "steps": rec["train"]["steps"]},
                      test_n=rec["train"].get("test_n"), classes=data.num_classes)
        c["budget"] = budget.describe()
        out.append(c)
    if progress:
        progress(len(names), len(names), "")
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps(store, default=float))
    return out
