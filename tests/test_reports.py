"""Tests for the HTML report: rendering from a small realistic run directory.

``write_run``, ``write_lut`` and ``write_validation`` build synthetic-but-realistic
inputs (the shapes ``nasbench search`` / ``nasbench profile`` write); the browser test
and the report benchmark reuse them.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from reports import ReportError, build_report, load_run

DARTS_OPS = [
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
]  # fmt: skip
PROXYLESS_OPS = ["mb3_e3", "mb3_e6", "mb5_e3", "mb5_e6", "mb7_e3", "mb7_e6", "zero"]
REFERENCES = [  # name, params, macs, accuracy offset, latency factor
    ("ResNet-20", 272_474, 40_810_000, 1.5, 0.55),
    ("MobileNetV2-CIFAR", 2_236_682, 94_000_000, 2.5, 1.2),
    ("DARTS_V2", 3_349_342, 528_000_000, 4.0, 2.1),
    ("PC-DARTS", 3_632_410, 557_000_000, 4.2, 2.2),
]


def _cell(rng) -> list[list]:
    out = []
    for node in range(4):
        for src in rng.choice(node + 2, size=2, replace=False):
            out.append([str(rng.choice(DARTS_OPS[1:])), int(src)])
    return out


def _summary(genotype: dict) -> str:
    if "blocks" in genotype:
        return " > ".join(genotype["blocks"])
    parts = []
    for cell in ("normal", "reduce"):
        ops = [op for op, _ in genotype[cell]]
        counts = {o: ops.count(o) for o in dict.fromkeys(ops)}
        parts.append(f"{cell}: " + ", ".join(f"{n}x {o}" for o, n in counts.items()))
    return " | ".join(parts)


def _genotype(rng, space: str) -> dict:
    if space == "proxyless":
        return {"blocks": [str(rng.choice(PROXYLESS_OPS)) for _ in range(12)]}
    return {"normal": _cell(rng), "normal_concat": [2, 3, 4, 5],
            "reduce": _cell(rng), "reduce_concat": [2, 3, 4, 5]}  # fmt: skip


def _candidate(rng, name, role, space, acc, lat, kind, epochs, energy=True) -> dict:
    g = _genotype(rng, space)
    params = int(rng.uniform(0.3e6, 3.5e6))
    return {
        "name": name, "role": role, "space": space, "genotype": g,
        "genotype_summary": _summary(g), "accuracy": acc, "accuracy_kind": kind,
        "params": params, "macs": int(params * rng.uniform(80, 160)),
        "latency_ms": {
            "measured": {"median": lat, "p5": lat * 0.97, "p95": lat * 1.06,
                         "cv": float(rng.uniform(0.005, 0.05))},
            "predicted": lat * float(rng.normal(1.0, 0.07)),
        },
        "energy_j": ({"measured": lat * 0.011, "predicted": lat * 0.0105, "reason": None}
                     if energy else
                     {"measured": None, "predicted": None,
                      "reason": "no energy sensor on this device"}),
        "memory_bytes": {"measured": params * 4.4 + 3e6, "predicted": params * 4.2 + 3e6},
        "train_epochs": epochs,
    }  # fmt: skip


def write_run(
    root: Path,
    run_id: str = "20261122-darts-ab12cd",
    method: str = "darts",
    n_points: int = 24,
    epochs: int = 6,
    seed: int = 0,
    space: str = "darts",
    target_ms: float | None = 4.0,
    references: bool = True,
    energy: bool = True,
) -> Path:
    """Write a realistic run directory under ``root``; return its path."""
    rng = np.random.default_rng(seed)
    d = root / run_id
    d.mkdir(parents=True, exist_ok=True)
    cands = []
    base_acc = 38 + 4 * rng.random()
    for i in range(n_points):
        lat = float(rng.uniform(2.0, 12.0))
        acc = float(base_acc + 9 * np.log(lat / 2) / np.log(6) + rng.normal(0, 2.5))
        trained = i % 6 == 0
        if i == 0:
            acc += 0  # first point: the derived one
        cands.append(_candidate(
            rng, "derived" if i == 0 else f"arch-{i:04d}", "derived" if i == 0 else "visited",
            space, round(acc, 2) if (trained or i % 3) else None, round(lat, 3),
            "test" if trained else "supernet-val", epochs if trained else 0, energy,
        ))  # fmt: skip
    if references:
        for name, params, macs, off, fac in REFERENCES:
            c = _candidate(rng, name, "reference", "darts", round(base_acc + off, 2),
                           round(4.5 * fac, 3), "test", epochs, energy)
            c["params"], c["macs"] = params, macs
            c["genotype_summary"] = f"{name} (reference network, same short training budget)"
            cands.append(c)
    ops = PROXYLESS_OPS if space == "proxyless" else DARTS_OPS
    history = []
    logits = rng.normal(0, 0.1, size=(2, 14, len(ops))) if space == "darts" else \
        rng.normal(0, 0.1, size=(1, 12, len(ops)))
    drift = rng.normal(0, 0.5, size=logits.shape)
    for e in range(epochs):
        lg = logits + drift * e
        p = np.exp(lg) / np.exp(lg).sum(-1, keepdims=True)
        alphas = ({"normal": p[0].round(5).tolist(), "reduce": p[1].round(5).tolist()}
                  if space == "darts" else {"blocks": p[0].round(5).tolist()})
        history.append({
            "epoch": e, "train_loss": 2.2 - 0.2 * e + rng.normal(0, 0.02),
            "train_acc": 20 + 5 * e + rng.normal(0, 1),
            "val_loss": 2.25 - 0.17 * e + rng.normal(0, 0.03),
            "val_acc": 18 + 4.5 * e + rng.normal(0, 1.0),
            "expected_cost": {"latency": (target_ms or 6.0) * (1.0 + 1.2 * np.exp(-0.6 * e))},
            "lr": 0.025 * (1 - e / epochs), "time_s": 20.0 + rng.random(), "alphas": alphas,
            "ops": ops,
        })  # fmt: skip
    derived = cands[0]
    derived["accuracy"], derived["accuracy_kind"] = round(base_acc + 3.0, 2), "test"
    target = None
    if target_ms is not None:
        lat = derived["latency_ms"]["measured"]["median"]
        target = {"metric": "latency", "value": target_ms, "unit": "ms", "met": lat <= target_ms}
    config = {"method": method, "objective": "acc+latency", "preset": "quick", "seed": seed,
              "command": f"nasbench search --method {method} --objective acc+latency "
                         f"--preset quick --lut luts/cpu-darts.json"}  # fmt: skip
    result = {
        "schema": 1, "run_id": run_id, "method": method, "objective": "acc+latency",
        "dataset": "cifar10", "started": "2026-11-22T10:00:00+00:00",
        "finished": "2026-11-22T10:03:05+00:00",
        "durations_s": {"search": 120.3, "train": 60.1, "measure": 5.2},
        "device": {"name": "AMD Ryzen 7 5800X (cpu)", "backend": "torch-cpu",
                   "driver": "n/a", "threads": 2},
        "lut": {"path": "luts/cpu-darts.json", "sha256": "ab" * 32,
                "provenance": {"device": {"name": "AMD Ryzen 7 5800X"}, "backend": "torch-cpu"}},
        "versions": {"torch": "2.5.1", "nasbench": "0.1.0", "python": "3.11.9"},
        "target": target, "candidates": cands,
    }  # fmt: skip
    (d / "config.json").write_text(json.dumps(config, indent=2))
    (d / "result.json").write_text(json.dumps(result))
    (d / "history.json").write_text(json.dumps(history))
    (d / "genotype.json").write_text(json.dumps(derived["genotype"]))
    return d


def write_lut(path: Path, seed: int = 0) -> Path:
    """Write a small realistic LUT JSON; return its path."""
    rng = np.random.default_rng(seed)
    entries = {}
    for op in DARTS_OPS[1:]:
        for c, h, s in ((16, 32, 1), (32, 16, 1), (32, 32, 2), (64, 8, 1), (64, 16, 2)):
            med = float(0.02 * c * h * h / 1024 * (3 if "conv" in op else 0.4)
                        * rng.uniform(0.8, 1.2) / s)
            cv = float(rng.uniform(0.005, 0.12))
            key = f"{op}/c{c}-{c}/h{h}w{h}/s{s}/b1/float32"
            entries[key] = {
                "op": op, "c_in": c, "c_out": c, "h": h, "w": h, "stride": s, "batch": 1,
                "dtype": "float32",
                "latency_ms": {"median": med, "mean": med * 1.02, "p5": med * 0.96,
                               "p95": med * 1.1, "cv": cv, "repeats": 50},
                "noisy": cv > 0.1, "memory_bytes": int(c * h * h * 4 * 2), "energy_j": None,
                "energy_reason": "no energy sensor on this device",
            }  # fmt: skip
    lut = {"schema": 1, "provenance": {"device": {"name": "AMD Ryzen 7 5800X"},
                                       "backend": "torch-cpu", "date": "2026-11-21"},
           "entries": entries}  # fmt: skip
    path.write_text(json.dumps(lut))
    return path


def write_validation(path: Path, n: int = 30, seed: int = 0) -> Path:
    """Write a predicted-vs-measured validation JSON; return its path."""
    rng = np.random.default_rng(seed)
    meas = rng.uniform(2, 12, size=n)
    pred = meas * rng.normal(1.0, 0.08, size=n)
    pts = [{"predicted_ms": float(p), "measured_ms": float(m)}
           for p, m in zip(pred, meas, strict=True)]
    within = float(np.mean(np.abs(pred - meas) <= 0.1 * meas))
    path.write_text(json.dumps({"points": pts, "within_10pct": within}))
    return path


@pytest.fixture
def two_runs(tmp_path):
    a = write_run(tmp_path / "runs", "20261122-darts-ab12cd", "darts", seed=1)
    b = write_run(tmp_path / "runs", "20261122-proxyless-77ee01", "proxyless", seed=2,
                  space="proxyless", target_ms=None, references=False, energy=False)
    return [a, b]


def test_report_is_self_contained(tmp_path, two_runs):
    lut = write_lut(tmp_path / "lut.json")
    val = write_validation(tmp_path / "val.json")
    out = build_report(two_runs, tmp_path / "out" / "report.html", lut=lut, validation=val,
                       title="Test report")
    assert out == tmp_path / "out" / "report.html"
    html = out.read_text(encoding="utf-8")
    # plotly.js inline exactly once, no external scripts, stylesheets or images
    assert html.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]+src\s*=", html, re.I)
    assert not re.search(r"<link[^>]+href\s*=\s*[\"']?https?:", html, re.I)
    assert not re.search(r"<img[^>]+src\s*=\s*[\"']?https?:", html, re.I)
    # every figure has its container and spec
    n_divs = len(re.findall(r'<div class="plot" id="fig\d+"', html))
    n_specs = len(re.findall(r'<script type="application/json" id="fig\d+-data">', html))
    assert n_divs == n_specs >= 10
    # content: summary, provenance, hypervolume reference point, LUT, targets
    for text in ("Most accurate overall", "Provenance", "ab" * 32, "nasbench search --method",
                 "Hypervolume", "· ref ", "Lookup table", "Under the 4 ms latency target",
                 "AMD Ryzen 7 5800X", "within ±10%"):
        assert text in html, text
    # no temp files left behind, data file beside the report
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.csv", "report.html"]
    with open(out.with_suffix(".csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24 + 4 + 24
    assert {"run", "accuracy_pct", "latency_ms", "front_latency_ms", "front_nd"} <= set(rows[0])


def test_report_into_directory_and_overwrite(tmp_path, two_runs):
    outdir = tmp_path / "rep"
    outdir.mkdir()
    p1 = build_report(two_runs[:1], outdir)
    assert p1 == outdir / "report.html"
    p2 = build_report(two_runs[:1], outdir)  # rebuild replaces it atomically
    assert p2 == p1 and p1.stat().st_size > 100_000
    assert sorted(p.name for p in outdir.iterdir()) == ["report.csv", "report.html"]


def test_minimal_run_without_optional_files(tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    (d / "result.json").write_text(json.dumps({"run_id": "bare", "candidates": [
        {"name": "derived", "role": "derived", "accuracy": 50.0,
         "latency_ms": {"measured": {"median": 3.0}}},
        {"name": "x", "role": "visited", "accuracy": None, "latency_ms": 2.0},
    ]}))  # fmt: skip
    out = build_report([d], tmp_path / "bare.html")
    html = out.read_text()
    assert "Most accurate overall" in html and "bare" in html


def test_bad_run_dirs_raise_report_error(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        build_report([tmp_path / "nope"], tmp_path / "r.html")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportError, match="result.json is missing"):
        load_run(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "result.json").write_text('{"run_id": "x", "candidates": [')
    with pytest.raises(ReportError, match="not valid JSON") as info:
        build_report([bad], tmp_path / "r.html")
    assert "\n" not in str(info.value)
    (bad / "result.json").write_text('{"candidates": {"a": 1}}')
    with pytest.raises(ReportError, match="candidates"):
        load_run(bad)
    with pytest.raises(ReportError, match="no run directories"):
        build_report([], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_bad_lut_raises_report_error(tmp_path, two_runs):
    lut = tmp_path / "lut.json"
    lut.write_text("[1, 2]")
    with pytest.raises(ReportError, match="LUT"):
        build_report(two_runs, tmp_path / "r.html", lut=lut)


def test_reports_imports_nothing_of_ours():
    src = Path(__file__).resolve().parents[1] / "reports"
    for f in src.glob("*.py"):
        text = f.read_text()
        assert not re.search(r"^\s*(from|import)\s+(nasbench|profilers|kernels)\b", text, re.M), f
