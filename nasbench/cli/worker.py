"""``nasbench worker``: one more process evaluating trials of a multi-trial study."""

from __future__ import annotations

import json
import sys

import typer

from nasbench.cli.app import JsonOut, Quiet


def worker(
    target: str = typer.Argument(..., metavar="RUN_OR_STUDY",
                                 help="A multi-trial run directory (its study: the run's "
                                      "study.db, or its --storage database) or the name "
                                      "of a study in --storage (the run directory's "
                                      "name)."),
    storage: str | None = typer.Option(None, help="The study's database: "
                                          "postgresql://USER@HOST/DB, mysql://... or "
                                          "sqlite:///PATH (default: the run's)."),
    timeout: float | None = typer.Option(None, help="Stop after this many seconds (the "
                                            "trial in flight finishes first)."),
    quiet: Quiet = False,
    json_out: JsonOut = False,
):
    """Join a multi-trial search (random, evolution, tpe, nsga2) and evaluate its trials
    until the run's budget is spent; start any number, on any machine that reaches the
    study's database. The run's `nasbench search` reads every worker's trials."""
    from nasbench.run.worker import run_worker
    out = run_worker(target, storage, timeout, quiet=quiet or json_out)
    if json_out:
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return out
