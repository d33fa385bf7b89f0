"""The ``nasbench`` command line (typer + rich): the app (:mod:`.app`) with one module per
command group. ``search`` is built from the registries (:mod:`.search`): each method's
options are its declared settings. Bad input prints one line on stderr and exits 2.
"""

from __future__ import annotations

import sys

from nasbench.cli import lut as _lut  # noqa: F401 - registers lut show/diff/validate
from nasbench.cli import lut_fit as _lut_fit  # noqa: F401 - registers lut calibrate/study
from nasbench.cli import profile as _profile  # noqa: F401 - registers devices, profile
from nasbench.cli.app import app, err
from nasbench.cli.arch import arch as _arch
from nasbench.cli.bench import bench as _bench
from nasbench.cli.data import data_app as _data_app
from nasbench.cli.memory import memory as _memory
from nasbench.cli.model import eval_cmd as _eval
from nasbench.cli.model import export_cmd as _export
from nasbench.cli.proxy import proxy as _proxy
from nasbench.cli.report import report as _report
from nasbench.cli.search import SearchCommand
from nasbench.cli.surrogate import surrogate_app as _surrogate_app
from nasbench.cli.validation import harden
from nasbench.cli.worker import worker as _worker
from nasbench.errors import UserError
from nasbench.options import check_environment

app.command("report")(_report)
app.command("arch")(_arch)
app.command("bench")(_bench)
app.command("eval")(_eval)
app.command("export")(_export)
app.command("proxy")(_proxy)
app.command("memory")(_memory)
app.command("worker")(_worker)
app.add_typer(_surrogate_app, name="surrogate")
app.add_typer(_surrogate_app, name="predictor", hidden=True)   # the old name, kept
app.add_typer(_data_app, name="data")


def command():
    """Returns the click group of every command (typer's, plus ``search`` built from the
    registries), with every option validated by one mechanism (:mod:`.validation`)."""
    import typer.main
    group = typer.main.get_command(app)
    group.add_command(SearchCommand("search"), "search")
    harden(group)
    return group


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (2 and one line for bad input)."""
    import signal

    def _terminate(signum, frame):
        # SIGTERM (kill, systemd, Slurm, Kubernetes) is handled as Ctrl-C: the runner
        # and the profiler checkpoint before they exit
        raise KeyboardInterrupt

    try:
        old_term = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:                              # not the main thread (tests)
        old_term = None
    try:
        check_environment()
        rc = command().main(args=argv, standalone_mode=False, prog_name="nasbench")
        return rc if isinstance(rc, int) else 0
    except UserError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as e:
        return _exit_status(e)
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _exit_status(e: Exception) -> int:
    """Returns the exit status of an exception that is not ours: profilers' and the
    OpenCL executor's errors (one line, 2), click's usage errors and exits; re-raises
    anything else (a bug: its traceback is wanted). Matched by name: importing
    profilers.devices would load torch, kernels.plan pyopencl, and click's exceptions
    moved between releases."""
    name = type(e).__name__
    if name in ("LUTError", "DeviceError"):
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    if name == "UnsupportedLayerError":      # a device limit, not a crash
        err.print(f"[bold red]error:[/] the OpenCL executor cannot run this network: {e}",
                  highlight=False, soft_wrap=True)
        return 2
    if name == "NoArgsIsHelpError":
        return 0
    if name == "Exit":
        return int(getattr(e, "exit_code", 0))
    if name == "Abort":
        err.print("aborted")
        return 130
    if hasattr(e, "format_message") and hasattr(e, "exit_code"):
        err.print(f"[bold red]error:[/] {e.format_message()}", highlight=False,
                  soft_wrap=True)
        return 2
    raise e


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
