"""Progress bars (rich) with ETA, silent under --quiet; off a terminal (CI logs, nohup,
a pipe), a plain line every :data:`INTERVAL_S` seconds instead (env
``NASBENCH_PROGRESS_S``), so a long job is never silent."""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from nasbench.options import env

console = Console(stderr=True)
#: seconds between two plain progress lines off a terminal
INTERVAL_S = 30.0


def _columns(field: str) -> tuple:
    """Returns the rich columns of every progress bar: description, bar, done/total,
    elapsed, ETA and the task's ``field`` (a short status such as the loss)."""
    return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("[dim]{task.fields[" + field + "]}"))


class PlainProgress:
    """Progress as plain lines (``description: done/total (pct), elapsed, ETA; info``),
    at most one per task every ``interval`` seconds and one at completion: what a log
    file needs where a progress bar cannot be drawn."""

    def __init__(self, interval: float | None = None):
        self.interval = env("NASBENCH_PROGRESS_S", INTERVAL_S) if interval is None \
            else interval
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


class Progress:
    """Progress of several tasks (e.g. epochs and steps): rich bars with ETA on a
    terminal, plain lines off one (:class:`PlainProgress`), nothing when quiet. The one
    progress mechanism: :func:`progress_bar` is a single task of it."""

    def __init__(self, quiet: bool, transient: bool = True):
        self.p = None
        if quiet:
            return
        if not console.is_terminal:    # a log file: plain lines
            self.p = PlainProgress()
            return
        self.p = RichProgress(*_columns("info"), console=console, transient=transient)

    def __enter__(self):
        if self.p and hasattr(self.p, "__enter__"):
            self.p.__enter__()
        return self

    def __exit__(self, *exc):
        if self.p and hasattr(self.p, "__exit__"):
            self.p.__exit__(*exc)

    def task(self, description: str, total: int | None, completed: int = 0):
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


@contextlib.contextmanager
def progress_bar(description: str, quiet: bool = False
                 ) -> Iterator[Callable[[int, int, str], None]]:
    """Yields a callback ``cb(done, total, current_label)`` that drives one progress bar
    with elapsed time and ETA (a no-op when ``quiet``)."""
    with Progress(quiet, transient=False) as prog:
        task = prog.task(description, None)

        def cb(done: int, total: int, label: str = "") -> None:
            prog.update(task, completed=done, total=total, info=label)

        yield cb


class Logger:
    """Appends timestamped lines to the run's log; echoes them unless quiet."""

    def __init__(self, path: Path | None, quiet: bool = False):
        self.path, self.quiet = path, quiet
        self.console = console

    def __call__(self, msg: str) -> None:
        line = f"{_dt.datetime.now().isoformat(timespec='seconds')} {msg}"
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        if not self.quiet:
            self.console.print(msg, highlight=False, markup=False)
