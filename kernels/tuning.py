"""Work-group (local) size tuning per kernel and shape, cached per device in JSON.

The cache file ``opencl-tuning-<device>.json`` lives in a directory the caller chooses
(next to the user's LUTs), so a second run on the same device reuses every choice and
launches no tuning runs at all. Without a directory the first candidate (a heuristic
default) is used and nothing is measured.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .files import atomic_write_json, warn_damaged
from .runtime import Runtime, event_ns

FORMAT_VERSION = 1


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120] or "device"


class Tuner:
    """Chooses local sizes. ``tuned`` counts measured choices, ``reused`` those read from
    the cache file; ``entries`` maps a key to the chosen local size (list) or None."""

    def __init__(self, runtime: Runtime, directory: Path | str | None = None,
                 repeats: int = 3):
        self.runtime = runtime
        self.repeats = repeats
        self.path = (Path(directory) / f"opencl-tuning-{_slug(runtime.device_key)}.json"
                     if directory is not None else None)
        self.entries: dict[str, list | None] = {}
        self.tuned = 0
        self.reused = 0
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("version") == FORMAT_VERSION and data.get("device") == \
                        runtime.device_key:
                    self.entries = dict(data.get("entries", {}))
            except (OSError, ValueError, AttributeError) as e:
                # a corrupt cache only costs a re-tune: say so, then rebuild it
                warn_damaged(self.path, "OpenCL tuning cache", "it is tuned again", e)
                self.entries = {}

    def local_size(self, key: str, kernel, global_size, candidates) -> tuple | None:
        """Returns the local size to launch ``kernel`` (arguments set) with for this
        ``key`` (kernel name, compile flags and shape): the cached choice, else the
        fastest of ``candidates`` by device time (each warmed up once, so PoCL's
        per-local-size compilation is not timed), else ``candidates[0]`` when the tuner
        has no directory. Tuning runs overwrite the kernel's output buffer."""
        if key in self.entries:
            self.reused += 1
            v = self.entries[key]
            return tuple(v) if v is not None else None
        cands = [c for c in candidates if self._fits(c)] or [None]
        if self.path is None or len(cands) == 1:
            return cands[0]
        best, best_ns = cands[0], None
        for c in cands:
            self.runtime.launch(kernel, global_size, c).wait()  # compile + warm
            ns = min(self._time(kernel, global_size, c) for _ in range(self.repeats))
            if best_ns is None or ns < best_ns:
                best, best_ns = c, ns
        self.entries[key] = list(best) if best is not None else None
        self.tuned += 1
        self.save()
        return best

    def _time(self, kernel, global_size, local) -> int:
        ev = self.runtime.launch(kernel, global_size, local)
        ev.wait()
        return event_ns(ev)

    def _fits(self, local) -> bool:
        if local is None:
            return True
        n = 1
        for v in local:
            n *= int(v)
        return n <= self.runtime.info["max_work_group_size"]

    def save(self) -> None:
        """Writes the cache file atomically (no-op without a directory)."""
        if self.path is None:
            return
        atomic_write_json(self.path, {"version": FORMAT_VERSION,
                                      "device": self.runtime.device_key,
                                      "entries": self.entries},
                          indent=1, sort_keys=True)
