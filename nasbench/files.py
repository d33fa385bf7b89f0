"""Run-directory plumbing: fresh run directories, atomic JSON and checkpoint writes, locks,
and steps that a signal cannot cut in half."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import secrets
from pathlib import Path

import numpy as np
import torch

from kernels.files import atomic_write_text, atomic_write_with
from nasbench.errors import UserError
from profilers.lut import json_safe


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
    """Saves ``obj`` with torch.save into a temporary file beside ``path``, then renames
    it over ``path`` (:func:`kernels.files.atomic_write_with`)."""
    atomic_write_with(path, lambda f: torch.save(obj, f))


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
