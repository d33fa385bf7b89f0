"""Run-directory plumbing: fresh run directories, atomic JSON and checkpoint writes, RNG
states, the run's log and its progress bars."""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import random
import secrets
from pathlib import Path

import numpy as np
import torch

from profilers.lut import atomic_write_text, json_safe

from ..errors import UserError


def new_run_dir(out: str | Path, method: str) -> Path:
    """Returns a fresh run directory ``out/<YYYYmmdd-HHMMSS>-<method>-<6 hex>`` (created)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    d = Path(out) / f"{stamp}-{method}-{secrets.token_hex(3)}"
    d.mkdir(parents=True, exist_ok=False)
    return d


def write_json(path: Path, obj) -> None:
    """Writes ``obj`` as indented, strict JSON atomically (a non-finite number is
    written as null: NaN is not JSON)."""
    # round-trip through the default hook first so tensors / numpy values are sanitised
    plain = json.loads(json.dumps(obj, default=_json_default))
    atomic_write_text(path, json.dumps(json_safe(plain), indent=1, allow_nan=False) + "\n")


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
        from ..progress import console
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
        from ..progress import PlainProgress, console
        if not quiet and not console.is_terminal:    # a log file: plain lines
            self.p = PlainProgress()
            return
        if not quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            from ..progress import console
            self.p = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                                  TimeRemainingColumn(), TextColumn("[dim]{task.fields[info]}"),
                                  console=console, transient=True)

    def __enter__(self):
        if self.p and hasattr(self.p, "__enter__"):
            self.p.__enter__()
        return self

    def __exit__(self, *exc):
        if self.p and hasattr(self.p, "__exit__"):
            self.p.__exit__(*exc)

    def task(self, description: str, total: int, completed: int = 0):
        """Returns a task id (or None when quiet)."""
        if not self.p:
            return None
        if not hasattr(self.p, "add_task"):
            return self.p.add(description, total=total, completed=completed)
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


def now_iso() -> str:
    """Returns the local time as ISO 8601 with its offset, to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


@contextlib.contextmanager
def deferred_interrupt():
    """Runs the block with Ctrl-C and SIGTERM held: a signal that arrives inside is
    raised as KeyboardInterrupt when the block ends, so a step is done whole or not at
    all (a checkpoint never records half of it). Off the main thread it does nothing."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []

    def hold(signum, frame):
        got.append(signum)

    old = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if got:
        raise KeyboardInterrupt


@contextlib.contextmanager
def exclusive(path: Path, what: str):
    """Holds an exclusive lock on ``path`` for the block (filelock on a hidden file: a
    folder's ``.lock`` inside it, a file's ``.<name>.lock`` beside it, so listings of
    run folders stay clean); raises UserError (one line) at once when another process
    holds it."""
    from filelock import FileLock, Timeout
    path = Path(path)
    lock = FileLock(str(path / ".lock" if path.is_dir() else
                        path.parent / f".{path.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"{what} {path} is being written by another process (lock "
                        f"{lock.lock_file}); wait for it to finish or use another one") \
            from None
    try:
        yield
    finally:
        lock.release()
