"""The search runner: search, derive, retrain, predict + measure the cost, write the run.

A run directory ``<out>/<YYYYmmdd-HHMMSS>-<method>-<6 hex>/`` holds:

* ``config.json`` every resolved setting; ``lut.json`` the LUT's path, sha256 and
  provenance; ``search.log`` the log;
* ``history.json`` one record per epoch (losses, accuracies, expected cost, alphas);
* ``checkpoint.pt`` the last checkpoint (model, optimisers, loaders, RNG states; written
  atomically after every epoch and on Ctrl-C), for ``--resume RUN``;
* ``genotype.json`` the derived (and, with a hard target, repaired) architecture;
* ``result.json`` the outcome (accuracy, predicted and measured cost, params, MACs);
* ``report.html`` when the report builder is installed.

The layout and ``result.json`` fields are method-agnostic: other searchers fill the
same ``SearchResult``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import io
import json
import os
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from profilers.lut import LUT, LUTError, atomic_write_text

from .candidates import arch_dict, arch_summary, candidate
from .errors import UserError
from .genotypes import Genotype, genotype_from_dict, genotype_to_dict, summarize
from .references import RetrainBudget, reference_candidates
from .search.config import DARTSConfig
from .spaces.darts import DeployConfig

RESULT_SCHEMA = 1


@dataclass
class SearchResult:
    """What a search produced. Units: accuracy as a fraction, latency in ms, energy in J
    per forward, memory in bytes, MACs per forward (multiply-accumulates), seconds."""

    run_dir: Path
    method: str
    status: str                          # "complete" | "interrupted"
    genotype: Genotype | None = None
    derived_genotype: Genotype | None = None   # before any hard-target repair
    test_acc: float | None = None
    test_loss: float | None = None
    predicted: dict = field(default_factory=dict)   # LUT cost of the deploy network
    expected: dict = field(default_factory=dict)    # E[cost] under the final alphas
    target: dict | None = None
    measured: dict | None = None
    params: dict = field(default_factory=dict)
    macs: dict = field(default_factory=dict)
    durations_s: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    deploy: dict = field(default_factory=dict)
    trained_network: dict = field(default_factory=dict)
    lut: dict = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)
    epochs_done: int = 0
    references: list = field(default_factory=list)  # candidate records (role reference)
    started: str = ""
    finished: str = ""

    def derived_candidate(self) -> dict | None:
        """Returns the candidate record of the derived network (None before it exists)."""
        if self.genotype is None:
            return None
        tn = self.trained_network or {}
        return candidate(f"{self.method} (derived)", "derived", arch=self.genotype,
                         test_acc=self.test_acc, predicted=self.predicted,
                         measured=self.measured, params=self.params, macs=self.macs,
                         train={"epochs": tn.get("epochs"), "steps": tn.get("steps")})

    def to_dict(self) -> dict:
        """Returns the JSON-ready result (the content of result.json): every field, plus
        ``candidates`` (the derived network and the reference networks, in the form
        reports read, see :mod:`nasbench.candidates`), ``run_id``, ``objective``,
        ``device`` and ``versions``."""
        d = asdict(self)
        d["schema"] = RESULT_SCHEMA
        d["run_dir"] = str(self.run_dir)
        d["run_id"] = Path(self.run_dir).name
        d["genotype"] = arch_dict(self.genotype)
        d["derived_genotype"] = arch_dict(self.derived_genotype)
        d["objective"] = self.config.get("objective")
        d["dataset"] = self.dataset.get("name") if isinstance(self.dataset, dict) else \
            self.dataset
        d["dataset_info"] = self.dataset
        dev = (self.measured or {}).get("device") or {}
        d["device"] = {"name": dev.get("name") or self.lut.get("device"),
                       "spec": self.config.get("device"), **dev}
        d["versions"] = _versions()
        if self.target:
            d["target"] = {**self.target, "metric": "latency",
                           "value": self.target.get("target_ms"), "unit": "ms"}
        d["candidates"] = ([c] if (c := self.derived_candidate()) else []) + \
            list(self.references)
        return d


def _versions() -> dict:
    import platform
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("torchvision", "numpy", "pyopencl", "thop", "ptflops"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - absent or without a version: not recorded
            pass
    try:
        from importlib.metadata import version
        out["nasbench"] = version("nasbench")
    except Exception:  # noqa: BLE001
        pass
    return out


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def new_run_dir(out: str | Path, method: str) -> Path:
    """Returns a fresh run directory ``out/<YYYYmmdd-HHMMSS>-<method>-<6 hex>`` (created)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    d = Path(out) / f"{stamp}-{method}-{secrets.token_hex(3)}"
    d.mkdir(parents=True, exist_ok=False)
    return d


def write_json(path: Path, obj) -> None:
    """Writes ``obj`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=1, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def atomic_torch_save(obj, path: Path) -> None:
    """Saves ``obj`` with torch.save to a temporary file, then renames it over ``path``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def seed_everything(seed: int) -> None:
    """Seeds python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Returns the global RNG states (python, numpy, torch)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(s: dict) -> None:
    """Restores :func:`rng_state`."""
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


class Logger:
    """Appends timestamped lines to the run's log; echoes them unless quiet."""

    def __init__(self, path: Path | None, quiet: bool = False):
        self.path, self.quiet = path, quiet
        from .progress import console
        self.console = console

    def __call__(self, msg: str) -> None:
        line = f"{_dt.datetime.now().isoformat(timespec='seconds')} {msg}"
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        if not self.quiet:
            self.console.print(msg, highlight=False, markup=False)


class Progress:
    """Two rich progress bars (epochs and steps) with ETA; silent when quiet."""

    def __init__(self, quiet: bool):
        self.p = None
        if not quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            from .progress import console
            self.p = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                                  TimeRemainingColumn(), TextColumn("[dim]{task.fields[info]}"),
                                  console=console, transient=True)

    def __enter__(self):
        if self.p:
            self.p.__enter__()
        return self

    def __exit__(self, *exc):
        if self.p:
            self.p.__exit__(*exc)

    def task(self, description: str, total: int, completed: int = 0):
        """Returns a task id (or None when quiet)."""
        if not self.p:
            return None
        return self.p.add_task(description, total=total, completed=completed, info="")

    def update(self, task, **kw) -> None:
        """Updates a task (``completed=``, ``total=``, ``info=``...)."""
        if self.p and task is not None:
            self.p.update(task, **kw)

    def reset(self, task, total: int, completed: int = 0, description: str | None = None):
        """Restarts a task's bar (and ETA) for a new pass."""
        if self.p and task is not None:
            kw = {"description": description} if description else {}
            self.p.reset(task, total=total, completed=completed, **kw)


# --------------------------------------------------------------------------------------
# LUT
# --------------------------------------------------------------------------------------


def profile_command(device: str, deploy: DeployConfig, out: str | Path | None = None) -> str:
    """Returns the ``nasbench profile`` command that measures every op ``deploy`` needs."""
    cmd = (f"nasbench profile --device {device} --channels {deploy.channels} "
           f"--layers {deploy.layers} --input {deploy.input_size} "
           f"--classes {deploy.num_classes} --batch {deploy.batches[0]}")
    if out:
        cmd += f" --out {out} --resume"
    return cmd


def resolve_lut(cfg: DARTSConfig, deploy: DeployConfig, quiet: bool = False
                ) -> tuple[LUT, Path]:
    """Returns the LUT to use and its path: ``cfg.lut``, else the per-user cached LUT of
    this device and deploy network (profiled first when absent). Raises UserError for a
    missing/corrupt LUT or one recorded for another device or network."""
    from .profiling import get_device
    dev = get_device(cfg.device)
    if cfg.lut:
        path = Path(cfg.lut).expanduser()
    else:
        from .profiling import ensure_lut
        path = ensure_lut(cfg.device, deploy, quiet=quiet)
    try:
        lut = LUT.load(path)
        lut.check_matches(device=dev.to_dict(), deploy=deploy.describe())
    except LUTError as e:
        msg = str(e)
        if "another network" in msg:
            msg += f"; make one with: {profile_command(cfg.device, deploy)} --out FILE"
        raise UserError(msg) from None
    return lut, path


def build_cost_model(lut: LUT, lut_path: Path, deploy: DeployConfig, metrics: list[str],
                     device: str):
    """Returns the CostModel of the objective's metrics; raises UserError naming the
    missing entries and the profile command that fills them."""
    from .search.cost import CostModel
    from .validate import CalibratedLUT, load_calibration
    calib = load_calibration(lut, deploy.batches[0])
    try:
        if calib is not None:
            # `nasbench lut calibrate` fitted a predictor for this very LUT file: the
            # expected cost uses it (still a weighted sum, so still differentiable)
            return CostModel.from_lut(CalibratedLUT(lut, calib), deploy, metrics)
        return CostModel.from_lut(lut, deploy, metrics)
    except KeyError as e:
        metric, missing = e.args
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more"
                                          if len(missing) > 3 else "")
        if metric != "latency" and len(missing) >= len(lut.entries) // 2:
            raise UserError(f"LUT {lut_path} has no {metric} measurements for the deploy "
                            f"network ({len(missing)} entries lack it, e.g. {shown}); "
                            f"this device may have no {metric} meter, use another "
                            f"objective") from None
        raise UserError(f"LUT {lut_path} lacks {len(missing)} {metric} entries for the "
                        f"deploy network: {shown}; fill them with: "
                        f"{profile_command(device, deploy, lut_path)}") from None


# --------------------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------------------


def _to_cl(x: torch.Tensor, cl: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if cl else x


def search_architecture(config: DARTSConfig | None = None, *, resume: str | Path | None = None,
                        quiet: bool = False, lut: str | Path | None = None,
                        _interrupt_after_steps: int | None = None) -> SearchResult:
    """Runs a DARTS / PC-DARTS search with the config's objective, retrains the derived
    network, predicts (LUT) and measures (device) its cost, writes the run directory;
    returns the :class:`SearchResult` (status "interrupted" after Ctrl-C, with a
    checkpoint to ``resume`` from).

    ``resume`` is a run directory (or its name under ``config.out``); the run continues
    with its own saved config. ``_interrupt_after_steps`` simulates Ctrl-C (tests)."""
    t_start = time.time()
    ckpt = None
    if resume is not None:
        run_dir = Path(resume)
        if not run_dir.is_dir() and config is not None:
            run_dir = Path(config.out) / str(resume)
        if not (run_dir / "config.json").is_file():
            raise UserError(f"--resume {resume}: not a run directory (no config.json)")
        cfg = DARTSConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        if (run_dir / "checkpoint.pt").is_file():
            ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    else:
        cfg = config if config is not None else DARTSConfig()
        if lut is not None:
            cfg = cfg.replace(lut=str(lut))
        run_dir = None
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # ---- everything that can fail on user input happens before the run dir exists ----
    from .data import TensorLoader, load_dataset
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.download, cfg.input_size)
    deploy = cfg.deploy(num_classes=data.num_classes, in_channels=data.in_channels)
    lut_obj, lut_path = resolve_lut(cfg, deploy, quiet=quiet)
    cost_model = build_cost_model(lut_obj, lut_path, deploy, cfg.cost_metrics, cfg.device)
    latency_model = (cost_model if "latency" in cfg.cost_metrics else
                     build_cost_model(lut_obj, lut_path, deploy, ["latency"], cfg.device))

    if run_dir is None:
        run_dir = new_run_dir(cfg.out, cfg.method)
        cfg = cfg.replace(lut=str(lut_path))
        write_json(run_dir / "config.json", cfg.to_dict())
        write_json(run_dir / "lut.json", {"path": str(lut_path), "sha256": lut_obj.sha256(),
                                          "provenance": lut_obj.provenance})
    log = Logger(run_dir / "search.log", quiet)
    if ckpt is None:
        log(f"run {run_dir}: {cfg.method} ({cfg.order} order), objective {cfg.objective}, "
            f"preset {cfg.preset}, dataset {cfg.dataset}")
        log("settings: " + ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items()))
    else:
        log(f"resuming {run_dir} at phase {ckpt['phase']}, epoch {ckpt['epoch']} "
            f"step {ckpt['step']}")
    log(f"LUT {lut_path} (device {lut_obj.device_name}); deploy network "
        f"C={deploy.channels}, {deploy.layers} cells, {deploy.input_size}x{deploy.input_size}"
        f", batch {deploy.batches[0]}")

    cl = cfg.device == "cpu"          # channels_last: ~1.6x faster convs on CPU
    seed_everything(cfg.seed)
    from .search.architect import Architect, weight_step
    from .search.cost import CostObjective
    from .search.supernet import SearchNetwork
    from .train import cosine_lr

    model = SearchNetwork(C=cfg.channels, num_classes=data.num_classes, layers=cfg.layers,
                          steps=cfg.steps, multiplier=cfg.multiplier,
                          stem_multiplier=cfg.stem_multiplier, in_channels=data.in_channels,
                          input_size=cfg.input_size, partial_k=cfg.partial)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    w_opt = torch.optim.SGD(model.weights(), cfg.learning_rate, momentum=cfg.momentum,
                            weight_decay=cfg.weight_decay)
    objective = (CostObjective(cost_model, cfg.effective_cost_weight, cfg.latency_target_ms)
                 if cfg.cost_metrics else None)
    architect = Architect(model, lr=cfg.arch_learning_rate, betas=cfg.arch_betas,
                          weight_decay=cfg.arch_weight_decay, order=cfg.order,
                          momentum=cfg.momentum, network_weight_decay=cfg.weight_decay,
                          penalty=objective)
    train_half, val_half = data.search_splits(cfg.train_portion, cfg.seed)
    n_steps = min(-(-len(train_half) // cfg.batch_size), -(-len(val_half) // cfg.batch_size))
    if cfg.steps_per_epoch:
        n_steps = min(n_steps, cfg.steps_per_epoch)
    kw = dict(mean=data.mean, std=data.std, augment=True, max_steps=n_steps, channels_last=cl)
    train_q = TensorLoader(train_half, cfg.batch_size, seed=cfg.seed + 1, **kw)
    val_q = TensorLoader(val_half, cfg.batch_size, seed=cfg.seed + 2, **kw)

    history: list[dict] = []
    state = {"phase": "search", "epoch": 0, "step": 0, "acc": None, "train": None,
             "train_epoch": 0, "durations": {"search": 0.0, "train": 0.0}}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        w_opt.load_state_dict(ckpt["w_opt"])
        architect.load_state_dict(ckpt["architect"])
        train_q.load_state_dict(ckpt["train_q"])
        val_q.load_state_dict(ckpt["val_q"])
        history = ckpt["history"]
        state.update({k: ckpt[k] for k in ("phase", "epoch", "step", "acc", "train",
                                           "train_epoch", "durations")})
        set_rng_state(ckpt["rng"])

    steps_done = [0]
    t_phase = [time.time()]
    retrain_objs: dict = {}

    def interrupt_check():
        steps_done[0] += 1
        if _interrupt_after_steps is not None and steps_done[0] >= _interrupt_after_steps:
            raise KeyboardInterrupt

    def save_checkpoint(extra: dict | None = None):
        now = time.time()
        state["durations"][state["phase"]] += now - t_phase[0]
        t_phase[0] = now
        obj = {"model": model.state_dict(), "w_opt": w_opt.state_dict(),
               "architect": architect.state_dict(), "train_q": train_q.state_dict(),
               "val_q": val_q.state_dict(), "history": history, "rng": rng_state(),
               "config": cfg.to_dict(), **state}
        if extra:
            obj.update(extra)
        atomic_torch_save(obj, run_dir / "checkpoint.pt")

    result = SearchResult(run_dir=run_dir, method=cfg.method, status="interrupted",
                          config=cfg.to_dict(), deploy=deploy.describe() | {
                              "batch": deploy.batches[0]},
                          lut={"path": str(lut_path), "sha256": lut_obj.sha256(),
                               "device": lut_obj.device_name},
                          dataset=data.describe(),
                          started=_dt.datetime.fromtimestamp(t_start).astimezone().isoformat(
                              timespec="seconds"))
    try:
        with Progress(quiet) as prog:
            # ---------------- search ----------------
            if state["phase"] == "search":
                ep_task = prog.task("search epochs", cfg.epochs, state["epoch"])
                st_task = prog.task("steps", n_steps)
                while state["epoch"] < cfg.epochs:
                    epoch = state["epoch"]
                    lr = cosine_lr(cfg.learning_rate, cfg.learning_rate_min, epoch, cfg.epochs)
                    for g in w_opt.param_groups:
                        g["lr"] = lr
                    acc = state["acc"] or {"loss": 0.0, "correct": 0, "n": 0, "val_loss": 0.0,
                                           "val_correct": 0, "val_n": 0, "arch_steps": 0,
                                           "t0": time.time()}
                    state["acc"] = acc
                    prog.reset(st_task, n_steps, state["step"],
                               description=f"epoch {epoch + 1}/{cfg.epochs}")
                    for (x, y), (xv, yv) in zip(train_q, val_q, strict=False):
                        if epoch >= cfg.warmup_epochs:
                            info = architect.step(x, y, xv, yv, lr, w_opt)
                            acc["val_loss"] += info["val_loss"] * yv.shape[0]
                            acc["val_correct"] += info.get("val_correct", 0)
                            acc["val_n"] += yv.shape[0]
                            acc["arch_steps"] += 1
                        loss, logits = weight_step(model, w_opt, x, y, cfg.grad_clip)
                        acc["loss"] += loss * y.shape[0]
                        acc["correct"] += int((logits.argmax(1) == y).sum())
                        acc["n"] += y.shape[0]
                        state["step"] += 1
                        prog.update(st_task, completed=state["step"],
                                    info=f"loss {acc['loss'] / acc['n']:.3f}")
                        interrupt_check()
                    history.append(_epoch_record(epoch, lr, acc, model, cost_model, objective,
                                                 latency_model))
                    h = history[-1]
                    log(_epoch_line(h, cfg.epochs))
                    state.update(epoch=epoch + 1, step=0, acc=None)
                    write_json(run_dir / "history.json", history)
                    save_checkpoint()
                    prog.update(ep_task, completed=state["epoch"])
                state["phase"] = "derive"

            # ---------------- derive ----------------
            derived = model.genotype()
            genotype = derived
            with torch.no_grad():
                expected = {m: float(v) for m, v in
                            latency_model.expected_of_model(model).items()}
                if cost_model is not latency_model:
                    expected.update({m: float(v) for m, v in
                                     cost_model.expected_of_model(model).items()})
            target = None
            if cfg.latency_target_ms is not None:
                from .search.cost import repair_to_target
                w = model.arch_weights()
                wn, wr = w["normal"].detach(), w["reduce"].detach()
                if "edge_normal" in w:
                    wn = wn * w["edge_normal"].detach().unsqueeze(1)
                    wr = wr * w["edge_reduce"].detach().unsqueeze(1)
                rep = repair_to_target(derived, latency_model, cfg.latency_target_ms, wn, wr)
                if cfg.hard_target:
                    genotype = rep.genotype
                target = {"target_ms": cfg.latency_target_ms, "hard": cfg.hard_target,
                          "derived_ms": rep.before_ms,
                          "final_ms": rep.after_ms if cfg.hard_target else rep.before_ms,
                          "met": (rep.met if cfg.hard_target
                                  else rep.before_ms <= cfg.latency_target_ms),
                          "repaired": bool(rep.swaps) and cfg.hard_target,
                          "swaps": rep.swaps if cfg.hard_target else [],
                          "lower_bound_ms": rep.lower_bound_ms, "message": rep.message}
                log(("hard target: " if cfg.hard_target else "target: ") + rep.message)
            write_json(run_dir / "genotype.json",
                       {"genotype": genotype_to_dict(genotype),
                        "derived": genotype_to_dict(derived), "method": cfg.method,
                        "summary": summarize(genotype)})
            log(f"genotype: {summarize(genotype)}")
            result.genotype, result.derived_genotype = genotype, derived
            result.expected, result.target = expected, target
            result.predicted = predict_costs(lut_obj, deploy, genotype)
            result.epochs_done = len(history)
            if state["phase"] == "derive":
                state["phase"] = "train"
                state["train_epoch"] = 0
                save_checkpoint()

            # ---------------- retrain ----------------
            tr = state.get("train") or {}
            net, t_opt, tq, test_q = _retrain_setup(cfg, data, genotype, cl)
            retrain_objs.update(net=net, opt=t_opt, loader=tq)
            if "model" in tr:
                net.load_state_dict(tr["model"])
                t_opt.load_state_dict(tr["opt"])
                tq.load_state_dict(tr["loader"])
            tr_history = tr.get("history", [])
            if state["phase"] == "train" and cfg.train_epochs > 0:
                ep_task = prog.task("retrain epochs", cfg.train_epochs, state["train_epoch"])
                st_task = prog.task("steps", len(tq))
                from .train import train_epoch
                while state["train_epoch"] < cfg.train_epochs:
                    e = state["train_epoch"]
                    lr = cosine_lr(cfg.train_learning_rate, 0.0, e, cfg.train_epochs)
                    for g in t_opt.param_groups:
                        g["lr"] = lr
                    net.drop_path_prob = cfg.drop_path_prob * e / cfg.train_epochs
                    prog.reset(st_task, len(tq), tq._cursor if tq._cursor < len(tq) else 0,
                               description=f"retrain {e + 1}/{cfg.train_epochs}")
                    stats = train_epoch(
                        net, tq, t_opt, auxiliary_weight=cfg.auxiliary_weight,
                        grad_clip=cfg.grad_clip,
                        on_step=lambda i, n, loss: (prog.update(st_task, advance=1,
                                                                info=f"loss {loss:.3f}"),
                                                    interrupt_check()))
                    tr_history.append({"epoch": e, "lr": lr, **stats})
                    log(f"retrain epoch {e + 1}/{cfg.train_epochs}: loss {stats['loss']:.4f} "
                        f"acc {stats['acc']:.4f}")
                    state["train_epoch"] = e + 1
                    state["train"] = {"model": net.state_dict(), "opt": t_opt.state_dict(),
                                      "loader": tq.state_dict(), "history": tr_history}
                    save_checkpoint()
                    prog.update(ep_task, completed=state["train_epoch"])
            state["phase"] = "evaluate"
    except KeyboardInterrupt:
        if state["phase"] == "train" and retrain_objs:
            # mid-epoch: keep the current weights and loader position; the epoch's
            # remaining batches run on resume
            state["train"] = {"model": retrain_objs["net"].state_dict(),
                              "opt": retrain_objs["opt"].state_dict(),
                              "loader": retrain_objs["loader"].state_dict(),
                              "history": (state.get("train") or {}).get("history", [])}
        save_checkpoint()
        log(f"interrupted: checkpoint saved; continue with: nasbench search --resume {run_dir}")
        result.durations_s = dict(state["durations"])
        write_json(run_dir / "result.json", result.to_dict())
        return result

    # ---------------- evaluate, predict, measure ----------------
    from .train import evaluate
    t_eval = time.time()
    try:
        test = evaluate(net, test_q)
        result.test_acc, result.test_loss = test["acc"], test["loss"]
        log(f"test accuracy {test['acc']:.4f} ({test['n']} images), loss {test['loss']:.4f}")
        result.trained_network = {"channels": cfg.train_channels or cfg.eval_channels,
                                  "layers": cfg.train_layers or cfg.eval_layers,
                                  "epochs": cfg.train_epochs,
                                  "steps": sum(h.get("steps", 0) for h in tr_history),
                                  "history": tr_history}
        deploy_net = _deploy_network(genotype, deploy)
        result.params, result.macs = count_complexity(deploy_net, deploy)
        if cfg.measure:
            result.measured = measure_deploy(deploy_net, deploy, cfg.device, log, lut_obj)
        if cfg.reference_list:
            result.references = reference_candidates(
                cfg.reference_list, data, deploy, retrain_budget(cfg), cfg.device,
                lut=lut_obj, measure=cfg.measure, log=log, quiet=quiet)
    except KeyboardInterrupt:
        # the last checkpoint (retrain done) stays; resuming redoes only this part
        log(f"interrupted: continue with: nasbench search --resume {run_dir}")
        result.durations_s = dict(state["durations"])
        write_json(run_dir / "result.json", result.to_dict())
        return result
    state["durations"]["evaluate"] = time.time() - t_eval
    save_checkpoint({"phase": "done"})
    return complete_run(result, {**state["durations"], "total": time.time() - t_start},
                        lut_path, log)


def complete_run(result: SearchResult, durations_s: dict, lut_path: Path, log
                 ) -> SearchResult:
    """Marks ``result`` complete, writes its result.json and the run's report.html (the
    run is complete without its report when the builder fails); returns ``result``."""
    result.status, result.finished = "complete", _now()
    result.durations_s = durations_s
    write_json(result.run_dir / "result.json", result.to_dict())
    try:
        from reports import build_report
    except ImportError:
        return result
    try:
        build_report([result.run_dir], result.run_dir / "report.html", lut=lut_path)
        log(f"report: {result.run_dir / 'report.html'}")
    except Exception as e:  # noqa: BLE001 - the run is complete without its report
        log(f"report builder failed: {e.__class__.__name__}: {e}")
    return result


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def retrain_budget(cfg: DARTSConfig) -> RetrainBudget:
    """Returns the retrain budget of a config (shared by the derived network and the
    reference networks)."""
    return RetrainBudget(epochs=cfg.train_epochs, max_steps=cfg.train_max_steps,
                         batch_size=cfg.train_batch_size,
                         learning_rate=cfg.train_learning_rate, momentum=cfg.momentum,
                         weight_decay=cfg.train_weight_decay, grad_clip=cfg.grad_clip,
                         cutout=cfg.cutout, seed=cfg.seed,
                         channels=cfg.train_channels or cfg.eval_channels,
                         layers=cfg.train_layers or cfg.eval_layers)


def _epoch_record(epoch, lr, acc, model, cost_model, objective, latency_model) -> dict:
    with torch.no_grad():
        w = model.arch_weights()
        exp = {m: float(v) for m, v in latency_model.expected_of_model(model).items()}
        if cost_model is not latency_model:
            exp.update({m: float(v) for m, v in cost_model.expected_of_model(model).items()})
        pen = float(objective.penalty({m: torch.tensor(exp[m], dtype=torch.float64)
                                       for m in objective.cm.metrics})) if objective else 0.0
    rec = {"epoch": epoch, "lr": lr,
           "train_loss": acc["loss"] / max(acc["n"], 1),
           "train_acc": 100.0 * acc["correct"] / max(acc["n"], 1),
           "val_loss": acc["val_loss"] / acc["val_n"] if acc["val_n"] else None,
           "val_acc": 100.0 * acc["val_correct"] / acc["val_n"] if acc["val_n"] else None,
           "arch_steps": acc["arch_steps"], "expected": exp, "expected_cost": exp,
           "penalty": pen, "seconds": time.time() - acc["t0"],
           "alphas": {k: v.tolist() for k, v in w.items()},
           "primitives": list(model.primitives), "ops": list(model.primitives),
           "genotype": genotype_to_dict(model.genotype())}
    return rec


def _epoch_line(h: dict, epochs: int) -> str:
    exp = ", ".join(f"E[{m}] {v:.4g}" for m, v in h["expected"].items())
    val = f" val loss {h['val_loss']:.3f} acc {h['val_acc']:.1f} %" if h["val_loss"] else ""
    w = torch.tensor(h["alphas"]["normal"]).mean(0).tolist()
    dist = " ".join(f"{p}:{x:.3f}" for p, x in zip(h["primitives"], w, strict=False))
    return (f"epoch {h['epoch'] + 1}/{epochs}: train loss {h['train_loss']:.3f} acc "
            f"{h['train_acc']:.1f} %{val}; {exp}; mean normal alphas {dist}")


def _retrain_setup(cfg: DARTSConfig, data, genotype: Genotype, cl: bool):
    from .data import TensorLoader
    from .models.network import build_network_from_genotype
    from .train import make_optimizer
    with torch.random.fork_rng():       # leave the global RNG stream untouched (resume)
        torch.manual_seed(cfg.seed)
        net = build_network_from_genotype(
            genotype, C=cfg.train_channels or cfg.eval_channels,
            num_cells=cfg.train_layers or cfg.eval_layers, num_classes=data.num_classes,
            auxiliary=cfg.auxiliary_weight > 0, drop_path_prob=cfg.drop_path_prob,
            in_channels=data.in_channels, input_size=cfg.input_size)
    if cl:
        net = net.to(memory_format=torch.channels_last)
    opt = make_optimizer(net, cfg.train_learning_rate, cfg.momentum, cfg.train_weight_decay)
    tq = TensorLoader(data.train, cfg.train_batch_size, mean=data.mean, std=data.std,
                      augment=True, cutout=cfg.cutout, seed=cfg.seed + 3,
                      max_steps=cfg.train_max_steps, channels_last=cl)
    test_q = TensorLoader(data.test, 256, mean=data.mean, std=data.std, shuffle=False,
                          channels_last=cl)
    return net, opt, tq, test_q


def _deploy_network(genotype: Genotype, deploy: DeployConfig):
    from .models.network import build_network_from_genotype
    return build_network_from_genotype(genotype, C=deploy.channels, num_cells=deploy.layers,
                                       num_classes=deploy.num_classes,
                                       in_channels=deploy.in_channels,
                                       input_size=deploy.input_size).eval()


def predict_costs(lut: LUT, deploy: DeployConfig, genotype: Genotype) -> dict:
    """Returns the LUT prediction for the deploy network of ``genotype``:
    ``{"latency_ms", "latency_plain_ms", "energy_j", "memory_bytes", "source"}`` (None
    where the LUT has no value). ``latency_ms`` is the calibrated predictor's when
    ``nasbench lut calibrate`` fitted one for this LUT (at this batch), else the plain
    sum over the op instances (``latency_plain_ms``). Energy is a sum; memory is the sum
    of per-op peaks, an upper-bound-style estimate, not the network's peak."""
    from .search.cost import genotype_lut_cost
    from .validate import CalibratedLUT, load_calibration
    plain = genotype_lut_cost(lut, deploy, genotype, "latency")
    calib = load_calibration(lut, deploy.batches[0]) if isinstance(lut, LUT) else None
    latency, source = plain, "LUT (sum over op instances; an estimate)"
    if calib is not None and plain is not None:
        latency = genotype_lut_cost(CalibratedLUT(lut, calib), deploy, genotype, "latency")
        source = "LUT, calibrated predictor (lut calibrate; an estimate)"
    return {"latency_ms": latency, "latency_plain_ms": plain,
            "energy_j": genotype_lut_cost(lut, deploy, genotype, "energy"),
            "memory_bytes": genotype_lut_cost(lut, deploy, genotype, "memory"),
            "source": source}


def count_complexity(net, deploy: DeployConfig) -> tuple[dict, dict]:
    """Returns (params, macs) of the deploy network, each {"thop", "ptflops", "torch"}.

    Parameters agree exactly. MACs differ by design, and only outside convolutions and
    linear layers, which both count identically (``conv_linear``, from our own hooks,
    is that common figure; compare networks by it): thop adds 4 per element for an
    affine BatchNorm (2 x its 2-op normalisation) and (kernel+1) per output of
    adaptive pooling, and 0 for ReLU and max pooling; ptflops (pytorch backend) adds 2
    per element for affine BN, 1 per element for ReLU, pooling inputs, and the torch
    functionals/tensor ops it patches. E.g. DARTS_V2 at C=8, 5 cells: conv_linear
    7,392,512; thop 8,441,216 (= + 4 x 260,096 BN + 8,320 pool); ptflops 8,916,234."""
    shape = (deploy.batches[0], deploy.in_channels, deploy.input_size, deploy.input_size)
    params = {"torch": sum(p.numel() for p in net.parameters())}
    macs: dict = {"conv_linear": conv_linear_macs(net, shape)}
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import thop
            m, p = thop.profile(copy.deepcopy(net), inputs=(torch.randn(shape),),
                                verbose=False)
        macs["thop"], params["thop"] = int(m), int(p)
    except Exception as e:  # noqa: BLE001
        macs["thop"] = params["thop"] = None
        macs["thop_error"] = f"{e.__class__.__name__}: {e}"
    try:
        import contextlib

        from ptflops import get_model_complexity_info
        with contextlib.redirect_stdout(io.StringIO()):
            m, p = get_model_complexity_info(copy.deepcopy(net), shape[1:], as_strings=False,
                                             print_per_layer_stat=False, verbose=False,
                                             backend="pytorch")
        macs["ptflops"], params["ptflops"] = int(m * shape[0]), int(p)
    except Exception as e:  # noqa: BLE001
        macs["ptflops"] = params["ptflops"] = None
        macs["ptflops_error"] = f"{e.__class__.__name__}: {e}"
    macs["batch"] = shape[0]
    return params, macs


def conv_linear_macs(net, shape) -> int:
    """Returns the multiply-accumulates of every Conv2d and Linear for one forward."""
    total = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += out.numel() * k

    def lin_hook(m, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, torch.nn.Linear):
            hooks.append(mod.register_forward_hook(lin_hook))
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(shape))
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def measure_deploy(net, deploy: DeployConfig, device: str, log, lut=None) -> dict:
    """Returns the device measurement of the deploy network (measure_network's dict), or
    {"error": ...} when it cannot be measured. When ``lut`` was profiled with a drift
    anchor, the forward is timed beside that anchor and ``latency_corrected_ms`` is the
    measurement in the LUT's time base (ratio to the anchor x its reference time, ms),
    so it compares with the LUT's prediction as `lut validate` does (forwards over
    LONG_CALL_MS have none: the meter does not anchor them)."""
    from .profiling import measure_network, prepare_lut_anchor
    from .validate import corrected_ms
    shape = (deploy.batches[0], deploy.in_channels, deploy.input_size, deploy.input_size)
    anchor = None
    try:
        if lut is not None:
            try:
                anchor = prepare_lut_anchor(lut, device, deploy)
            except UserError as e:          # the run keeps its raw measurement
                log(f"{e}; measuring without the drift anchor")
        m = measure_network(net, shape, device=device, anchor=anchor)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - the run still has its prediction
        log(f"could not measure the network on {device}: {e.__class__.__name__}: {e}")
        return {"error": f"{e.__class__.__name__}: {e}"}
    finally:
        if anchor is not None:
            anchor.release()
    lat = m.get("latency_ms", {})
    line = (f"measured on {device}: latency median {lat.get('median', float('nan')):.3f} ms "
            f"(cv {lat.get('cv', float('nan')):.3f}, {lat.get('repeats')} repeats)")
    if m.get("anchored"):                        # none for long calls (see the meter)
        m["latency_corrected_ms"] = corrected_ms(m, lut.provenance["anchor"]["ref_ms"])
        line += f"; {m['latency_corrected_ms']:.3f} ms in the LUT's time base (drift anchor)"
    log(line)
    return m


def load_result(run_dir: str | Path) -> dict:
    """Returns the parsed result.json of a run directory."""
    return json.loads((Path(run_dir) / "result.json").read_text())


def summary_lines(r: SearchResult) -> list[str]:
    """Returns the one-screen summary of a result, as lines."""
    cfg = r.config
    lines = [f"run: {r.run_dir}  [{r.status}]",
             f"method {r.method} ({cfg.get('order')} order), objective {cfg.get('objective')},"
             f" preset {cfg.get('preset')}, dataset {cfg.get('dataset')}"]
    if r.genotype:
        lines.append(f"architecture: {arch_summary(r.genotype)}")
    if r.test_acc is not None:
        tn = r.trained_network
        lines.append(f"test accuracy {100 * r.test_acc:.2f} % (retrained C={tn.get('channels')},"
                     f" {tn.get('layers')} cells, {tn.get('epochs')} epoch(s))")
    p = r.predicted
    if p.get("latency_ms") is not None:
        lines.append(f"deploy net (C={r.deploy.get('channels')}, {r.deploy.get('layers')} cells,"
                     f" batch {r.deploy.get('batch')}): LUT latency {p['latency_ms']:.3f} ms"
                     + (f", energy {p['energy_j']:.4g} J" if p.get("energy_j") else ""))
    if r.measured and "latency_ms" in r.measured:
        lines.append(f"measured latency {r.measured['latency_ms']['median']:.3f} ms (median)"
                     + (f", {r.measured['latency_corrected_ms']:.3f} ms in the LUT's time "
                        f"base (drift anchor)" if "latency_corrected_ms" in r.measured else ""))
    if r.target:
        lines.append(("hard target: " if r.target["hard"] else "target: ") + r.target["message"])
    if r.params:
        lines.append(f"params {r.params.get('torch'):,}; MACs thop {r.macs.get('thop')}, "
                     f"ptflops {r.macs.get('ptflops')}, conv+linear {r.macs.get('conv_linear')}")
    if r.durations_s:
        lines.append("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in r.durations_s.items()))
    lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    return lines


def genotype_of_run(run_dir: str | Path) -> Genotype:
    """Returns the genotype.json genotype of a run."""
    d = json.loads((Path(run_dir) / "genotype.json").read_text())
    return genotype_from_dict(d["genotype"])

