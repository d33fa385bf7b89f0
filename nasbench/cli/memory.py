"""``nasbench memory``: the buffer plan's predicted peak memory against the measured peak
of N sampled networks on a device (:mod:`nasbench.diagnostics.memory_check`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from nasbench.cli.app import JsonOut, Quiet, out
from nasbench.errors import ensure_writable


def _mib(b) -> str:
    return "n/a" if b is None else f"{b / 2**20:.2f}"


def memory(
    space: str = typer.Option("nb201", help="The search space whose networks are sampled "
                              "(its default deploy network)."),
    samples: int = typer.Option(20, help="Distinct valid networks planned and measured."),
    device: str = typer.Option("cpu", help="cpu, cuda[:i], rocm[:i] or an OpenCL device "
                               "(opencl:P:D, see nasbench devices)."),
    seed: int = typer.Option(0, help="Seed of the sample."),
    batch: int | None = typer.Option(None, "--batch", help="Deploy batch (default: the "
                                     "space's, 1)."),
    save: Path | None = typer.Option(None, "--out", help="Also write the JSON result "  # noqa: UP007
                                     "here."),
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Predicts each network's peak memory from its buffer schedule and measures it on
    the device: torch's allocator on CPU/GPU (the traced graph), the OpenCL executor's
    buffers on OpenCL. Prints each network and the within-10 % share, MAPE and Spearman
    of the whole network and of its activations alone."""
    from nasbench.diagnostics.memory_check import memory_check
    from nasbench.progress import progress_bar
    if save is not None:
        ensure_writable(save)
    with progress_bar(f"planning and measuring {samples} {space} networks on {device}",
                      quiet or json_out) as cb:
        res = memory_check(space, samples, device, seed, batch, progress=cb)
    if save is not None:
        from nasbench.files import write_json
        write_json(save, res)
    if json_out:
        print(json.dumps(res, indent=1))
        return
    t = Table(title=f"{res['space']} on {res['device']} (batch {res['batch']}): "
                    f"predicted (buffer plan, {res['model']}) vs measured ({res['method']}), "
                    "MiB")
    for c in ("network", "pred. peak", "meas. peak", "pred. act.", "meas. act.", "ratio"):
        t.add_column(c, justify="left" if c == "network" else "right")
    for r in res["networks"]:
        p, m = r["predicted"], r["measured"]
        t.add_row(r["arch"][:48], _mib(p["peak_bytes"]), _mib(m["peak_bytes"]),
                  _mib(p["activation_bytes"]), _mib(m["activation_bytes"]),
                  f"{p['activation_bytes'] / m['activation_bytes']:.3f}"
                  if m["activation_bytes"] else "n/a")
    out.print(t)
    for key, what in (("peak", "whole network"), ("activations", "activations")):
        s = res[key]
        out.print(f"{what}: {s['within_10pct']:.0%} within 10 % ({s['within_5pct']:.0%} "
                  f"within 5 %), MAPE {s['mape_pct']:.1f} %, bias {s['bias_pct']:+.1f} %, "
                  f"Spearman {s['spearman']:.3f} (n={s['n']})")
    if res.get("note"):
        out.print(f"note: {res['note']}")
