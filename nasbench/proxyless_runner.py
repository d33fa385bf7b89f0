"""The ProxylessNAS runner: search, derive, retrain, predict + measure the cost, write the
run directory.

The run directory is the DARTS runner's (:mod:`nasbench.runner`): ``config.json``,
``lut.json``, ``search.log``, ``history.json``, ``checkpoint.pt``, ``genotype.json``,
``result.json``, ``report.html``; ``result.json`` carries the same fields, with a
:class:`~nasbench.search.proxyless.ProxylessArch` as the genotype, so reports treat both
methods alike. The searched network is the deploy network itself (ProxylessNAS needs no
proxy); the derived network is retrained at that size, evaluated on the test split,
predicted by the LUT and measured on the device.

history.json has one record per epoch (warm-up epochs first): ``epoch``, ``phase``
("warmup" | "search"), ``lr`` (last weight lr), ``train_loss``, ``train_acc`` and
``val_acc`` in percent, ``val_loss`` (nats), ``arch_steps``, ``arch_loss``,
``expected_cost`` ({"latency": ms, "energy": J, "memory": B} under the epoch's final
alphas), ``alphas`` ({"blocks": [[p per candidate] per block]}, softmax probabilities,
0 for ``zero`` where not allowed), ``ops`` (candidate names), ``arch`` (argmax blocks),
``entropy``, ``seconds``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from profilers.lut import LUT, LUTError

from .errors import UserError
from .runner import (
    Logger,
    Progress,
    SearchResult,
    atomic_torch_save,
    complete_run,
    count_complexity,
    measure_deploy,
    new_run_dir,
    rng_state,
    seed_everything,
    set_rng_state,
    summary_lines,
    write_json,
)
from .search.proxyless import (
    ProxylessArch,
    ProxylessCostModel,
    ProxylessObjective,
    ProxylessSupernet,
    arch_lut_cost,
    binary_arch_step,
    reinforce_arch_step,
    repair_arch_to_target,
    weight_step,
)
from .search.proxyless_config import ProxylessConfig
from .spaces.proxyless import ProxylessDeployConfig

# --------------------------------------------------------------------------------------
# LUT
# --------------------------------------------------------------------------------------


def profile_command_proxyless(device: str, deploy: ProxylessDeployConfig,
                              out: str | Path | None = None) -> str:
    """Returns the ``nasbench profile`` command that measures every op of ``deploy``."""
    cmd = (f"nasbench profile --space proxyless --device {device} --config {deploy.layout} "
           f"--input {deploy.input_size} --classes {deploy.num_classes} "
           f"--batch {deploy.batches[0]}")
    if deploy.width_mult != 1.0:
        cmd += f" --width-mult {deploy.width_mult}"
    if out:
        cmd += f" --out {out} --resume"
    return cmd


def resolve_proxyless_lut(cfg: ProxylessConfig, deploy: ProxylessDeployConfig,
                          quiet: bool = False) -> tuple[LUT, Path]:
    """Returns the LUT to use and its path: ``cfg.lut``, else the per-user cached LUT of
    this device and network (profiled first when absent). Raises UserError for a
    missing/corrupt LUT or one recorded for another device, space or network."""
    from .profiling import ensure_lut, get_device
    dev = get_device(cfg.device)
    path = Path(cfg.lut).expanduser() if cfg.lut else ensure_lut(cfg.device, deploy,
                                                                  quiet=quiet)
    try:
        lut = LUT.load(path)
        lut.check_matches(device=dev.to_dict(), deploy=deploy.describe())
    except LUTError as e:
        msg = str(e)
        if "another network" in msg:
            msg += f"; make one with: {profile_command_proxyless(cfg.device, deploy)} --out FILE"
        raise UserError(msg) from None
    return lut, path


def build_proxyless_cost_model(lut: LUT, lut_path: Path, deploy: ProxylessDeployConfig,
                               metrics: list[str], device: str) -> ProxylessCostModel:
    """Returns the cost model of ``metrics``; raises UserError naming the missing entries
    and the profile command that fills them."""
    try:
        return ProxylessCostModel.from_lut(lut, deploy, metrics)
    except KeyError as e:
        metric, missing = e.args
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more"
                                          if len(missing) > 3 else "")
        if metric != "latency" and len(missing) >= len(lut.entries) // 2:
            raise UserError(f"LUT {lut_path} has no {metric} measurements for the proxyless "
                            f"network ({len(missing)} entries lack it, e.g. {shown}); this "
                            f"device may have no {metric} meter, use another objective") \
                from None
        raise UserError(f"LUT {lut_path} lacks {len(missing)} {metric} entries for the "
                        f"proxyless network: {shown}; fill them with: "
                        f"{profile_command_proxyless(device, deploy, lut_path)}") from None


def predict_arch_costs(lut: LUT, deploy: ProxylessDeployConfig, arch: ProxylessArch) -> dict:
    """Returns the LUT prediction of ``arch``'s network: ``{"latency_ms", "energy_j",
    "memory_bytes", "source"}`` (None where the LUT has no value). Latency and energy
    are sums over the op instances; memory is the sum of per-op peaks (an upper-bound
    style estimate, not the network's peak)."""
    return {"latency_ms": arch_lut_cost(lut, deploy, arch, "latency"),
            "energy_j": arch_lut_cost(lut, deploy, arch, "energy"),
            "memory_bytes": arch_lut_cost(lut, deploy, arch, "memory"),
            "source": "LUT (sum over op instances; an estimate)"}


# --------------------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------------------


def _load_resume(resume, config) -> tuple[ProxylessConfig, Path, dict | None]:
    run_dir = Path(resume)
    if not run_dir.is_dir() and config is not None:
        run_dir = Path(config.out) / str(resume)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"--resume {resume}: not a run directory (no config.json)")
    try:
        d = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"--resume {resume}: unreadable config.json ({e})") from None
    if d.get("method") != "proxyless":
        raise UserError(f"--resume {resume}: a {d.get('method')} run, not a proxyless one")
    cfg = ProxylessConfig.from_dict(d)
    ckpt = None
    if (run_dir / "checkpoint.pt").is_file():
        ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    return cfg, run_dir, ckpt


def _next_batch(loader):
    """Returns the loader's next batch (a new pass starts when one ends)."""
    return next(iter(loader))


def search_proxyless(config: ProxylessConfig | None = None, *,
                     resume: str | Path | None = None, quiet: bool = False,
                     lut: str | Path | None = None,
                     _interrupt_after_steps: int | None = None) -> SearchResult:
    """Runs a ProxylessNAS search (binary gates or REINFORCE) with the config's objective,
    retrains the derived network, predicts (LUT) and measures (device) its cost and
    writes the run directory; returns the :class:`~nasbench.runner.SearchResult`
    (status "interrupted" after Ctrl-C, with a checkpoint to ``resume`` from).

    ``resume`` is a run directory (or its name under ``config.out``); the run continues
    with its own saved config. ``_interrupt_after_steps`` simulates Ctrl-C (tests)."""
    t_start = time.time()
    ckpt = None
    if resume is not None:
        cfg, run_dir, ckpt = _load_resume(resume, config)
    else:
        cfg = config if config is not None else ProxylessConfig()
        if lut is not None:
            cfg = cfg.replace(lut=str(lut))
        run_dir = None
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # ---- everything that can fail on user input happens before the run dir exists ----
    from .data import TensorLoader, load_dataset
    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.download, cfg.data_input_size)
    deploy = cfg.deploy(num_classes=data.num_classes, in_channels=data.in_channels)
    lut_obj, lut_path = resolve_proxyless_lut(cfg, deploy, quiet=quiet)
    metrics = list(dict.fromkeys(["latency", *cfg.cost_metrics]))
    cost_model = build_proxyless_cost_model(lut_obj, lut_path, deploy, metrics, cfg.device)
    try:
        objective = ProxylessObjective(cost_model, cfg.latency_loss, cfg.loss_alpha,
                                       cfg.loss_beta, cfg.loss_lambda, cfg.latency_target_ms,
                                       cfg.rl_tradeoff, metrics=cfg.cost_metrics)
    except ValueError as e:
        raise UserError(str(e)) from None

    if run_dir is None:
        run_dir = new_run_dir(cfg.out, "proxyless")
        cfg = cfg.replace(lut=str(lut_path))
        write_json(run_dir / "config.json", cfg.to_dict())
        write_json(run_dir / "lut.json", {"path": str(lut_path), "sha256": lut_obj.sha256(),
                                          "provenance": lut_obj.provenance})
    log = Logger(run_dir / "search.log", quiet)
    if ckpt is None:
        log(f"run {run_dir}: proxyless ({cfg.grad_estimator}), objective {cfg.objective}, "
            f"loss {cfg.latency_loss}, preset {cfg.preset}, dataset {cfg.dataset}")
        log("settings: " + ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items()))
    else:
        log(f"resuming {run_dir} at phase {ckpt['phase']}, epoch {ckpt['epoch']} "
            f"step {ckpt['step']}")
    lo, hi = cost_model.bounds("latency")
    refs = ", ".join(f"{m} {v:.4g} {'ms' if m == 'latency' else ''}".strip()
                     for m, v in objective.refs.items()) or "none"
    log(f"LUT {lut_path} (device {lut_obj.device_name}); network {deploy.layout} "
        f"x{deploy.width_mult} {deploy.input_size}x{deploy.input_size}, "
        f"{len(cost_model.tables['latency'])} searchable blocks, batch {deploy.batches[0]}; "
        f"LUT latency of the space {lo:.3f}-{hi:.3f} ms; loss reference: {refs}")

    cl = cfg.device == "cpu"          # channels_last: faster convs on CPU
    seed_everything(cfg.seed)
    model = ProxylessSupernet(deploy, cfg.arch_init_std)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    w_opt = torch.optim.SGD(model.weights(), cfg.warmup_learning_rate, momentum=cfg.momentum,
                            nesterov=cfg.nesterov and cfg.momentum > 0,
                            weight_decay=cfg.weight_decay)
    a_opt = torch.optim.Adam(model.arch_parameters(), cfg.arch_learning_rate,
                             betas=tuple(float(b) for b in cfg.arch_betas), eps=cfg.arch_eps,
                             weight_decay=cfg.arch_weight_decay)
    train_half, val_half = data.search_splits(cfg.train_portion, cfg.seed)
    n_steps = -(-len(train_half) // cfg.batch_size)
    if cfg.steps_per_epoch:
        n_steps = min(n_steps, cfg.steps_per_epoch)
    train_q = TensorLoader(train_half, cfg.batch_size, mean=data.mean, std=data.std,
                           augment=True, seed=cfg.seed + 1, max_steps=n_steps,
                           channels_last=cl)
    val_q = TensorLoader(val_half, cfg.batch_size, mean=data.mean, std=data.std,
                         augment=False, seed=cfg.seed + 2, drop_last=True, channels_last=cl)
    total_epochs = cfg.warmup_epochs + cfg.epochs

    def step_lr(epoch: int, step: int) -> float:
        """Per-step cosine: warm-up from warmup_learning_rate to 0 over the warm-up
        steps, then learning_rate to learning_rate_min over the search steps."""
        from .train import cosine_lr
        if epoch < cfg.warmup_epochs:
            return cosine_lr(cfg.warmup_learning_rate, 0.0, epoch * n_steps + step,
                             cfg.warmup_epochs * n_steps)
        e = epoch - cfg.warmup_epochs
        return cosine_lr(cfg.learning_rate, cfg.learning_rate_min, e * n_steps + step,
                         cfg.epochs * n_steps)

    history: list[dict] = []
    state = {"phase": "search", "epoch": 0, "step": 0, "acc": None, "train": None,
             "train_epoch": 0, "durations": {"search": 0.0, "train": 0.0},
             "baseline": {"value": None}}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        w_opt.load_state_dict(ckpt["w_opt"])
        a_opt.load_state_dict(ckpt["a_opt"])
        train_q.load_state_dict(ckpt["train_q"])
        val_q.load_state_dict(ckpt["val_q"])
        history = ckpt["history"]
        state.update({k: ckpt[k] for k in ("phase", "epoch", "step", "acc", "train",
                                           "train_epoch", "durations", "baseline")})
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
        if state["phase"] in state["durations"]:
            state["durations"][state["phase"]] += now - t_phase[0]
        t_phase[0] = now
        obj = {"model": model.state_dict(), "w_opt": w_opt.state_dict(),
               "a_opt": a_opt.state_dict(), "train_q": train_q.state_dict(),
               "val_q": val_q.state_dict(), "history": history, "rng": rng_state(),
               "config": cfg.to_dict(), **state}
        if extra:
            obj.update(extra)
        atomic_torch_save(obj, run_dir / "checkpoint.pt")

    result = SearchResult(run_dir=run_dir, method="proxyless", status="interrupted",
                          config=cfg.to_dict(),
                          deploy=deploy.describe() | {"batch": deploy.batches[0]},
                          lut={"path": str(lut_path), "sha256": lut_obj.sha256(),
                               "device": lut_obj.device_name},
                          dataset=data.describe())
    try:
        with Progress(quiet) as prog:
            # ---------------- warm-up + search ----------------
            if state["phase"] == "search":
                ep_task = prog.task("search epochs", total_epochs, state["epoch"])
                st_task = prog.task("steps", n_steps)
                while state["epoch"] < total_epochs:
                    epoch = state["epoch"]
                    warm = epoch < cfg.warmup_epochs
                    acc = state["acc"] or {"loss": 0.0, "correct": 0, "n": 0, "val_loss": 0.0,
                                           "val_correct": 0, "val_n": 0, "arch_steps": 0,
                                           "arch_loss": 0.0, "reward": 0.0, "lr": None,
                                           "t0": time.time()}
                    state["acc"] = acc
                    phase = "warm-up" if warm else "search"
                    prog.reset(st_task, n_steps, state["step"],
                               description=f"{phase} {epoch + 1}/{total_epochs}")
                    # (an interrupt right after an epoch's last step leaves nothing to run)
                    for x, y in (train_q if state["step"] < n_steps else ()):
                        lr = step_lr(epoch, state["step"])
                        for g in w_opt.param_groups:
                            g["lr"] = lr
                        acc["lr"] = lr
                        loss, logits = weight_step(model, w_opt, x, y, cfg.grad_clip,
                                                   cfg.label_smoothing)
                        acc["loss"] += loss * y.shape[0]
                        acc["correct"] += int((logits.argmax(1) == y).sum())
                        acc["n"] += y.shape[0]
                        if not warm and (state["step"] + 1) % cfg.arch_update_every == 0:
                            xv, yv = _next_batch(val_q)
                            if cfg.grad_estimator == "binary":
                                info = binary_arch_step(model, objective, a_opt, xv, yv)
                            else:
                                info = reinforce_arch_step(model, objective, a_opt, xv, yv,
                                                           cfg.rl_samples, state["baseline"],
                                                           cfg.rl_baseline_decay)
                                acc["reward"] += info["reward"]
                            acc["val_loss"] += info["val_loss"] * yv.shape[0]
                            acc["val_correct"] += info["val_correct"]
                            acc["val_n"] += yv.shape[0]
                            acc["arch_loss"] += info["loss"]
                            acc["arch_steps"] += 1
                        state["step"] += 1
                        prog.update(st_task, completed=state["step"],
                                    info=f"loss {acc['loss'] / acc['n']:.3f}")
                        interrupt_check()
                    history.append(_epoch_record(epoch, warm, acc, model, cost_model))
                    log(_epoch_line(history[-1], total_epochs))
                    state.update(epoch=epoch + 1, step=0, acc=None)
                    write_json(run_dir / "history.json", history)
                    save_checkpoint()
                    prog.update(ep_task, completed=state["epoch"])
                state["phase"] = "derive"

            # ---------------- derive ----------------
            derived = model.derive()
            arch = derived
            with torch.no_grad():
                expected = {m: float(v) for m, v in cost_model.expected(model.alphas).items()}
            target = None
            if cfg.latency_target_ms is not None:
                rep = repair_arch_to_target(derived, cost_model, cfg.latency_target_ms,
                                            model.probs())
                if cfg.hard_target:
                    arch = rep.arch
                target = {"target_ms": cfg.latency_target_ms, "hard": cfg.hard_target,
                          "derived_ms": rep.before_ms,
                          "final_ms": rep.after_ms if cfg.hard_target else rep.before_ms,
                          "met": (rep.met if cfg.hard_target
                                  else rep.before_ms <= cfg.latency_target_ms),
                          "repaired": bool(rep.swaps) and cfg.hard_target,
                          "swaps": rep.swaps if cfg.hard_target else [],
                          "lower_bound_ms": rep.lower_bound_ms, "message": rep.message,
                          "loss_reference_ms": objective.refs.get("latency")}
                log(("hard target: " if cfg.hard_target else "target: ") + rep.message)
            write_json(run_dir / "genotype.json",
                       {"genotype": arch.to_dict(), "derived": derived.to_dict(),
                        "method": "proxyless", "summary": arch.summary()})
            log(f"architecture: {arch.summary()}")
            result.genotype, result.derived_genotype = arch, derived
            result.expected, result.target = expected, target
            result.predicted = predict_arch_costs(lut_obj, deploy, arch)
            result.epochs_done = len(history)
            if state["phase"] == "derive":
                state["phase"] = "train"
                state["train_epoch"] = 0
                save_checkpoint()

            # ---------------- retrain ----------------
            tr = state.get("train") or {}
            net, t_opt, tq, test_q = _retrain_setup(cfg, data, arch, deploy, cl)
            retrain_objs.update(net=net, opt=t_opt, loader=tq, steps=0)
            if "model" in tr:
                net.load_state_dict(tr["model"])
                t_opt.load_state_dict(tr["opt"])
                tq.load_state_dict(tr["loader"])
            tr_history = tr.get("history", [])
            if state["phase"] == "train" and cfg.train_epochs > 0:
                ep_task = prog.task("retrain epochs", cfg.train_epochs, state["train_epoch"])
                st_task = prog.task("steps", len(tq))
                from .train import cosine_lr, train_epoch
                while state["train_epoch"] < cfg.train_epochs:
                    e = state["train_epoch"]
                    lr = cosine_lr(cfg.train_learning_rate, 0.0, e, cfg.train_epochs)
                    for g in t_opt.param_groups:
                        g["lr"] = lr
                    prog.reset(st_task, len(tq), tq._cursor if tq._cursor < len(tq) else 0,
                               description=f"retrain {e + 1}/{cfg.train_epochs}")
                    if tr.pop("mid_epoch", False) and tq._cursor >= len(tq):
                        # interrupted right after the epoch's last step: close it as is
                        stats = {"loss": None, "acc": None, "steps": 0, "complete": True}
                    else:
                        def on_step(i, n, loss):
                            retrain_objs["steps"] += 1
                            prog.update(st_task, advance=1, info=f"loss {loss:.3f}")
                            interrupt_check()

                        stats = train_epoch(net, tq, t_opt, grad_clip=cfg.grad_clip,
                                            on_step=on_step)
                    tr_history.append({"epoch": e, "lr": lr, **stats})
                    if stats["loss"] is not None:
                        log(f"retrain epoch {e + 1}/{cfg.train_epochs}: loss "
                            f"{stats['loss']:.4f} acc {100 * stats['acc']:.2f} %")
                    state["train_epoch"] = e + 1
                    state["train"] = {"model": net.state_dict(), "opt": t_opt.state_dict(),
                                      "loader": tq.state_dict(), "history": tr_history}
                    save_checkpoint()
                    retrain_objs["steps"] = 0
                    prog.update(ep_task, completed=state["train_epoch"])
            state["phase"] = "evaluate"
    except KeyboardInterrupt:
        if state["phase"] == "train" and retrain_objs:
            state["train"] = {"model": retrain_objs["net"].state_dict(),
                              "opt": retrain_objs["opt"].state_dict(),
                              "loader": retrain_objs["loader"].state_dict(),
                              "history": (state.get("train") or {}).get("history", []),
                              "mid_epoch": retrain_objs["steps"] > 0}
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
        log(f"test accuracy {100 * test['acc']:.2f} % ({test['n']} images), "
            f"loss {test['loss']:.4f}")
        result.trained_network = {"layout": deploy.layout, "width_mult": deploy.width_mult,
                                  "epochs": cfg.train_epochs,
                                  "steps": sum(h.get("steps", 0) for h in tr_history),
                                  "history": tr_history}
        from .models.proxyless import build_proxyless_network
        deploy_net = build_proxyless_network(arch, deploy)
        deploy_net.load_state_dict(net.state_dict())
        deploy_net.eval()
        result.params, result.macs = count_complexity(deploy_net, deploy)
        if cfg.measure:
            result.measured = measure_deploy(deploy_net, deploy, cfg.device, log, lut_obj)
        if cfg.reference_list:
            from .references import reference_candidates
            result.references = reference_candidates(
                cfg.reference_list, data, deploy, _retrain_budget(cfg), cfg.device,
                lut=lut_obj, measure=cfg.measure, log=log, quiet=quiet)
    except KeyboardInterrupt:
        log(f"interrupted: continue with: nasbench search --resume {run_dir}")
        result.durations_s = dict(state["durations"])
        write_json(run_dir / "result.json", result.to_dict())
        return result
    state["durations"]["evaluate"] = time.time() - t_eval
    save_checkpoint({"phase": "done"})
    return complete_run(result, {**state["durations"], "total": time.time() - t_start},
                        lut_path, log)


def _epoch_record(epoch: int, warm: bool, acc: dict, model: ProxylessSupernet,
                  cost_model: ProxylessCostModel) -> dict:
    with torch.no_grad():
        exp = {m: float(v) for m, v in cost_model.expected(model.alphas).items()}
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


def _epoch_line(h: dict, epochs: int) -> str:
    exp = ", ".join(f"E[{m}] {v:.4g}" for m, v in h["expected_cost"].items())
    val = (f" val loss {h['val_loss']:.3f} acc {h['val_acc']:.1f} %"
           if h["val_loss"] is not None else "")
    arch = " ".join(ProxylessArch(tuple(h["arch"])).summary().split())
    return (f"epoch {h['epoch'] + 1}/{epochs} ({h['phase']}): train loss "
            f"{h['train_loss']:.3f} acc {h['train_acc']:.1f} %{val}; {exp}; entropy "
            f"{h['entropy']:.3f}; argmax {arch}")


def _retrain_setup(cfg: ProxylessConfig, data, arch: ProxylessArch,
                   deploy: ProxylessDeployConfig, cl: bool):
    from .data import TensorLoader
    from .models.proxyless import build_proxyless_network
    from .train import make_optimizer
    with torch.random.fork_rng():       # leave the global RNG stream untouched (resume)
        torch.manual_seed(cfg.seed)
        net = build_proxyless_network(arch, deploy)
    if cl:
        net = net.to(memory_format=torch.channels_last)
    opt = make_optimizer(net, cfg.train_learning_rate, cfg.momentum, cfg.train_weight_decay)
    tq = TensorLoader(data.train, cfg.train_batch_size, mean=data.mean, std=data.std,
                      augment=True, cutout=cfg.cutout, seed=cfg.seed + 3,
                      max_steps=cfg.train_max_steps, channels_last=cl)
    test_q = TensorLoader(data.test, 256, mean=data.mean, std=data.std, shuffle=False,
                          channels_last=cl)
    return net, opt, tq, test_q


def proxyless_summary_lines(r: SearchResult) -> list[str]:
    """Returns the one-screen summary of a proxyless result, as lines (the DARTS
    runner's :func:`~nasbench.runner.summary_lines`, with the DARTS-specific lines
    written for this space)."""
    cfg = r.config
    out = []
    for line in summary_lines(r):
        if line.startswith("method "):
            line = (f"method proxyless ({cfg.get('grad_estimator')}, "
                    f"{cfg.get('latency_loss')}), objective {cfg.get('objective')}, "
                    f"preset {cfg.get('preset')}, dataset {cfg.get('dataset')}")
        elif line.startswith("test accuracy") and r.test_acc is not None:
            tn = r.trained_network
            line = (f"test accuracy {100 * r.test_acc:.2f} % (derived network retrained "
                    f"{tn.get('epochs')} epoch(s), {tn.get('steps')} steps)")
        elif line.startswith("deploy net (") and r.predicted.get("latency_ms") is not None:
            p = r.predicted
            line = (f"network {r.deploy.get('layout')} x{r.deploy.get('width_mult')} "
                    f"{r.deploy.get('input_size')}px, batch {r.deploy.get('batch')}: LUT "
                    f"latency {p['latency_ms']:.3f} ms"
                    + (f", energy {p['energy_j']:.4g} J" if p.get("energy_j") else ""))
        out.append(line)
    return out


__all__ = ["search_proxyless", "resolve_proxyless_lut", "build_proxyless_cost_model",
           "predict_arch_costs", "profile_command_proxyless", "proxyless_summary_lines"]


def _retrain_budget(cfg: ProxylessConfig):
    """Returns this run's retrain budget, which the reference networks get too."""
    from .references import RetrainBudget
    return RetrainBudget(epochs=cfg.train_epochs, max_steps=cfg.train_max_steps,
                         batch_size=cfg.train_batch_size,
                         learning_rate=cfg.train_learning_rate, momentum=cfg.momentum,
                         weight_decay=cfg.train_weight_decay,
                         grad_clip=cfg.grad_clip or 0.0, cutout=cfg.cutout, seed=cfg.seed)
