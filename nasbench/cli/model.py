"""``nasbench eval RUN`` and ``nasbench export RUN``: the network a run kept."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nasbench.cli.app import JsonOut
from nasbench.errors import UserError
from nasbench.stats import accuracy_interval


def _loader(meta: dict, dataset: str | None, data_dir: str | None, split: str):
    """Returns (data set, loader of ``split``) preprocessed as the network was trained."""
    from nasbench.data import TensorLoader, load_dataset
    pre = meta["preprocess"]
    name = dataset or ("cifar10" if data_dir else pre["dataset"])
    data = load_dataset(name, data_dir, False, pre["input_size"])
    if data.num_classes != pre["classes"] or data.in_channels != pre["in_channels"]:
        raise UserError(f"{name} has {data.num_classes} classes and {data.in_channels} "
                        f"channels; the network was trained for {pre['classes']} and "
                        f"{pre['in_channels']}")
    if split not in ("test", "train"):
        raise UserError(f"--split must be test or train, got {split!r}")
    part = data.test if split == "test" else data.train
    # the training run's normalisation, not the new data's own statistics
    return data, TensorLoader(part, 256, mean=tuple(pre["mean"]), std=tuple(pre["std"]),
                              shuffle=False)


def eval_cmd(
    run: Path = typer.Argument(..., help="Run directory (or its model.pt, or a "
                               "reference's RUN/references/NAME.pt)."),
    dataset: str | None = typer.Option(None, help="digits, cifar10 or synthetic "
                                          "(default: the run's)."),
    data_dir: str | None = typer.Option(None, help="Folder with cifar-10-batches-py."),
    split: str = typer.Option("test", help="test or train."),
    json_out: JsonOut = False,
):
    """Evaluate the network a run kept on a data set: accuracy with its 95 % interval."""
    from nasbench.run.model import load_model
    from nasbench.train import evaluate
    net, meta = load_model(run)
    data, q = _loader(meta, dataset, data_dir, split)
    ev = evaluate(net, q)
    iv = accuracy_interval(ev["acc"], ev["n"], data.num_classes)
    res = {"run": str(run), "dataset": data.name, "split": split, "images": ev["n"],
           "accuracy_pct": 100 * ev["acc"], "ci_pct": iv["ci_pct"],
           "chance_pct": iv["chance_pct"], "at_chance": iv["at_chance"],
           "loss": ev["loss"], "arch": meta["arch"]}
    if json_out:
        print(json.dumps(res, indent=1))
        return
    lo, hi = iv["ci_pct"]
    typer.echo(f"{data.name} {split}: accuracy {res['accuracy_pct']:.2f} % (95 % CI "
               f"{lo:.1f}-{hi:.1f} %, {ev['n']} images), loss {ev['loss']:.4f}"
               + (" - not distinguishable from chance" if iv["at_chance"] else ""))


def export_cmd(
    run: Path = typer.Argument(..., help="Run directory (or its model.pt, or a "
                               "reference's RUN/references/NAME.pt)."),
    fmt: str = typer.Option(..., "--format", help="onnx or torchscript."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (default: "
                                       "RUN/model.onnx or RUN/model.ts)."),
    batch: int = typer.Option(1, help="Batch size of the exported graph."),
    dynamic_batch: bool = typer.Option(False, help="ONNX: a dynamic batch axis."),
    check_data: bool = typer.Option(True, help="Also compare on real images of the "
                                    "run's data set."),
    json_out: JsonOut = False,
):
    """Export the network a run kept to ONNX (checked, run in ONNX Runtime) or
    TorchScript (reloaded), compared with torch's output."""
    from nasbench.run.model import FORMATS, export_model, load_model
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if batch < 1:
        raise UserError(f"--batch must be positive, got {batch}")
    net, meta = load_model(run)
    suffix = ".onnx" if fmt == "onnx" else ".ts"
    # beside what was read: RUN/model.onnx, RUN/references/resnet20.onnx
    out = out or ((run / "model").with_suffix(suffix) if run.is_dir()
                  else run.with_suffix(suffix))
    real = None
    if check_data:
        try:
            _, q = _loader(meta, None, (meta.get("config") or meta).get("data_dir"),
                           "test")
            real = next(iter(q))[0][:max(batch, 8)]
        except UserError:
            real = None                   # the run's data are not here: random inputs
    res = export_model(net, meta, fmt, out, batch, dynamic_batch, real)
    if json_out:
        print(json.dumps(res, indent=1))
        return
    errs = ", ".join(f"{k} {v:.2e}" for k, v in res["max_rel_error"].items())
    typer.echo(f"wrote {res['path']} ({fmt}, batch {res['batch']}, {res['bytes']:,} bytes);"
               f" max relative error against torch: {errs}")
