"""Tests for the NAS-Bench-201 bench report (reports/bench.py) on small synthetic bench files.

``make_bench`` writes files shaped like docs/bench-schema.md: 2 methods x 2 devices,
3 seeds each, a few front points, anytime curves of different lengths (none for the
one-shot method), targets on one device and null on the other, and NaN regrets.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from reports import ReportError, build_bench_report, load_bench
from reports.bench import (
    CSV_COLUMNS,
    align_anytime,
    anytime_figure,
    front_figure,
    median_run,
)

DEVICES = {  # device id -> (name, metric, unit, cost scale, target)
    "hw-nas-bench:edgegpu": ("NVIDIA Jetson TX2 (edge GPU)", "latency", "ms", 1.0, 5.0),
    "hw-nas-bench:pixel3": ("Google Pixel 3", "latency", "ms", 10.0, None),
}
METHODS = ("random", "darts")
#: (index, accuracy %, cost at scale 1) of the true front, sorted by cost
TRUE_FRONT = [(10, 85.0, 1.0), (11, 89.0, 2.0), (12, 91.0, 4.0), (13, 93.5, 8.0)]
#: regret per (method, device) and seed; NaN: the chosen cell missed the target
REGRETS = {
    ("random", "hw-nas-bench:edgegpu"): [0.5, 1.0, 2.0],
    ("darts", "hw-nas-bench:edgegpu"): [0.2, math.nan, 0.4],
    ("random", "hw-nas-bench:pixel3"): [0.0, 0.3, 0.6],
    ("darts", "hw-nas-bench:pixel3"): [0.1, 0.2, 0.3],
}
ANYTIME_LENGTHS = (3, 5, 4)  # per seed, for the query-based method


def arch(i: int) -> str:
    return f"|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|conv_{i}~1|none~2|"


def cell(index: int, acc: float, cost: float) -> dict:
    return {"index": index, "arch": arch(index), "accuracy": acc, "cost": cost}


def make_bench(method: str, device: str) -> dict:
    name, metric, unit, scale, target = DEVICES[device]
    front = [cell(i, a, c * scale) for i, a, c in TRUE_FRONT]
    runs = []
    for seed, regret in enumerate(REGRETS[(method, device)]):
        chosen = front[1 + seed % 2]
        found = [front[0], chosen, cell(100 + seed, chosen["accuracy"] - 1.5, 3.0 * scale)]
        run = {
            "seed": seed, "index": chosen["index"], "arch": chosen["arch"],
            "accuracy": chosen["accuracy"], "val_accuracy": chosen["accuracy"] - 1.0,
            "cost": chosen["cost"], "met": not math.isnan(regret), "regret": regret,
            "hv": 10.0, "hv_true": 12.0, "hv_gap": 0.1 * (seed + 1), "igd": 0.01 * (seed + 1),
            "front_found": 2, "queries": 50 if method == "random" else 1,
            "cache_hits": seed, "wall_s": 0.5 + seed,
            "regret_at": {"2.5": regret, "6.1": 0.1 * seed},
            "found_front": found,
        }  # fmt: skip
        if method == "random":
            n = ANYTIME_LENGTHS[seed]
            run["anytime"] = {"queries": [10 * (k + 1) for k in range(n)],
                              "hv_gap": [1.0 / (k + 1) for k in range(n)],
                              "best_accuracy": [80.0 + k for k in range(n)]}
        else:  # one-shot: a single point
            run["anytime"] = {"queries": [1], "hv_gap": [0.2], "best_accuracy": [90.0]}
        runs.append(run)
    return {
        "kind": "nasbench-bench", "version": 1, "space": "nb201", "method": method,
        "device": device, "device_name": name, "cost_source": "HW-NAS-Bench table",
        "dataset": "cifar10", "objective": f"acc+{metric}", "metric": metric, "unit": unit,
        "target": target, "budget": {"queries": 50} if method == "random" else {"epochs": 10},
        "seeds": [0, 1, 2],
        "signal": {"search": "12-epoch validation accuracy",
                   "reported": "12-epoch test accuracy"},
        "reference_point": [80.0, 9.0 * scale], "true_front": front,
        "cost_range": [0.5 * scale, 9.0 * scale], "targets": [2.5, 6.1], "runs": runs,
        "floor": {"accuracy": 90.5, "cost": 2.0 * scale, "regret": 0.25, "hv_gap": 0.03,
                  "igd": 0.004, "regret_at": {"2.5": 0.0, "6.1": 0.05},
                  "found_front": [front[0], front[1], cell(200, 88.0, 3.5 * scale)],
                  "what": "every cell queried with the search signal"},
        "started": "2026-01-01T00:00:00", "finished": "2026-01-01T00:01:00", "wall_s": 60.0,
    }  # fmt: skip


def write_bench(root: Path, method: str, device: str) -> Path:
    folder = root / f"{method}-{device.split(':')[1]}"
    folder.mkdir(parents=True)
    # allow_nan: Python's json writes NaN regrets as the NaN literal, as `nasbench bench` does
    (folder / "bench.json").write_text(json.dumps(make_bench(method, device)), encoding="utf-8")
    return folder / "bench.json"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    paths = [write_bench(root / "in", m, d) for m in METHODS for d in DEVICES]
    html_path = build_bench_report(paths, root / "out" / "bench.html")
    return paths, html_path


def test_report_files_and_content(report):
    paths, html_path = report
    assert html_path.name == "bench.html" and html_path.is_file()
    html = html_path.read_text(encoding="utf-8")
    assert "<title>NAS-Bench-201 bench: random, darts on NVIDIA Jetson TX2 (edge GPU), " \
           "Google Pixel 3</title>" in html
    for name in [*METHODS, *(d[0] for d in DEVICES.values()), *DEVICES]:
        assert name in html
    assert "signal floor" in html and "every cell queried with the search signal" in html
    assert "12-epoch validation accuracy" in html and "HW-NAS-Bench table" in html
    # self-contained: plotly embedded, no script fetched from anywhere
    assert "Plotly.newPlot" in html and len(html) > 1_000_000
    assert not re.search(r"<script[^>]*\bsrc\s*=", html)
    assert not re.search(r"""src\s*=\s*["']?https?://""", html)
    # one front figure and one anytime figure (random only) per device
    assert html.count('class="plot"') == 4
    assert "darts · latency ≤ 5 ms" in html and "Not drawn" in html
    # best (lowest mean regret) on the edge GPU is darts: mean of 0.2 and 0.4 (NaN skipped)
    best = re.findall(r'<td class="best">\s*<div class="main">regret ([^<]+)</div>', html)
    assert "0.3 ± 0.1 pp" in best
    assert "1.17 ± 0.624 pp" not in best  # random on the edge GPU
    # NaN values show as a dash; arch strings and the regret_at targets are shown
    assert "—" in html and arch(11) in html and "6.1 ms" in html


def test_csv_rows(report):
    _, html_path = report
    csv_path = html_path.with_suffix(".csv")
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    assert len(rows) == 12
    by = {(r["method"], r["device"], int(r["seed"])): r for r in rows}
    r = by[("random", "hw-nas-bench:edgegpu", 1)]
    assert float(r["regret_pp"]) == 1.0 and float(r["target"]) == 5.0
    assert r["arch"] == arch(12) and int(r["index"]) == 12 and r["met"] == "True"
    assert float(r["accuracy_pct"]) == 91.0 and float(r["cost"]) == 4.0
    assert r["unit"] == "ms" and r["metric"] == "latency" and int(r["queries"]) == 50
    missed = by[("darts", "hw-nas-bench:edgegpu", 1)]
    assert missed["regret_pp"] == "" and missed["met"] == "False"
    pix = by[("darts", "hw-nas-bench:pixel3", 2)]
    assert pix["target"] == "" and float(pix["regret_pp"]) == 0.3
    assert float(pix["cost"]) == 20.0 and float(pix["wall_s"]) == 2.5


def test_align_anytime_carries_last_value_forward():
    a = {"queries": [1, 3], "hv_gap": [0.9, 0.5]}
    b = {"queries": [1, 2, 4], "hv_gap": [0.8, 0.6, 0.2]}
    q, mean, std = align_anytime([{"seed": 0, "anytime": a}, b])  # run records or curves
    # a: 0.9 0.9 0.5 0.5; b: 0.8 0.6 0.6 0.2
    np.testing.assert_allclose(q, [1, 2, 3, 4])
    np.testing.assert_allclose(mean, [0.85, 0.75, 0.55, 0.35])
    np.testing.assert_allclose(std, [0.05, 0.15, 0.05, 0.15])
    # a run counts from its first query on; NaN values carry the last finite value
    late = {"queries": [3], "hv_gap": [0.4]}
    nan = {"queries": [1, 2], "hv_gap": [0.7, float("nan")]}
    q, mean, std = align_anytime([a, late, nan, {"seed": 9}])
    np.testing.assert_allclose(q, [1, 2, 3])
    np.testing.assert_allclose(mean, [0.8, 0.8, (0.5 + 0.4 + 0.7) / 3])
    assert std[0] == pytest.approx(0.1)
    q, mean, std = align_anytime([{"seed": 0}])
    assert q.size == mean.size == std.size == 0


def test_anytime_figure_log_axis_and_skips_one_shot():
    long = make_bench("random", "hw-nas-bench:edgegpu")
    for r in long["runs"]:
        r["anytime"] = {"queries": [1, 10, 120], "hv_gap": [0.9, 0.4, 0.1]}
    one_shot = make_bench("darts", "hw-nas-bench:edgegpu")
    colors = {"r": "#2f6fb0", "d": "#e07b21"}
    fig, skipped = anytime_figure([long, one_shot], ["r", "d"], colors)
    assert skipped == ["d"] and fig.layout.xaxis.type == "log"
    assert [t.fill for t in fig.data] == [None, "tonexty", None]
    np.testing.assert_allclose(fig.data[2].y, [0.9, 0.4, 0.1])


def test_front_figure_traces_and_target():
    edge = make_bench("random", "hw-nas-bench:edgegpu")
    fig = front_figure([edge], ["r"], {"r": "#2f6fb0"})
    names = [t.name for t in fig.data]
    assert names == ["true front", "r", "r (median seed 1)", "r chosen", "signal floor"]
    true = fig.data[0]
    assert list(true.x) == [1.0, 2.0, 4.0, 8.0] and true.line.shape == "hv"
    assert tuple(true.customdata[1]) == (arch(11), 11)
    assert len(fig.data[1].x) == 9 and len(fig.data[3].x) == 3  # 3 seeds x 3 found points
    assert fig.data[4].line.dash == "dot" and list(fig.data[4].x) == [1.0, 2.0]  # front only
    assert [s.x0 for s in fig.layout.shapes] == [5.0] and fig.layout.shapes[0].line.dash == "dash"
    pixel = make_bench("random", "hw-nas-bench:pixel3")
    assert not front_figure([pixel], ["r"], {"r": "#2f6fb0"}).layout.shapes


def test_median_run_skips_nan():
    runs = [{"seed": 0, "regret": 2.0}, {"seed": 1, "regret": math.nan},
            {"seed": 2, "regret": 0.5}, {"seed": 3, "regret": 1.0}]
    assert median_run(runs)["seed"] == 3
    assert median_run([{"seed": 0, "regret": None, "hv_gap": 0.2}])["seed"] == 0
    assert median_run([]) is None


def test_folder_argument_and_default_output(tmp_path):
    path = write_bench(tmp_path, "random", "hw-nas-bench:pixel3")
    data = load_bench(path.parent)
    assert data["method"] == "random" and data["_path"] == str(path)
    out = build_bench_report([path.parent], tmp_path / "report", title="My <bench>")
    assert out == tmp_path / "report" / "bench-report.html"
    html = out.read_text(encoding="utf-8")
    assert "<title>My &lt;bench&gt;</title>" in html
    assert (tmp_path / "report" / "bench-report.csv").is_file()


def test_bad_inputs_raise_report_error(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"kind": "nasbench-bench", "runs": [', encoding="utf-8")
    with pytest.raises(ReportError, match="broken.json.*not valid JSON"):
        load_bench(bad)
    other = tmp_path / "result.json"
    other.write_text(json.dumps({"kind": "nasbench-run", "candidates": []}), encoding="utf-8")
    with pytest.raises(ReportError, match="result.json.*not a bench result"):
        build_bench_report([other], tmp_path / "out.html")
    with pytest.raises(ReportError, match="no bench.json"):
        load_bench(tmp_path)
    with pytest.raises(ReportError, match="missing.json is missing"):
        load_bench(tmp_path / "missing.json")
    shape = tmp_path / "shape.json"
    shape.write_text(json.dumps({**make_bench("random", "hw-nas-bench:pixel3"), "runs": {}}),
                     encoding="utf-8")
    with pytest.raises(ReportError, match="shape.json: 'runs' must be a list"):
        load_bench(shape)
    with pytest.raises(ReportError, match="no bench files"):
        build_bench_report([], tmp_path)
    with pytest.raises(ReportError) as info:
        load_bench(bad)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.html").exists()


def test_minimal_bench_with_nulls_renders(tmp_path):
    minimal = {"kind": "nasbench-bench", "method": "oneshot", "device": "lut:cpu",
               "target": None, "runs": [
                   {"seed": 0, "index": None, "arch": None, "accuracy": None, "cost": float("nan"),
                    "met": None, "regret": None, "hv_gap": None, "igd": None, "queries": None,
                    "wall_s": None, "found_front": None, "anytime": None},
                   {"seed": 1}]}  # fmt: skip
    (tmp_path / "bench.json").write_text(json.dumps(minimal), encoding="utf-8")
    out = build_bench_report([tmp_path], tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    assert "oneshot" in html and "lut:cpu" in html and "regret —" in html
    assert "n/a" not in html.split("<script>", 1)[0]
    with (tmp_path / "r.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["seed"] for r in rows] == ["0", "1"] and rows[0]["regret_pp"] == ""
