"""The trained network a run keeps (``model.pt``), and its evaluation and export.

``model.pt`` is portable: a plain dict (no pickled classes) of the weights
(``state_dict``), the architecture (the space's JSON), the run config it is rebuilt
from (the runner's own ``space.build(arch, **config.train_build_options())``, one
source of truth), and the preprocessing it was trained with (data set, input size,
channels, normalisation mean/std, classes). :func:`load_model` rebuilds the module and
loads it with ``weights_only=True``.

Export: ONNX through torch's exporter (checked with ``onnx.checker`` and run in ONNX
Runtime) and TorchScript (traced, saved, reloaded); both are compared with the torch
network on random and, when given, real inputs, and carry the architecture and the
training provenance as metadata (ONNX ``metadata_props``, TorchScript extra file
``nasbench.json``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from nasbench.errors import UserError
from nasbench.files import atomic_torch_save

MODEL_FILE = "model.pt"
#: a run's trained reference networks, ``<name>.pt`` each, in the same form
REFERENCES_DIR = "references"
FORMAT = "nasbench-model"
FORMATS = ("onnx", "torchscript")


def preprocess_of(data) -> dict:
    """Returns how a network trained on ``data`` expects its input: data set, input
    size (pixels), channels, classes and the normalisation mean/std."""
    return {"dataset": data.name, "input_size": data.input_size,
            "in_channels": data.in_channels, "classes": data.num_classes,
            "mean": list(data.mean), "std": list(data.std)}


def save_model(run_dir: Path, cfg, space, arch, net, data, extra: dict | None = None
               ) -> Path:
    """Writes ``run_dir/model.pt`` atomically (see the module doc); returns its path."""
    meta = {"format": FORMAT, "version": 1, "space": space.name,
            "arch": space.arch_to_dict(arch), "config": cfg.to_dict(),
            "preprocess": preprocess_of(data), **(extra or {})}
    path = Path(run_dir) / MODEL_FILE
    atomic_torch_save({"meta": meta, "state_dict": {k: v.detach().cpu() for k, v in
                                                    net.state_dict().items()}}, path)
    return path


def load_model(run: str | Path):
    """Returns (network in eval mode, meta dict) of a run directory's kept network;
    raises UserError (one line) when there is none or it is unreadable."""
    from nasbench.searchers import get_searcher
    from nasbench.spaces import get_space
    path = Path(run)
    path = path / MODEL_FILE if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{run}: no kept network ({MODEL_FILE}; runs keep one since this "
                        f"release, after their retrain)")
    try:
        d = torch.load(path, weights_only=True)
        meta, state = d["meta"], d["state_dict"]
        if meta.get("format") != FORMAT:
            raise KeyError("format")
    except Exception as e:  # noqa: BLE001 - any damage: one line naming the file
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise UserError(f"{path} is not a readable nasbench model ({e.__class__.__name__}:"
                        f" {first}); run the search again or --resume it") from None
    pre = meta["preprocess"]
    if meta.get("kind") == "reference":
        from nasbench.zoo import REFERENCES, build_reference
        if meta.get("reference") not in REFERENCES:
            raise UserError(f"{path}: unknown reference network {meta.get('reference')!r}")
        net = build_reference(meta["reference"], size="train", num_classes=pre["classes"],
                              in_channels=pre["in_channels"],
                              input_size=pre["input_size"], **meta["build"])
        net.load_state_dict(state)
        return net.eval(), meta
    cfg = get_searcher(meta["config"]["method"]).config_class.from_dict(meta["config"])
    space = get_space(meta["space"])(cfg.deploy(num_classes=pre["classes"],
                                                in_channels=pre["in_channels"]))
    net = space.build(space.arch_from_dict(meta["arch"]), **cfg.train_build_options())
    net.load_state_dict(state)
    return net.eval(), meta


def example_input(meta: dict, batch: int = 1) -> torch.Tensor:
    """Returns a random normalised input of the kept network's shape."""
    p = meta["preprocess"]
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, p["in_channels"], p["input_size"], p["input_size"],
                       generator=g)


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


def max_rel_error(ref: torch.Tensor, got) -> float:
    """Returns max |got - ref| / max(|ref|) (0 for identical outputs)."""
    got = torch.as_tensor(got, dtype=ref.dtype)
    return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-12))


def export_model(net, meta: dict, fmt: str, out: Path, batch: int = 1,
                 dynamic_batch: bool = False, real: torch.Tensor | None = None) -> dict:
    """Exports the kept network to ``out`` (``fmt``: onnx or torchscript), checks the
    file by running it against torch on a random batch and on ``real`` inputs; returns
    ``{"path", "format", "max_rel_error": {"random", "real"}, ...}``."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    try:                              # before any work: the destination must be writable
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"")
    except OSError as e:
        raise UserError(f"--out {out}: not writable ({e.strerror or e})") from None
    x = example_input(meta, batch)
    info = json.dumps({k: meta[k] for k in ("space", "arch", "preprocess")} |
                      {k: meta.get(k) for k in ("config", "kind", "reference", "budget",
                                                "test_acc", "test_n") if k in meta},
                      default=str)
    checks = {"random": x}
    if real is not None:
        checks["real"] = real if dynamic_batch else real[:batch]
    with torch.no_grad():
        ref = {k: _logits(net(v)) for k, v in checks.items()}
    if fmt == "onnx":
        import onnx
        import onnxruntime as ort
        dyn = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # the TorchScript-based exporter's notice
            torch.onnx.export(net, (x,), str(tmp), input_names=["input"],
                              output_names=["logits"], dynamic_axes=dyn, dynamo=False)
        model = onnx.load(str(tmp))
        onnx.helper.set_model_props(model, {"nasbench": info,
                                            "nasbench.arch": json.dumps(meta["arch"])})
        onnx.save(model, str(tmp))
        onnx.checker.check_model(str(tmp))
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        errs = {k: max_rel_error(ref[k], sess.run(None, {"input": v.numpy()})[0])
                for k, v in checks.items() if dynamic_batch or v.shape[0] == batch}
    else:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)   # torch.jit's deprecation
            traced = torch.jit.trace(net, (x,), check_trace=False)
            torch.jit.save(traced, str(tmp), _extra_files={"nasbench.json": info})
            loaded = torch.jit.load(str(tmp))
            errs = {k: max_rel_error(ref[k], _logits(loaded(v))) for k, v in checks.items()}
    tmp.replace(out)
    return {"path": str(out), "format": fmt, "batch": "dynamic" if dynamic_batch else batch,
            "max_rel_error": errs, "bytes": out.stat().st_size}
