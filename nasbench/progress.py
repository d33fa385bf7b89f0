"""Progress bars (rich) with ETA, silent under --quiet."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def progress_bar(description: str, quiet: bool = False
                 ) -> Iterator[Callable[[int, int, str], None]]:
    """Yields a callback ``cb(done, total, current_label)`` that drives one progress bar
    with elapsed time and ETA (a no-op when ``quiet``)."""
    if quiet:
        yield lambda done, total, label="": None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  TextColumn("[dim]{task.fields[label]}"), console=console,
                  transient=False) as p:
        task = p.add_task(description, total=None, label="")

        def cb(done: int, total: int, label: str = "") -> None:
            p.update(task, completed=done, total=total, label=label)

        yield cb
