"""``nasbench search``: latency/energy/memory-aware DARTS, PC-DARTS and ProxylessNAS."""

from __future__ import annotations

import json
import sys

import typer

from ..errors import UserError


def search(
    objective: str = typer.Option("acc+latency", help="acc, acc+latency, acc+energy, "
                                  "acc+memory or sums (acc+latency+energy)."),
    method: str = typer.Option("darts", help="darts, pcdarts (partial channels) or "
                               "proxyless (binary gates, MBConv space)."),
    order: str = typer.Option("first", help="first or second (unrolled) order alpha step."),
    preset: str = typer.Option("quick", help="quick (minutes on a CPU) or paper (the "
                               "DARTS / PC-DARTS / ProxylessNAS paper's settings)."),
    lut: str | None = typer.Option(None, help="LUT file (default: this device's cached "
                                      "LUT, profiled first when absent)."),
    device: str = typer.Option("cpu", "--device", "-d", help="Device the cost is for "
                               "(cpu, cuda[:N], rocm[:N], opencl[:P[:D]], rx580...)."),
    cost_weight: float | None = typer.Option(None, help="Weight of the normalised cost "
                                                "term (default 0.1; 1.0 with a target). "
                                                "proxyless: lambda of add#linear (0.1), "
                                                "beta of mul#log (0.3)."),
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
    references: str | None = typer.Option(None, help="Reference networks trained with the "
                                             "same budget and measured, for the report: "
                                             "comma-separated resnet20, mobilenetv2, "
                                             "darts_v2, pc_darts, or none (default: all "
                                             "four with --preset quick)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or log echo."),
    json_out: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
    latency_loss: str | None = typer.Option(None, help="proxyless: add#linear (CE + lambda "
                                               "(E[lat]-ref)/ref; quick's default) or "
                                               "mul#log (alpha x CE x (log E[lat] / log "
                                               "ref)^beta; paper's default). ref = "
                                               "--latency-target."),
    grad_estimator: str | None = typer.Option(None, help="proxyless: binary (two-path "
                                                 "binary gates, default) or reinforce."),
    space_config: str | None = typer.Option(None, help="proxyless: cifar (32x32, "
                                               "default) or imagenet (the paper's layout)."),
    width_mult: float | None = typer.Option(None, help="proxyless: width multiplier "
                                               "(default 1.0)."),
    warmup_epochs: int | None = typer.Option(None, help="proxyless: weight-only warm-up "
                                                "epochs before the search epochs."),
):
    """Search an architecture for accuracy and device cost, retrain it, measure it."""
    from ..runner import search_architecture, summary_lines
    from ..search.config import DARTSConfig, parse_latency

    proxyless_only = {"--latency-loss": latency_loss, "--grad-estimator": grad_estimator,
                      "--space-config": space_config, "--width-mult": width_mult,
                      "--warmup-epochs": warmup_epochs}
    if resume is not None and _run_method(resume, out) == "proxyless":
        method = "proxyless"
    if method == "proxyless":
        darts_only = {"--channels": channels, "--layers": layers,
                      "--eval-channels": eval_channels, "--eval-layers": eval_layers}
        given = [k for k, v in darts_only.items() if v is not None]
        if given:
            raise UserError(f"{', '.join(given)} describe the DARTS networks; --method "
                            f"proxyless searches the deploy network itself (use "
                            f"--space-config and --width-mult)")
        return _search_proxyless(
            resume=resume, quiet=quiet, json_out=json_out,
            overrides=dict(
                objective=objective, lut=lut, device=device,
                latency_target_ms=parse_latency(latency_target),
                hard_target=False if soft_target else None, input_size=input_size,
                deploy_batch=batch, dataset=dataset, data_dir=data_dir,
                download=download or None, epochs=epochs, train_epochs=train_epochs,
                batch_size=batch_size, seed=seed, threads=threads, out=out,
                latency_loss=latency_loss, grad_estimator=grad_estimator,
                space_config=space_config, width_mult=width_mult,
                warmup_epochs=warmup_epochs, references=references),
            preset=preset, cost_weight=cost_weight, steps_per_epoch=steps_per_epoch)
    given = [k for k, v in proxyless_only.items() if v is not None]
    if given:
        raise UserError(f"{', '.join(given)} apply to --method proxyless only")

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
            threads=threads, out=out, references=references)
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


def _run_method(resume: str, out: str) -> str | None:
    """Returns the method recorded in a run directory's config.json (None if unreadable)."""
    from pathlib import Path
    for d in (Path(resume), Path(out) / str(resume)):
        try:
            return json.loads((d / "config.json").read_text()).get("method")
        except (OSError, ValueError, AttributeError):
            continue
    return None


def _search_proxyless(*, resume, quiet, json_out, overrides: dict, preset: str,
                      cost_weight: float | None, steps_per_epoch: int | None):
    """Runs ``--method proxyless``; returns the SearchResult (exit 130 if interrupted)."""
    from ..proxyless_runner import proxyless_summary_lines, search_proxyless
    from ..search.proxyless_config import ProxylessConfig

    if resume is None:
        if overrides.get("dataset") is None and overrides.get("data_dir") is not None:
            overrides["dataset"] = "cifar10"
        if cost_weight is not None:
            if cost_weight < 0:
                raise UserError(f"--cost-weight must be >= 0, got {cost_weight}")
            form = overrides.get("latency_loss") or ("mul#log" if preset == "paper"
                                                     else "add#linear")
            overrides["loss_beta" if form == "mul#log" else "loss_lambda"] = cost_weight
        cfg = ProxylessConfig.from_preset(preset, **overrides)
        if steps_per_epoch is not None:
            if steps_per_epoch < 0:
                raise UserError(f"--steps-per-epoch must be >= 0, got {steps_per_epoch}")
            cfg = cfg.replace(steps_per_epoch=steps_per_epoch or None)
        result = search_proxyless(cfg, quiet=quiet or json_out)
    else:
        result = search_proxyless(None, resume=resume, quiet=quiet or json_out)
    if json_out:
        sys.stdout.write(json.dumps(result.to_dict(), default=str, indent=1) + "\n")
    elif not quiet:
        from ..progress import console
        console.rule("nasbench search")
        for line in proxyless_summary_lines(result):
            console.print(line, highlight=False, markup=False)
    if result.status == "interrupted":
        raise typer.Exit(130)
    return result
