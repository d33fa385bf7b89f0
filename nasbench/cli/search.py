"""``nasbench search``: latency/energy/memory-aware DARTS, PC-DARTS and ProxylessNAS."""

from __future__ import annotations

import json
import sys

import typer

from ..errors import UserError


def search(
    objective: str = typer.Option("acc+latency", help="acc, acc+latency, acc+energy, "
                                  "acc+memory or sums (acc+latency+energy)."),
    method: str = typer.Option("darts", help="A registered searcher: darts, pcdarts "
                               "(partial channels), proxyless (binary gates, MBConv "
                               "space), enas (an LSTM controller sampling single paths; "
                               "darts or nb201), or the multi-trial random, evolution, "
                               "tpe, nsga2, pnas (--evaluate table on nb201, train or "
                               "supernet on any space)."),
    space: str | None = typer.Option(None, help="darts (default for darts/pcdarts), "
                                     "nb201 (NAS-Bench-201's cell; darts/pcdarts) or "
                                     "proxyless (--method proxyless)."),
    order: str = typer.Option("first", help="first or second (unrolled) order alpha step."),
    preset: str = typer.Option("quick", help="quick (minutes on a CPU) or paper (the "
                               "DARTS / PC-DARTS / ProxylessNAS paper's settings)."),
    lut: str | None = typer.Option(None, help="LUT file (default: this device's cached "
                                      "LUT, profiled first when absent)."),
    device: str = typer.Option("cpu", "--device", "-d", help="Device the cost is for "
                               "(cpu, cuda[:N], rocm[:N], opencl[:P[:D]], rx580...; "
                               "hw-nas-bench:DEV with --space nb201)."),
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
    train_input: int | None = typer.Option(None, help="Input height = width the data are "
                                              "loaded and trained at (default: the deploy "
                                              "input; digits: 16)."),
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
    sync_bn: bool = typer.Option(False, help="torchrun (data-parallel darts, pcdarts, "
                                 "proxyless): BatchNorm statistics of the whole batch, "
                                 "as one process (exact; one all-reduce per layer), "
                                 "instead of each process's slice."),
    benchmark_dir: str | None = typer.Option(None, help="nb201: the folder of the "
                                                "NAS-Bench-201 / HW-NAS-Bench CSV files "
                                                "(the chosen cell's table values; needed "
                                                "by --device hw-nas-bench:DEV)."),
    out: str = typer.Option("runs", help="Folder that receives the run directory."),
    resume: str | None = typer.Option(None, help="Continue the run directory RUN from "
                                         "its last checkpoint."),
    references: str | None = typer.Option(None, help="Reference networks trained with the "
                                             "same budget and measured, for the report: "
                                             "comma-separated resnet20, mobilenetv2, "
                                             "darts_v2, pc_darts, or none (default: all "
                                             "four with --preset quick)."),
    trials: int | None = typer.Option(None, help="multi-trial: distinct architectures to "
                                         "evaluate (default 100)."),
    evaluate: str | None = typer.Option(None, help="multi-trial: the evaluator, table "
                                           "(NAS-Bench-201's accuracy; --space nb201 "
                                           "--benchmark-dir), supernet (SPOS: a "
                                           "single-path supernet trained on the data) "
                                           "or train (each candidate trained with the "
                                           "--train-epochs budget, scored on held-out "
                                           "training images; any space)."),
    fidelity: int | None = typer.Option(None, help="--evaluate table: the "
                                           "accuracy the search sees, 12 (default) or "
                                           "200 epochs (CIFAR-10)."),
    population: int | None = typer.Option(None, help="evolution, nsga2: population "
                                             "(default 50; nsga2 10)."),
    sample_size: int | None = typer.Option(None, help="evolution, nsga2: tournament "
                                              "size (default 10; nsga2 2)."),
    variation: str | None = typer.Option(None, help="nsga2: how children are made, "
                                            "mutate (the space's one-decision "
                                            "mutation; default) or optuna (Optuna's "
                                            "uniform crossover and resampling)."),
    measure_top: int | None = typer.Option(None, help="multi-trial: after the search, "
                                              "measure on the device up to K finalists "
                                              "(the Pareto set of the visited candidates "
                                              "by accuracy and predicted latency; "
                                              "default 5, 0: none)."),
    storage: str | None = typer.Option(None, help="multi-trial: the study's database, "
                                          "postgresql://USER@HOST/DB, mysql://... or "
                                          "sqlite:///PATH (default: the run's own "
                                          "study.db); `nasbench worker` processes on "
                                          "any machine join it."),
    beam: int | None = typer.Option(None, help="pnas: cells kept per stage, the beam K "
                                       "(default 8; paper 256)."),
    predictor_kind: str | None = typer.Option(None, help="pnas: the accuracy predictor, "
                                                 "ensemble (default), mlp or forest."),
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
    supernet_epochs: int | None = typer.Option(None, help="--evaluate supernet (SPOS): "
                                                  "epochs of single-path training "
                                                  "(default 3)."),
    supernet_steps: int | None = typer.Option(None, help="--evaluate supernet: cap on "
                                                 "steps per epoch (default 20)."),
    supernet_channels: int | None = typer.Option(None, help="--evaluate supernet: the "
                                                    "supernet's channels (default 8)."),
    supernet_layers: int | None = typer.Option(None, help="--evaluate supernet: its cells "
                                                  "(default: nb201 2 per stage, darts 5)."),
    supernet_lr: float | None = typer.Option(None, help="--evaluate supernet: SGD learning "
                                                "rate, cosine to 0 (default 0.05)."),
    controller_hidden: int | None = typer.Option(None, help="enas: the controller LSTM's "
                                                    "hidden size (default 100)."),
    controller_lr: float | None = typer.Option(None, help="enas: the controller's Adam "
                                                  "learning rate (quick 1e-2, paper "
                                                  "3.5e-4)."),
    controller_steps: int | None = typer.Option(None, help="enas: controller steps per "
                                                   "epoch, after the weight steps."),
    controller_aggregate: int | None = typer.Option(None, help="enas: sampled "
                                                       "architectures per controller step."),
    entropy_weight: float | None = typer.Option(None, help="enas: REINFORCE's entropy "
                                                   "bonus (default 1e-4)."),
    baseline_decay: float | None = typer.Option(None, help="enas: decay of the reward's "
                                                   "moving-average baseline (0.99)."),
    derive_samples: int | None = typer.Option(None, help="enas: architectures sampled from "
                                                 "the trained controller to pick from."),
):
    """Search an architecture for accuracy and device cost, retrain it, measure it."""
    from ..run.config import parse_latency
    from ..run.runner import run_search
    from ..searchers import get_searcher

    if resume is not None:
        result = run_search(_out_only(out), resume=resume, quiet=quiet or json_out)
        return _finish(result, json_out, quiet)
    cls = get_searcher(method).config_class
    common = dict(space=space, objective=objective, lut=lut, device=device,
                  latency_target_ms=parse_latency(latency_target),
                  hard_target=False if soft_target else None, input_size=input_size,
                  train_input_size=train_input,
                  deploy_batch=batch, dataset=dataset, data_dir=data_dir,
                  download=download or None, epochs=epochs, train_epochs=train_epochs,
                  batch_size=batch_size, seed=seed, threads=threads, out=out,
                  sync_bn=sync_bn or None,
                  references=references, benchmark_dir=benchmark_dir)
    if dataset is None and data_dir is not None:
        common["dataset"] = "cifar10"
    if steps_per_epoch is not None and steps_per_epoch < 0:
        raise UserError(f"--steps-per-epoch must be >= 0, got {steps_per_epoch}")
    if cost_weight is not None and cost_weight < 0:
        raise UserError(f"--cost-weight must be >= 0, got {cost_weight}")
    # the options of one method only: given to another, they are an error
    own = {"trials": {"--trials": ("trials", trials), "--evaluate": ("evaluate", evaluate),
                      "--fidelity": ("fidelity", fidelity),
                      "--population": ("population", population),
                      "--sample-size": ("sample_size", sample_size),
                      "--measure-top": ("measure_top", measure_top),
                      "--storage": ("storage", storage),
                      "--supernet-epochs": ("supernet_epochs", supernet_epochs),
                      "--supernet-steps": ("supernet_steps", supernet_steps),
                      "--supernet-channels": ("supernet_channels", supernet_channels),
                      "--supernet-layers": ("supernet_layers", supernet_layers),
                      "--supernet-lr": ("supernet_lr", supernet_lr)},
           "proxyless": {"--latency-loss": ("latency_loss", latency_loss),
                         "--grad-estimator": ("grad_estimator", grad_estimator),
                         "--space-config": ("space_config", space_config),
                         "--width-mult": ("width_mult", width_mult),
                         "--warmup-epochs": ("warmup_epochs", warmup_epochs)},
           "darts": {"--channels": ("channels", channels), "--layers": ("layers", layers),
                     "--eval-channels": ("eval_channels", eval_channels),
                     "--eval-layers": ("eval_layers", eval_layers),
                     "--order": ("order", order if order != "first" else None)}}
    own["enas"] = {**{k: v for k, v in own["darts"].items() if k != "--order"},
                   "--controller-hidden": ("controller_hidden", controller_hidden),
                   "--controller-lr": ("controller_lr", controller_lr),
                   "--controller-steps": ("controller_steps", controller_steps),
                   "--controller-aggregate": ("controller_aggregate", controller_aggregate),
                   "--entropy-weight": ("entropy_weight", entropy_weight),
                   "--baseline-decay": ("baseline_decay", baseline_decay),
                   "--derive-samples": ("derive_samples", derive_samples)}
    own["nsga2"] = {**own["trials"], "--variation": ("variation", variation)}
    own["pnas"] = {**own["trials"], "--beam": ("beam", beam),
                   "--predictor-kind": ("predictor_kind", predictor_kind)}
    from ..searchers import TrialConfig
    mine = ("pnas" if method == "pnas" else "nsga2" if method == "nsga2" else
            "trials" if issubclass(cls, TrialConfig) else
            "proxyless" if method == "proxyless" else
            "enas" if method == "enas" else "darts")
    for other in own:
        given = [k for k, (_, v) in own[other].items()
                 if v is not None and k not in own[mine]] if other != mine else []
        if given:
            what = {"darts": "describe the DARTS networks; --method proxyless searches the "
                             "deploy network itself (use --space-config and --width-mult)"
                             if mine == "proxyless" else "describe the DARTS / "
                             "NAS-Bench-201 supernets (--method darts or pcdarts)",
                    "proxyless": "apply to --method proxyless only",
                    "enas": "apply to --method enas only",
                    "pnas": "apply to --method pnas only",
                    "nsga2": "applies to --method nsga2 only",
                    "trials": "apply to the multi-trial methods (random, evolution, tpe, "
                              "nsga2, pnas)"}[other]
            raise UserError(f"{', '.join(given)} {what}")
    common.update({name: v for name, v in own[mine].values()})
    if mine in ("trials", "pnas", "nsga2"):
        if cost_weight is not None:
            raise UserError("--cost-weight applies to the one-shot methods; multi-trial "
                            "methods filter by --latency-target")
    elif mine == "proxyless":
        if cost_weight is not None:
            form = latency_loss or ("mul#log" if preset == "paper" else "add#linear")
            common["loss_beta" if form == "mul#log" else "loss_lambda"] = cost_weight
    elif mine == "enas":
        if cost_weight is not None:
            raise UserError("--cost-weight applies to darts, pcdarts and proxyless; enas's "
                            "reward is MnasNet's acc x (lat/target)^w: give "
                            "--latency-target (and --soft-target)")
    else:
        common["cost_weight"] = cost_weight
    cfg = cls.from_preset(preset, method, **common)
    if steps_per_epoch is not None:
        cfg = cfg.replace(steps_per_epoch=steps_per_epoch or None)
    return _finish(run_search(cfg, quiet=quiet or json_out), json_out, quiet)


def _out_only(out: str):
    """Returns a stand-in config carrying only ``out`` (where a run name is looked up)."""
    from types import SimpleNamespace
    return SimpleNamespace(out=out)


def _finish(result, json_out: bool, quiet: bool):
    """Prints the result (JSON or the summary); exits 130 when interrupted. A torchrun
    rank other than 0 (status "worker") prints nothing: rank 0 reports the run."""
    from ..run.result import summary_lines
    if result.status == "worker":
        return result
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
