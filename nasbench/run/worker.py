"""One more process on a multi-trial study (``nasbench worker``).

A worker joins the study of a run - given as the run directory (its own ``study.db``,
or the database of its ``--storage``) or as the study's name in ``--storage URL`` -
rebuilds the run's context from the config stored in the study (the same space,
device costs and evaluator as the run: :func:`~nasbench.run.runner.build_context`), and
runs the searcher's trial loop on the shared study until the budget is spent or its
``timeout`` passes. It writes nothing but trials: the run (``nasbench search``) writes
the history, checkpoint, result and report, all read from the study.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from nasbench.errors import UserError
from nasbench.progress import Logger, Progress
from nasbench.registry import searcher_config, searcher_kind
from nasbench.searchers.storage import (
    ATTR_CONFIG,
    default_url,
    load_study,
    open_storage,
    show_url,
)


def _trial_config(d: dict, where: str):
    """Returns the multi-trial config of a stored config dict; raises UserError when it
    is another kind of run."""
    method = str(d.get("method"))
    cls = searcher_config(method)
    if searcher_kind(method) != "multi-trial":
        raise UserError(f"{where} is a {d.get('method')} run, not a multi-trial one "
                        f"(random, evolution, tpe, nsga2): it has no study to join")
    return cls.from_dict(d)


def locate(target: str, storage: str | None) -> tuple[str, str]:
    """Returns (storage URL, study name) of ``target``: a run directory (its
    ``--storage``, else its ``study.db``; ``storage`` overrides) or a study name in
    ``storage``. Raises UserError for anything else."""
    run = Path(target).expanduser()
    if (run / "config.json").is_file():
        try:
            d = json.loads((run / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{run}: unreadable config.json ({e})") from None
        _trial_config(d, f"run {run}")
        return storage or d.get("storage") or default_url(run), run.resolve().name
    if run.is_dir():
        raise UserError(f"{run} is not a run directory (no config.json)")
    if not storage:
        raise UserError(f"{target} is neither a run directory nor, without --storage URL, "
                        f"a study that can be found")
    return storage, target


def run_worker(target: str, storage: str | None = None, timeout: float | None = None,
               quiet: bool = False) -> dict:
    """Joins the study of ``target`` (see :func:`locate`) and evaluates trials until
    the run's budget (``--trials``) is spent or ``timeout`` seconds have passed (the
    trial in flight finishes first). Returns ``{"study", "storage" (password hidden),
    "worker" (host:pid), "evaluated" (by this worker), "queries" (the study's),
    "trials" (the budget), "seconds"}``; raises UserError for bad input (an unreachable
    database, an unknown study, a run that is not multi-trial)."""
    from nasbench.run.runner import build_context
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout must be positive (seconds), got {timeout}")
    t0 = time.time()
    url, name = locate(target, storage)
    probe = open_storage(url)                  # the study's config, before anything else
    try:
        attrs = load_study(probe, name, url).user_attrs
    finally:
        probe.engine.dispose()
    if ATTR_CONFIG not in attrs:
        raise UserError(f"study {name} in {show_url(url)} is not a nasbench multi-trial "
                        f"study (it has no {ATTR_CONFIG} attribute)")
    cfg = _trial_config(attrs[ATTR_CONFIG], f"study {name}").replace(storage=url)
    log = Logger(None, quiet)
    if cfg.lut and not Path(cfg.lut).expanduser().is_file():
        log(f"the run's LUT {cfg.lut} is not on this machine: using this machine's own")
        cfg = cfg.replace(lut=None)
    cfg.validate()
    st = build_context(cfg, quiet=quiet)
    searcher = st.searcher
    seed = secrets.randbits(31)                # each worker proposes its own cells
    searcher.join(name, seed)
    for line in st.pending:
        log(line)
    searcher.ctx.log = log
    n = searcher.counts()
    log(f"worker {searcher.worker} on study {name} in {show_url(url)} (sampler seed "
        f"{seed}): {cfg.headline()}; {n['queries']}/{cfg.trials} evaluated so far")
    searcher.deadline = None if timeout is None else t0 + timeout
    per = cfg.trials_per_epoch
    with Progress(quiet) as prog:
        task = prog.task("trials", cfg.trials, n["queries"])
        epoch = min(n["queries"] // per, searcher.epochs - 1)
        while n["queries"] < cfg.trials:
            goal = min(cfg.trials, (epoch + 1) * per)

            def on_step(step: int, info: str = "", start=epoch * per):
                prog.update(task, completed=start + step, info=info)

            rec = searcher.run_epoch(epoch, on_step)
            log(searcher.epoch_line(rec))
            n = searcher.counts()
            if rec["queries"] < goal:          # the time limit, or the ask limit
                break
            epoch = min(epoch + 1, searcher.epochs - 1)
    mine = sum(v["worker"] == searcher.worker for v in searcher.visited())
    out = {"study": name, "storage": show_url(url), "worker": searcher.worker,
           "evaluated": mine, "queries": n["queries"], "trials": cfg.trials,
           "seconds": time.time() - t0}
    log(f"worker {searcher.worker}: evaluated {mine} of the study's "
        f"{n['queries']}/{cfg.trials} trials in {out['seconds']:.0f} s"
        + ("" if n["queries"] >= cfg.trials else " (stopped: time limit or ask limit)"))
    return out
