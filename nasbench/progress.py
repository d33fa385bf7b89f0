"""Progress bars (rich) with ETA, silent under --quiet; off a terminal (CI logs, nohup,
a pipe), a plain line every :data:`INTERVAL_S` seconds instead (env
``NASBENCH_PROGRESS_S``), so a long job is never silent."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)
#: seconds between two plain progress lines off a terminal
INTERVAL_S = 30.0


class PlainProgress:
    """Progress as plain lines (``description: done/total (pct), elapsed, ETA; info``),
    at most one per task every ``interval`` seconds and one at completion: what a log
    file needs where a progress bar cannot be drawn."""

    def __init__(self, interval: float | None = None):
        self.interval = float(os.environ.get("NASBENCH_PROGRESS_S", INTERVAL_S)) \
            if interval is None else interval
        self.tasks: dict[int, dict] = {}

    def add(self, description: str, total: int | None = None, completed: int = 0) -> int:
        """Returns the id of a new task."""
        tid = len(self.tasks)
        self.tasks[tid] = {"d": description, "total": total, "done": completed,
                           "t0": time.time(), "last": time.time(), "info": ""}
        return tid

    def update(self, tid: int, completed: int | None = None, total: int | None = None,
               info: str | None = None, **_) -> None:
        """Updates a task and prints its line when due (or when it completes)."""
        t = self.tasks.get(tid)
        if t is None:
            return
        if completed is not None:
            t["done"] = completed
        if total is not None:
            t["total"] = total
        if info is not None:
            t["info"] = info
        now = time.time()
        finished = t["total"] and t["done"] >= t["total"]
        if now - t["last"] < self.interval and not finished:
            return
        if finished and t.get("said_done"):
            return
        t["last"], t["said_done"] = now, bool(finished)
        console.print(self.line(t, now), highlight=False, markup=False, soft_wrap=True)

    def reset(self, tid: int, total: int, completed: int = 0,
              description: str | None = None) -> None:
        """Restarts a task for a new pass (its clock too)."""
        t = self.tasks.get(tid)
        if t is not None:
            t.update(total=total, done=completed, t0=time.time(), last=time.time(),
                     said_done=False, d=description or t["d"])

    @staticmethod
    def line(t: dict, now: float) -> str:
        """Returns a task's progress line."""
        el = now - t["t0"]
        total, done = t["total"], t["done"]
        out = f"{t['d']}: {done}/{total or '?'}"
        if total:
            out += f" ({100 * done / total:.0f} %)"
        out += f", {el:.0f} s elapsed"
        if total and 0 < done < total:
            out += f", ETA {el / done * (total - done):.0f} s"
        return out + (f"; {t['info']}" if t["info"] else "")


@contextlib.contextmanager
def progress_bar(description: str, quiet: bool = False
                 ) -> Iterator[Callable[[int, int, str], None]]:
    """Yields a callback ``cb(done, total, current_label)`` that drives one progress bar
    with elapsed time and ETA (a no-op when ``quiet``)."""
    if quiet:
        yield lambda done, total, label="": None
        return
    if not console.is_terminal:
        plain = PlainProgress()
        tid = plain.add(description)
        yield lambda done, total, label="": plain.update(tid, completed=done, total=total,
                                                         info=label)
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  TextColumn("[dim]{task.fields[label]}"), console=console,
                  transient=False) as p:
        task = p.add_task(description, total=None, label="")

        def cb(done: int, total: int, label: str = "") -> None:
            p.update(task, completed=done, total=total, label=label)

        yield cb
