"""Atomic file writes (the project's one implementation) and the damaged-file warning.

A write goes to a temporary file in the destination's folder, is flushed and fsynced,
given the mode a plain ``open`` would give (0666 minus the umask, not mkstemp's 0600),
then renamed over the destination with ``os.replace``: a killed process leaves either
the old file or the new one, never half a file. On any failure the temporary file is
removed and the old file, if any, stays. Parent folders are created.

This module imports only the standard library (``kernels`` imports nothing of ours), so
every layer above may use it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_write_with",
    "warn_damaged",
]


def atomic_write_with(path: Path | str, writer: Callable[[IO[bytes]], Any]) -> None:
    """Calls ``writer(f)`` with a temporary file ``f`` opened in binary mode in
    ``path``'s folder, then renames it over ``path`` atomically (see the module doc).
    ``writer`` may stream into ``f`` (e.g. ``lambda f: torch.save(obj, f)``); its
    exceptions propagate after the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_write_with`)."""
    atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(path: Path | str, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically; raises TypeError for anything but
    a str before touching the file (the old file stays)."""
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text writes str, not {type(text).__name__}")
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path | str, obj: Any, **json_kwargs: Any) -> None:
    """Writes ``json.dumps(obj, **json_kwargs)`` (UTF-8, nothing appended) to ``path``
    atomically; a value json cannot serialise raises before the file is touched."""
    atomic_write_text(path, json.dumps(obj, **json_kwargs))


def _umask() -> int:
    """Returns the process's umask (read by setting and restoring it)."""
    m = os.umask(0o022)
    os.umask(m)
    return m


def warn_damaged(path: Path | str, what: str, action: str,
                 exc: BaseException | None = None) -> None:
    """Prints one warning line on stderr naming a damaged file whose loss only costs
    time (e.g. a tuning cache) and what happens instead (``action``, e.g. "it is tuned
    again"): ``warning: {what} {path} is damaged ({ExcClass}: {first line}); {action}``.
    Same wording as ``nasbench.errors.warn_damaged``."""
    why = f" ({exc.__class__.__name__}: {(str(exc).strip().splitlines() or [''])[0][:120]})" \
        if exc is not None else ""
    print(f"warning: {what} {path} is damaged{why}; {action}", file=sys.stderr)
