"""``nasbench search``: latency/energy/memory-aware DARTS and PC-DARTS."""

from __future__ import annotations

import json
import sys

import typer

from ..errors import UserError


def search(
    objective: str = typer.Option("acc+latency", help="acc, acc+latency, acc+energy, "
                                  "acc+memory or sums (acc+latency+energy)."),
    method: str = typer.Option("darts", help="darts or pcdarts (partial channels)."),
    order: str = typer.Option("first", help="first or second (unrolled) order alpha step."),
    preset: str = typer.Option("quick", help="quick (minutes on a CPU) or paper (the "
                               "DARTS / PC-DARTS paper's settings)."),
    lut: str | None = typer.Option(None, help="LUT file (default: this device's cached "
                                      "LUT, profiled first when absent)."),
    device: str = typer.Option("cpu", "--device", "-d", help="Device the cost is for "
                               "(cpu, cuda[:N], rocm[:N], opencl[:P[:D]], rx580...)."),
    cost_weight: float | None = typer.Option(None, help="Weight of the normalised cost "
                                                "term (default 0.1; 1.0 with a target)."),
    latency_target: str | None = typer.Option(None, help="Hard latency target for the "
                                                 "deploy network: 4ms, 4 (ms) or 0.004s."),
    soft_target: bool = typer.Option(False, help="Only penalise the excess; do not repair "
                                     "a derived network that misses the target."),
    eval_channels: int | None = typer.Option(None, help="Deploy network: initial "
                                                "channels (default 36)."),
    eval_layers: int | None = typer.Option(None, help="Deploy network: cells "
                                              "(default 20)."),
    input_size: int | None = typer.Option(None, "--input", help="Input height = width "
                                             "of data and deploy network (default 32)."),
    batch: int | None = typer.Option(None, help="Deploy batch size the cost is for "
                                        "(default 1)."),
    dataset: str | None = typer.Option(None, help="cifar10, digits (default; offline; "
                                          "cifar10 with --data-dir or --preset paper) or "
                                          "synthetic."),
    data_dir: str | None = typer.Option(None, help="Folder with cifar-10-batches-py "
                                           "(or that folder itself)."),
    download: bool = typer.Option(False, help="Download CIFAR-10 if the folder has none."),
    epochs: int | None = typer.Option(None, help="Search epochs."),
    steps_per_epoch: int | None = typer.Option(None, help="Cap on search steps per "
                                                  "epoch (0: whole split)."),
    train_epochs: int | None = typer.Option(None, help="Retrain epochs of the derived "
                                               "network (0: none)."),
    batch_size: int | None = typer.Option(None, help="Search batch size."),
    channels: int | None = typer.Option(None, help="Search network initial channels."),
    layers: int | None = typer.Option(None, help="Search network cells."),
    seed: int | None = typer.Option(None, help="Random seed (default 2)."),
    threads: int | None = typer.Option(None, help="torch threads (default: torch's)."),
    out: str = typer.Option("runs", help="Folder that receives the run directory."),
    resume: str | None = typer.Option(None, help="Continue the run directory RUN from "
                                         "its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or log echo."),
    json_out: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
):
    """Search an architecture for accuracy and device cost, retrain it, measure it."""
    from ..runner import search_architecture, summary_lines
    from ..search.config import DARTSConfig, parse_latency

    if resume is None:
        spe = steps_per_epoch
        overrides = dict(
            objective=objective, order=order, lut=lut, device=device,
            cost_weight=cost_weight, latency_target_ms=parse_latency(latency_target),
            hard_target=False if soft_target else None,
            eval_channels=eval_channels, eval_layers=eval_layers, input_size=input_size,
            deploy_batch=batch, dataset=dataset, data_dir=data_dir,
            download=download or None, epochs=epochs, train_epochs=train_epochs,
            batch_size=batch_size, channels=channels, layers=layers, seed=seed,
            threads=threads, out=out)
        if dataset is None and data_dir is not None:
            overrides["dataset"] = "cifar10"
        cfg = DARTSConfig.from_preset(preset, method, **overrides)
        if spe is not None:
            if spe < 0:
                raise UserError(f"--steps-per-epoch must be >= 0, got {spe}")
            cfg = cfg.replace(steps_per_epoch=spe or None)
        result = search_architecture(cfg, quiet=quiet or json_out)
    else:
        result = search_architecture(None, resume=resume, quiet=quiet or json_out)

    if json_out:
        sys.stdout.write(json.dumps(result.to_dict(), default=str, indent=1) + "\n")
    elif not quiet:
        from ..progress import console
        console.rule("nasbench search")
        for line in summary_lines(result):
            console.print(line, highlight=False, markup=False)
    if result.status == "interrupted":
        raise typer.Exit(130)
    return result
