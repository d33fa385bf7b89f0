"""The one runner: everything around a searcher (:mod:`nasbench.searchers`).

It resolves the device once, the LUT (profiling this device first when there is no
cached one) and the predictor of the space's deploy network; makes the run directory;
drives the searcher epoch by epoch with a log, progress bars, history and a checkpoint
after every epoch and on Ctrl-C (resume continues mid-epoch, nothing runs twice); then
derives (the searcher's architecture, repaired to a hard latency target by the
predictor), retrains, evaluates, predicts and measures the deploy network, trains the
reference networks, and writes ``result.json`` and the report.

A run directory ``<out>/<YYYYmmdd-HHMMSS>-<method>-<6 hex>/`` holds:

* ``config.json`` every resolved setting; ``lut.json`` the LUT's path, sha256 and
  provenance; ``search.log`` the log;
* ``history.json`` the searcher's records, one per epoch;
* ``checkpoint.pt`` the last checkpoint (the searcher's state, the retrain's, the RNG
  states), for ``--resume RUN``;
* ``genotype.json`` the derived (and, with a hard target, repaired) architecture;
* ``model.pt`` the retrained network: weights, architecture, config and preprocessing
  (:mod:`.model`; ``nasbench eval`` / ``nasbench export`` read it);
* ``references/<name>.pt`` each reference network as trained for the comparison, in the
  same form (``nasbench eval RUN/references/resnet20.pt``);
* ``result.json`` the outcome (:class:`~nasbench.run.result.SearchResult`);
* ``report.html``.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasbench.benchmarks import hwnas as _hwnas  # noqa: F401 - registers the table prior
from nasbench.errors import UserError, ensure_writable, read_state
from nasbench.files import atomic_torch_save, exclusive, new_run_dir, now_iso, write_json
from nasbench.progress import Logger, Progress
from nasbench.run.model import REFERENCES_DIR
from nasbench.run.result import SearchResult
from nasbench.searchers import SearchContext, get_searcher
from nasbench.seeding import rng_state, seed_everything, set_rng_state
from nasbench.spaces import Arch, get_space
from nasbench.train import retrain as retrain_network
from profilers.lut import LUT, LUTError


def resolve_lut(cfg, space, device, quiet: bool = False) -> tuple[LUT, Path]:
    """Returns the LUT to use and its path: ``cfg.lut``, else the per-user cached LUT of
    this device and deploy network (profiled first when absent). Raises UserError for a
    missing/corrupt LUT or one recorded for another device, space or network."""
    from nasbench.distributed import main_first
    from nasbench.luts import ensure_lut
    if cfg.lut:
        path = Path(cfg.lut).expanduser()
    else:
        with main_first():        # torchrun: rank 0 profiles, the others then read
            path = ensure_lut(device, space.deploy, quiet=quiet)
    try:
        lut = LUT.load(path)
        if lut.incomplete():
            raise UserError(f"LUT {path} is incomplete ({lut.incomplete()} entries have "
                            f"profiling rounds pending: its profile was interrupted); "
                            f"finish it with: {space.profile_command(cfg.device, path)}")
        lut.check_matches(device=device.device.to_dict(), deploy=space.describe())
    except LUTError as e:
        msg = str(e)
        if "another network" in msg:
            msg += f"; make one with: {space.profile_command(cfg.device)} --out FILE"
        raise UserError(msg) from None
    return lut, path


def resolve_tabular_lut(cfg, device) -> tuple[LUT, Path]:
    """Returns the LUT of a HW-NAS-Bench device: ``cfg.lut`` (one fitted to the same
    device) or the fitted LUT from the cache (fitted first when absent)."""
    if not cfg.lut:
        from nasbench.distributed import main_first
        with main_first():        # torchrun: rank 0 fits it, the others then read
            return device.lut()
    path = Path(cfg.lut).expanduser()
    try:
        lut = LUT.load(path)
    except LUTError as e:
        raise UserError(str(e)) from None
    if (lut.provenance.get("device") or {}).get("spec") != cfg.device:
        raise UserError(f"--lut {path} is not fitted to {cfg.device} (it is for "
                        f"{lut.device_name}); leave --lut out to use the fitted one")
    return lut, path


def load_run(resume, config=None):
    """Returns (config, run directory, checkpoint or None) of a run to resume: ``resume``
    is a run directory or its name under ``config.out``; raises UserError."""
    run_dir = Path(resume)
    if not run_dir.is_dir() and config is not None:
        run_dir = Path(config.out) / str(resume)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"--resume {resume}: not a run directory (no config.json)")
    try:
        d = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"--resume {resume}: unreadable config.json ({e})") from None
    cfg = get_searcher(str(d.get("method"))).config_class.from_dict(d)
    ckpt = None
    if (run_dir / "checkpoint.pt").is_file():
        ckpt = read_state(run_dir / "checkpoint.pt",
                          lambda p: torch.load(p, weights_only=False), "checkpoint",
                          "it cannot be resumed: start the run again (its config.json "
                          "holds the settings)")
    return cfg, run_dir, ckpt


def run_search(config=None, *, resume: str | Path | None = None, quiet: bool = False,
               lut: str | Path | None = None, expect_method: tuple[str, ...] | None = None,
               _interrupt_after_steps: int | None = None) -> SearchResult:
    """Runs the search of ``config`` (a registered searcher's config) and everything
    around it (see the module doc); returns the :class:`SearchResult` (status
    "interrupted" after Ctrl-C, with a checkpoint to ``resume`` from).

    ``resume`` is a run directory (or its name under ``config.out``); the run continues
    with its own saved config (``expect_method``: the methods a caller accepts).
    ``_interrupt_after_steps`` simulates Ctrl-C after that many steps (tests).

    Launched by torchrun, the ranks search data-parallel (:mod:`.distributed`); rank 0
    returns the result, the others (silent, writing nothing) return theirs with status
    "worker" after the search phase."""
    from nasbench import distributed
    with distributed.session():
        return _search(config, resume, quiet or not distributed.is_main(), lut,
                       expect_method, _interrupt_after_steps)


def _search(config, resume, quiet, lut, expect_method, _interrupt_after_steps
            ) -> SearchResult:
    """The body of :func:`run_search` (inside torchrun's process group, if any)."""
    from nasbench import distributed
    t_start = time.time()
    ckpt = None
    if resume is not None:
        cfg, run_dir, ckpt = load_run(resume, config)
        if expect_method and cfg.method not in expect_method:
            raise UserError(f"--resume {resume}: a {cfg.method} run, not a "
                            f"{' or '.join(expect_method)} one")
    else:
        if config is None:
            raise UserError("run_search needs a config or a run to resume")
        cfg = config.replace(lut=str(lut)) if lut is not None else config
        run_dir = None
    cfg.validate()
    if run_dir is None:                            # before any work: a writable --out
        ensure_writable(cfg.out, "--out", folder=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if distributed.is_distributed():
        distributed.check_searcher(get_searcher(cfg.method))
    # ---- everything that can fail on user input happens before the run dir exists ----
    st = build_context(cfg, quiet=quiet)
    searcher, ctx, space, deploy, data, device = (st.searcher, st.ctx, st.space, st.deploy,
                                                  st.data, st.device)
    lut_obj, lut_path, predictor, pending, cl = (st.lut, st.lut_path, st.predictor,
                                                 st.pending, st.channels_last)

    if distributed.is_distributed():
        pending.append(distributed.describe(cfg.batch_size))
    if run_dir is None:
        if distributed.is_main():                  # torchrun: rank 0 writes the run
            run_dir = new_run_dir(cfg.out, cfg.method)
        run_dir = Path(distributed.broadcast_object(str(run_dir)))
        cfg = cfg.replace(lut=str(lut_path))
        ctx.config = cfg
        if distributed.is_main():
            write_json(run_dir / "config.json", cfg.to_dict())
            write_json(run_dir / "lut.json", {"path": str(lut_path),
                                              "sha256": lut_obj.sha256(),
                                              "provenance": lut_obj.provenance})
    import contextlib

    # two writers of one run: the second fails (torchrun's other ranks write nothing)
    with (exclusive(run_dir, "run directory") if distributed.is_main()
          else contextlib.nullcontext()):
        searcher.bind(run_dir)
        return _run(cfg, run_dir, ckpt, searcher, ctx, space, deploy, data, device, lut_obj,
                    lut_path, predictor, pending, cl, quiet, t_start,
                    _interrupt_after_steps)


@dataclass
class RunSetup:
    """What :func:`build_context` resolves for a run: the searcher (set up) and its
    context, the space and deploy network, the data, the device, the LUT and its path,
    the predictor, setup's log lines (``pending``) and ``channels_last``."""

    searcher: Any
    ctx: SearchContext
    space: Any
    deploy: Any
    data: Any
    device: Any
    lut: LUT
    lut_path: Path
    predictor: Any
    pending: list[str]
    channels_last: bool


def build_context(cfg, *, quiet: bool = False) -> RunSetup:
    """Returns the :class:`RunSetup` of a validated config: the data, the space at its
    deploy network, the device (once), the LUT (profiled first when absent) and the
    predictor, the evaluator and the searcher, set up and seeded with ``cfg.seed``.
    Writes nothing; raises UserError on bad input (``nasbench worker`` builds the same
    context as the run it joins)."""
    from nasbench.data import load_dataset
    from nasbench.luts import DeviceHandle
    from nasbench.predict.predictor import Predictor
    searcher_cls = get_searcher(cfg.method)
    from nasbench.distributed import main_first
    with main_first():                             # torchrun: rank 0 downloads first
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.download, cfg.data_input_size)
    deploy = cfg.deploy(num_classes=data.num_classes, in_channels=data.in_channels)
    space = get_space(cfg.space)(deploy)
    from nasbench.benchmarks.tabular import TabularDevice, is_tabular
    if is_tabular(cfg.device):                     # HW-NAS-Bench: costs from its table
        device = TabularDevice(cfg.device, cfg.benchmark_dir)
        device.check_deploy(deploy)
        lut_obj, lut_path = resolve_tabular_lut(cfg, device)
    else:
        device = DeviceHandle.of(cfg.device)       # resolved once for the whole run
        lut_obj, lut_path = resolve_lut(cfg, space, device, quiet=quiet)
    metrics = list(dict.fromkeys(["latency", *cfg.cost_metrics]))
    predictor = Predictor.from_lut(space, lut_obj, metrics, cfg.device, lut_path)
    if is_tabular(cfg.device):                     # its measurement is a lookup
        predictor.exact = device.latency_of()
    if getattr(cfg, "memory_target_bytes", None) is not None:
        predictor.plan_memory = True               # candidates are filtered by it

    pending: list[str] = []                        # setup's lines, logged after the header
    cl = cfg.device == "cpu"                       # channels_last: faster convs on CPU
    seed_everything(cfg.seed)
    searcher = searcher_cls()
    ctx = SearchContext(config=cfg, space=space, predictor=predictor, data=data,
                        metrics=cfg.cost_metrics, target_ms=cfg.latency_target_ms,
                        log=pending.append, device=device, channels_last=cl)
    from nasbench.searchers.evaluate import make_evaluator
    ctx.evaluator = make_evaluator(cfg, ctx)
    searcher.setup(ctx)
    return RunSetup(searcher, ctx, space, deploy, data, device, lut_obj, lut_path,
                    predictor, pending, cl)


def _run(cfg, run_dir, ckpt, searcher, ctx, space, deploy, data, device, lut_obj, lut_path,
         predictor, pending, cl, quiet, t_start, _interrupt_after_steps):
    """The run proper, under the run directory's lock (see :func:`run_search`)."""
    from nasbench import distributed
    main = distributed.is_main()                # torchrun: only rank 0 writes
    log = Logger(run_dir / "search.log" if main else None, quiet)
    if ckpt is None:
        log(f"run {run_dir}: {cfg.headline()}, objective {cfg.objective}, "
            f"preset {cfg.preset}, dataset {cfg.dataset}")
        log("settings: " + ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items()))
    else:
        log(f"resuming {run_dir} at phase {ckpt['phase']}, epoch {ckpt['epoch']}")
    log(f"LUT {lut_path} (device {lut_obj.device_name}"
        + (", calibrated predictor" if predictor.calibration else "")
        + f"); deploy network {space.deploy_text()}, batch {deploy.batches[0]}")
    for line in pending:
        log(line)
    ctx.log = log

    history: list[dict] = []
    state = {"phase": "search", "epoch": 0, "train": None, "train_epoch": 0,
             "durations": {"search": 0.0, "train": 0.0},
             "wall": 0.0}                   # seconds spent by the run's earlier processes
    if ckpt is not None:
        searcher.load_state_dict(ckpt)
        history = ckpt["history"]
        state.update({k: ckpt[k] for k in state if k in ckpt})
        set_rng_state(ckpt["rng"])
    wall0 = state["wall"]                   # "total" counts every process of the run

    steps_done = [0]
    t_phase = [time.time()]
    retrain: dict = {}

    def interrupt_check():
        steps_done[0] += 1
        if _interrupt_after_steps is not None and steps_done[0] >= _interrupt_after_steps:
            raise KeyboardInterrupt

    def save_checkpoint(extra: dict | None = None):
        now = time.time()
        if state["phase"] in ("search", "train"):   # evaluate is timed apart, once
            state["durations"][state["phase"]] += now - t_phase[0]
        t_phase[0] = now
        state["wall"] = wall0 + (now - t_start)
        if not main:
            return
        own = {"history": history, "rng": rng_state(), "config": cfg.to_dict(), **state}
        mine = searcher.state_dict()
        clash = set(mine) & set(own)
        if clash:      # the searcher's state sits beside the runner's in one checkpoint
            raise RuntimeError(f"searcher state keys {sorted(clash)} clash with the runner's")
        atomic_torch_save({**mine, **own, **(extra or {})}, run_dir / "checkpoint.pt")

    result = SearchResult(run_dir=run_dir, method=cfg.method, status="interrupted",
                          config=cfg.to_dict(), headline=cfg.headline(), space=space.name,
                          deploy=space.describe() | {"batch": deploy.batches[0],
                                                     "text": space.deploy_text()},
                          lut={"path": str(lut_path), "sha256": lut_obj.sha256(),
                               "device": lut_obj.device_name},
                          dataset=data.describe(),
                          started=_dt.datetime.fromtimestamp(t_start).astimezone().isoformat(
                              timespec="seconds"))
    from profilers.build import lut_doubts
    result.warnings = lut_doubts(lut_obj)      # they travel with every figure of the run

    def interrupted() -> SearchResult:
        result.durations_s = dict(state["durations"])
        result.visited = searcher.visited()
        if main:
            write_json(run_dir / "result.json", result.to_dict())
        return result

    try:
        with Progress(quiet) as prog:
            # ---------------- search ----------------
            if state["phase"] == "search":
                total = searcher.epochs
                ep_task = prog.task("search epochs", total, state["epoch"])
                st_task = prog.task("steps", searcher.steps_per_epoch)

                def on_step(step: int, info: str = ""):
                    prog.update(st_task, completed=step, info=info)
                    interrupt_check()

                while state["epoch"] < total:
                    prog.reset(st_task, searcher.steps_per_epoch,
                               searcher.step,
                               description=f"epoch {state['epoch'] + 1}/{total}")
                    history.append(searcher.run_epoch(state["epoch"], on_step))
                    log(searcher.epoch_line(history[-1]))
                    state["epoch"] += 1
                    if distributed.is_distributed():     # raises if the ranks diverged
                        distributed.check_replicas(searcher.model)
                    if main:
                        write_json(run_dir / "history.json", history)
                    save_checkpoint()
                    prog.update(ep_task, completed=state["epoch"])
                state["phase"] = "derive"
                if distributed.is_distributed():
                    log(f"data-parallel search done: weights and architecture "
                        f"parameters bit-identical on all {distributed.world()} processes")
            if not main:             # torchrun: the rest of the run is rank 0's
                result.status = "worker"
                result.durations_s = dict(state["durations"])
                return result

            # ---------------- derive ----------------
            arch = _derive(searcher, predictor, cfg, result, log)
            result.epochs_done = len(history)
            write_json(run_dir / "genotype.json",
                       {"genotype": Arch.of(arch, space.name).to_dict(),
                        "derived": Arch.of(result.derived_genotype, space.name).to_dict(),
                        "method": cfg.method, "summary": space.summary(arch)})
            if state["phase"] == "derive":
                state["phase"] = "train"
                state["train_epoch"] = 0
                save_checkpoint()

            # ---------------- retrain ----------------
            net, test_q, tr_history = retrain_network(cfg, data, space, arch, cl, state, prog,
                                               retrain, interrupt_check, save_checkpoint, log)
            state["phase"] = "evaluate"
    except KeyboardInterrupt:
        if state["phase"] == "train" and retrain:
            # mid-epoch: keep the current weights and loader position; the epoch's
            # remaining batches run on resume
            state["train"] = {"model": retrain["net"].state_dict(),
                              "opt": retrain["opt"].state_dict(),
                              "loader": retrain["loader"].state_dict(),
                              "history": (state.get("train") or {}).get("history", []),
                              "mid_epoch": retrain["steps"] > 0}
        save_checkpoint()
        log(f"interrupted: checkpoint saved; continue with: nasbench search --resume {run_dir}")
        return interrupted()

    # ---------------- evaluate, predict, measure ----------------
    from nasbench.run.measure import count_complexity, measure_arch, measure_finalists
    from nasbench.train import evaluate
    t_eval = time.time()
    try:
        if cfg.train_epochs > 0:
            test = evaluate(net, test_q)
            result.test_acc, result.test_loss = test["acc"], test["loss"]
            result.test_n = test["n"]
            from nasbench.run.model import save_model
            save_model(run_dir, cfg, space, arch, net, data,
                       {"test_acc": test["acc"], "test_n": test["n"]})
            log(f"test accuracy {100 * test['acc']:.2f} % ({test['n']} images), "
                f"loss {test['loss']:.4f}")
        else:
            log("no retrain (train_epochs 0): no test accuracy")
        if cfg.benchmark_dir and space.name == "nb201":
            result.table = _table_values(cfg, arch)
            log(f"NAS-Bench-201 table: index {result.table['index']}, 12-epoch test "
                f"accuracy {result.table['test_acc']:.2f} % ({result.table['dataset']})")
        size = cfg.train_size()
        result.trained_network = {
            **({"channels": size["C"], "layers": size["num_cells"],
                "size": f"C={size['C']}, {size['num_cells']} cells, "} if size else
               {"size": ""}),
            "epochs": cfg.train_epochs, "steps": sum(h.get("steps", 0) for h in tr_history),
            "history": tr_history}
        deploy_net = space.build(arch)
        if not size:             # the retrained network is the deploy network: keep it
            deploy_net.load_state_dict(net.state_dict())
            deploy_net.eval()
        result.params, result.macs = count_complexity(deploy_net, deploy)
        if cfg.measure:
            result.measured = measure_arch(arch, deploy, device, log, lut_obj, net=deploy_net)
            result.warnings += drift_doubts(result.measured)
        if cfg.measure and getattr(cfg, "measure_top", 0):
            # multi-trial: the finalists' predicted latency against the device's
            ev = getattr(ctx, "evaluator", None)
            result.finalists = measure_finalists(
                searcher.visited(), cfg.measure_top, space, deploy, device, predictor, log,
                lut_obj, known={space.arch_id(arch): result.measured},
                signal=getattr(ev, "signal", ""),
                kind=getattr(ev, "accuracy_kind", "validation"))
        if cfg.reference_list:
            from nasbench.run.references import reference_candidates
            result.references = reference_candidates(
                cfg.reference_list, data, deploy, cfg.retrain_budget(), device,
                lut=lut_obj, measure=cfg.measure, log=log, quiet=quiet,
                keep_dir=run_dir / REFERENCES_DIR)
    except KeyboardInterrupt:
        # the last checkpoint (retrain done) stays; resuming redoes only this part
        log(f"interrupted: continue with: nasbench search --resume {run_dir}")
        return interrupted()
    state["durations"]["evaluate"] = time.time() - t_eval
    result.visited = searcher.visited()
    save_checkpoint({"phase": "done"})
    return complete_run(result, {**state["durations"], "total": wall0 + time.time() - t_start},
                        lut_path, log)


def _derive(searcher, predictor, cfg, result: SearchResult, log):
    """Returns the architecture to retrain: the searcher's, repaired by the predictor to
    a hard latency target; fills the result's architecture, expected cost, target and
    prediction."""
    out = searcher.result()
    derived = arch = out.arch
    expected = {}
    if out.logits is not None:
        with torch.no_grad():
            expected = {m: float(v) for m, v in
                        predictor.expected(out.logits, out.weights).items()}
    target = None
    lat = (out.cost or {}).get("latency")
    if cfg.latency_target_ms is not None and lat is not None:
        # the searcher filtered by its own cost (e.g. a tabular device's table): check
        # the target with it; there is nothing to repair
        t = cfg.latency_target_ms
        met = lat <= t
        msg = (f"the searcher's choice {'meets' if met else 'misses'} the target by its "
               f"cost: {lat:.3f} ms {'<=' if met else '>'} {t:.3f} ms")
        target = {"target_ms": t, "hard": cfg.hard_target, "derived_ms": lat,
                  "final_ms": lat, "met": met, "repaired": False, "swaps": [],
                  "lower_bound_ms": None, "message": msg, **out.extra}
        log(("hard target: " if cfg.hard_target else "target: ") + msg)
    elif cfg.latency_target_ms is not None:
        scores = out.scores()
        if scores is None:
            scores = torch.zeros_like(predictor.table.tables["latency"])
        rep = predictor.repair(derived, cfg.latency_target_ms, scores)
        hard = cfg.hard_target
        arch = rep.arch if hard else derived
        target = {"target_ms": cfg.latency_target_ms, "hard": hard,
                  "derived_ms": rep.before_ms,
                  "final_ms": rep.after_ms if hard else rep.before_ms,
                  "met": rep.met if hard else rep.before_ms <= cfg.latency_target_ms,
                  "repaired": bool(rep.swaps) and hard, "swaps": rep.swaps if hard else [],
                  "lower_bound_ms": rep.lower_bound_ms, "message": rep.message, **out.extra}
        log(("hard target: " if hard else "target: ") + rep.message)
    log(f"architecture: {predictor.space.summary(arch)}")
    result.genotype, result.derived_genotype = arch, derived
    result.expected, result.target = expected, target
    result.predicted = predictor.predict(arch)
    mt = getattr(cfg, "memory_target_bytes", None)
    if mt is not None:
        mem = result.predicted.get("memory_bytes")
        met = mem is not None and mem <= mt
        result.predicted["memory_target"] = {"target_bytes": mt, "met": met}
        log(f"memory target: the choice {'meets' if met else 'misses'} it by its buffer "
            f"plan: {(mem or float('nan')) / 2**20:.2f} MiB "
            f"{'<=' if met else '>'} {mt / 2**20:.2f} MiB")
    return arch


def _table_values(cfg, arch) -> dict:
    """Returns the NAS-Bench-201 table values of a cell (accuracies on the run's data
    set when the tables hold it, else CIFAR-10; HW-NAS-Bench's costs)."""
    from nasbench.benchmarks.nb201 import DATASETS, NB201Bench
    ds = cfg.dataset if cfg.dataset in DATASETS else "cifar10"
    return NB201Bench(cfg.benchmark_dir).lookup(arch, ds)


#: a measurement whose drift anchor ran this much slower (or faster) than at profile
#: time is flagged: the machine was not the one the LUT describes
DRIFT_WARN = 1.2


def drift_doubts(measured: dict) -> list[str]:
    """Returns a warning (a list of at most one line) when the drift anchor says the
    machine ran more than :data:`DRIFT_WARN` times slower or faster during the
    measurement than when the LUT was profiled."""
    raw = ((measured or {}).get("latency_ms") or {}).get("median")
    cor = (measured or {}).get("latency_corrected_ms")
    if not raw or not cor:
        return []
    r = raw / cor
    if 1 / DRIFT_WARN <= r <= DRIFT_WARN:
        return []
    return [f"the machine ran {max(r, 1 / r):.2f}x {'slower' if r > 1 else 'faster'} "
            f"than when the "
            f"LUT was profiled (drift anchor): compare predictions with the measured "
            f"latency in the LUT's time base ({cor:.3f} ms), not the raw {raw:.3f} ms"]


def complete_run(result: SearchResult, durations_s: dict, lut_path: Path, log
                 ) -> SearchResult:
    """Marks ``result`` complete, writes its result.json and the run's report.html (the
    run is complete without its report when the builder fails); returns ``result``."""
    result.status, result.finished = "complete", now_iso()
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
