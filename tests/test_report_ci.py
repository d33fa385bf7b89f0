"""Tests for the report's accuracy uncertainty and layout fixes.

A tiny run directory (the layout ``nasbench search`` writes: result.json with candidate
records carrying ``accuracy_ci`` / ``accuracy_n`` / ``chance`` / ``at_chance``,
config.json without a command, a 2-epoch history.json) is rendered, and the report's
figure JSON, tables and sentences are checked.
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from reports import build_report, load_runs, points_frame
from reports.figures import _SIDES, _label_positions, curves_figure, pareto_figure, run_colors
from reports.html import summary_sentences
from reports.loader import METRIC_BY_KEY

MIB = 2**20


def _cand(name, role, acc, ci, lat, lat_pred, mem, mem_pred, *, at_chance=None,
          space="darts", params=1_000_000) -> dict:
    c = {
        "name": name, "role": role, "space": space, "genotype": None,
        "genotype_summary": f"{name} cell", "accuracy": acc, "accuracy_kind": "test",
        "train_epochs": 1, "train_steps": 30,
        "latency_ms": {"measured": {"median": lat, "p5": lat * 0.95, "p95": lat * 1.05,
                                    "cv": 0.02}, "predicted": lat_pred},
        "energy_j": {"measured": None, "predicted": None, "reason": "no sensor (test)"},
        "memory_bytes": {"measured": mem * MIB,
                         "predicted": None if mem_pred is None else mem_pred * MIB,
                         "method": "cpu-rss-hwm"},
        "params": params, "macs": params * 100,
    }  # fmt: skip
    if ci is not None:
        c.update(accuracy_ci=list(ci), accuracy_n=300, chance=10.0, at_chance=at_chance)
    return c


#: name -> (accuracy, interval); arch-b's interval includes chance (10 %)
CANDS = {
    "derived": (60.0, (55.0, 65.0)),
    "arch-a": (58.0, (53.0, 63.0)),  # overlaps the derived one: not separable
    "arch-b": (12.0, (8.5, 16.3)),  # at chance
    "ResNet-20 (CIFAR)": (30.0, (25.0, 35.0)),
}


def write_ci_run(root: Path, run_id: str = "20261203-ci-run", separable: bool = False) -> Path:
    """A tiny run directory with intervals on every candidate; with ``separable`` the
    runner-up (arch-a) is far enough below the derived one that the intervals part."""
    a_acc, a_ci = (45.0, (40.0, 50.0)) if separable else CANDS["arch-a"]
    cands = [
        _cand("derived", "derived", *CANDS["derived"], 5.0, 5.2, 10.0, 40.0, at_chance=False),
        _cand("arch-a", "visited", a_acc, a_ci, 2.0, 2.1, 8.0, 30.0, at_chance=False),
        _cand("arch-b", "visited", *CANDS["arch-b"], 1.0, 1.05, 2.0, 9.0, at_chance=True),
        # hand-designed: the LUT predicts neither its latency nor its memory
        _cand("ResNet-20 (CIFAR)", "reference", *CANDS["ResNet-20 (CIFAR)"], 3.0, None, 6.0,
              None, at_chance=False, space="hand-designed", params=272_474),
    ]
    d = root / run_id
    d.mkdir(parents=True)
    config = {"method": "darts", "space": "darts", "objective": "acc+latency",
              "preset": "quick", "dataset": "digits", "device": "cpu", "epochs": 2,
              "seed": 2, "latency_target_ms": None, "hard_target": True}
    result = {"schema": 1, "run_id": run_id, "method": "darts", "objective": "acc+latency",
              "dataset": "digits", "device": {"name": "Test CPU"}, "candidates": cands,
              "config": config}
    history = [{"epoch": e, "train_loss": 2.0 - 0.5 * e, "val_loss": 2.1 - 0.5 * e,
                "train_acc": 30 + 20 * e, "val_acc": 28 + 20 * e,
                "expected_cost": {"latency": 6.0 - e}} for e in range(2)]
    (d / "result.json").write_text(json.dumps(result))
    (d / "config.json").write_text(json.dumps(config))
    (d / "history.json").write_text(json.dumps(history))
    return d


def _specs(html: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(
        r'<script type="application/json" id="fig\d+-data">(.*?)</script>', html, re.S)]


def _values(v) -> list:
    """A figure JSON array as a list (plotly writes numeric arrays as typed base64)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def _title(spec: dict) -> str:
    return str(((spec.get("layout") or {}).get("title") or {}).get("text") or "")


def _notable_rows(html: str) -> dict[str, str]:
    """{name cell text: row HTML} of the notable-architectures table."""
    table = html[html.index("Notable architectures"):]
    table = table[:table.index("</table>")]
    rows = {}
    for row in re.findall(r"<tr[ >].*?</tr>", table, re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows[re.sub(r"<[^>]+>|≈ chance", "", cells[1]).strip()] = row
    return rows


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("ci")
    out = build_report([write_ci_run(tmp / "runs")], tmp / "out" / "report.html")
    return out, out.read_text(encoding="utf-8")


def test_points_frame_carries_the_interval(tmp_path):
    d = write_ci_run(tmp_path)
    result = json.loads((d / "result.json").read_text())
    del result["candidates"][0]["at_chance"]  # derived from the interval when missing
    result["candidates"][1]["accuracy_ci"] = None
    (d / "result.json").write_text(json.dumps(result))
    df = points_frame(load_runs([d])).set_index("name")
    assert df.loc["derived", "accuracy_lo"] == 55.0 and df.loc["derived", "accuracy_hi"] == 65.0
    assert df.loc["derived", "at_chance"] is False and df.loc["arch-b", "at_chance"] is True
    assert math.isnan(df.loc["arch-a", "accuracy_lo"]) and df.loc["arch-a", "at_chance"] is False
    assert df.loc["arch-b", "accuracy_n"] == 300 and df.loc["arch-b", "chance"] == 10.0


def test_error_bars_on_every_pareto_figure(report):
    _, html = report
    pareto = [s for s in _specs(html) if _title(s).startswith("Accuracy vs")]
    assert len(pareto) >= 4  # latency, predicted latency, memory, params, MACs
    for spec in pareto:
        cost = spec["layout"]["xaxis"]["title"]["text"]
        key = next(m.key for m in METRIC_BY_KEY.values() if m.axis_title == cost)
        seen = set()
        for tr in spec["data"]:
            if tr.get("name") == "derived":  # the star sits on the front point's bar
                continue
            ey = tr["error_y"]
            assert ey["symmetric"] is False and ey["visible"] is True
            for y, plus, minus in zip(_values(tr["y"]), ey["array"], ey["arrayminus"],
                                      strict=True):
                name = next(n for n, (acc, _) in CANDS.items() if acc == y)
                lo, hi = CANDS[name][1]
                assert plus == pytest.approx(hi - y) and minus == pytest.approx(y - lo)
                seen.add(name)
        expected = set(CANDS) - ({"ResNet-20 (CIFAR)"} if key == "latency_pred_ms" else set())
        assert seen == expected, (key, seen)


def test_at_chance_labelled_for_exactly_those_candidates(report):
    _, html = report
    rows = _notable_rows(html)
    assert set(rows) == set(CANDS)
    badged = {name for name, row in rows.items() if 'class="badge chance"' in row}
    assert badged == {"arch-b"}
    assert "8.5–16.3%" in rows["arch-b"]  # the interval column
    hover = json.loads(re.search(r'<script type="application/json" id="hover-data">(.*?)'
                                 r"</script>", html, re.S).group(1))
    flagged = {re.match(r"<b>(.*?)</b>", h).group(1) for h in hover if "≈ chance" in h}
    assert flagged == {"arch-b"}
    assert all("95% CI" in h for h in hover)
    # arch-b is the only one under half the memory of the most accurate: badge there
    summary = html[html.index('id="summary"'):html.index('id="pareto"')]
    mem = next(li for li in re.findall(r"<li>(.*?)</li>", summary, re.S)
               if li.startswith("At half the peak memory"))
    assert "arch-b" in mem and "≈ chance" in mem and "includes chance (10%)" in mem
    best = next(li for li in re.findall(r"<li>(.*?)</li>", summary, re.S)
                if li.startswith("Most accurate overall"))
    assert "≈ chance" not in best


def test_not_separable_sentence_when_intervals_overlap(tmp_path, report):
    _, html = report
    summary = html[html.index('id="summary"'):html.index('id="pareto"')]
    items = re.findall(r"<li>(.*?)</li>", summary, re.S)
    best = next(li for li in items if li.startswith("Most accurate overall"))
    assert "<b>derived</b>" in best and "95% CI 55.0–65.0%" in best
    assert ("overlaps the runner-up's (arch-a at 58%, 95% CI 53.0–63.0%): not separable on "
            "this test split") in best
    # under half the latency, arch-a (53-63 %) and arch-b (8.5-16.3 %) are apart
    half = next(li for li in items if li.startswith("At half the latency"))
    assert "arch-a" in half and "not separable" not in half

    runs = load_runs([write_ci_run(tmp_path / "sep", separable=True)])
    sentences = summary_sentences(points_frame(runs), runs)
    assert sentences[0].startswith("Most accurate overall")
    assert "not separable" not in " ".join(sentences)


def test_memory_is_an_upper_bound_outside_the_within_share(report):
    _, html = report
    lead = html[html.index('<section id="cost">'):]
    lead = lead[:lead.index("</p>")]
    assert "Latency: <b>" in lead and "within ±10%" in lead
    assert "Peak memory: <b>" not in lead and "upper bound" in lead
    spec = next(s for s in _specs(html) if any(
        "LUT upper bound" in str(a.get("text")) for a in s["layout"].get("annotations", [])))
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert any(t.startswith("Latency:") and "within ±10%" in t for t in titles)
    mem = next(t for t in titles if t.startswith("Peak memory"))
    assert "within" not in mem and "upper bound" in mem
    assert "upper bound" in spec["layout"]["yaxis2"]["title"]["text"]
    band = [t for t in spec["data"] if t.get("name") == "±10% band"]
    assert [t.get("xaxis", "x") for t in band] == ["x"]  # latency only, none on memory
    assert "left out of the within-±10% shares" in html


def test_left_out_candidates_named_on_the_predicted_plot(report):
    _, html = report
    spec = next(s for s in _specs(html) if _title(s).startswith("Accuracy vs latency (LUT"))
    assert "not shown, no LUT prediction: ResNet-20 (CIFAR)" in _title(spec)
    xs = [x for tr in spec["data"] for x in _values(tr["x"])]
    assert 3.0 not in xs and len(xs) > 0  # ResNet-20's measured latency is not there
    cap = re.findall(r'<div class="cap">(.*?)</div>', html, re.S)
    assert any("Not shown (no LUT prediction): ResNet-20 (CIFAR) (hand-designed networks"
               in c for c in cap)
    assert not any("arch-b" in c or "derived" in c for c in cap)


def test_integer_epoch_ticks_and_equivalent_command(report):
    _, html = report
    runs = load_runs([Path(re.search(r"<dt>run directory</dt><dd><code>(.*?)</code>",
                                     html).group(1))])
    fig = curves_figure(runs, run_colors([r.label for r in runs]))
    axes = [fig.layout[k] for k in fig.layout if k.startswith("xaxis")]
    assert len(axes) == 3 and all(a.dtick == 1 and a.tickformat == "d" for a in axes)
    prov = html[html.index('<section id="provenance">'):]
    assert "<dt>equivalent command</dt>" in prov and "not recorded by the run" in prov
    cmd = re.search(r"<dt>equivalent command</dt><dd><code>(.*?)</code>", prov).group(1)
    assert cmd.startswith("nasbench search --method darts --space darts")
    assert "--preset quick" in cmd and "--dataset digits" in cmd and "--epochs 2" in cmd


def test_reference_labels_stay_inside():
    # right-hand points are labelled to their left, left-hand ones to their right
    pos = _label_positions([0.0, 10.0], [5.0, 5.0], ["left end", "right end"], (0, 10), (0, 10))
    assert pos == ["middle right", "middle left"]
    # two close points (the real run's MobileNetV2 and ResNet-20): the labels part
    xs, ys, texts = [1.0, 1.3], [5.0, 5.1], ["MobileNetV2 (CIFAR)", "ResNet-20 (CIFAR)"]
    pos = _label_positions(xs, ys, texts, (0, 10), (0, 10), plot_px=(440.0, 320.0))
    boxes = []
    for x, y, t, p in zip(xs, ys, texts, pos, strict=True):
        x0, x1, y0, y1 = _SIDES[p](6.6 * len(t), 14.0)
        boxes.append((x * 44 + x0, x * 44 + x1, y * 32 + y0, y * 32 + y1))
        assert x * 44 + x0 >= 0  # inside the plot
    (a, b) = boxes
    assert a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2], pos


def test_old_result_without_interval_keys_still_renders(tmp_path):
    from tests.test_reports import write_run

    d = write_run(tmp_path / "runs", "20261122-old-format", "darts", seed=1)
    assert "accuracy_ci" not in (d / "result.json").read_text()
    out = build_report([d], tmp_path / "old.html")
    html = out.read_text(encoding="utf-8")
    assert "Most accurate overall" in html and "badge chance" not in html
    assert "not separable" not in html and "95% CI" not in html
    assert "<dt>command</dt><dd><code>nasbench search --method darts" in html
    for spec in _specs(html):
        assert all("error_y" not in tr for tr in spec["data"])
    df = points_frame(load_runs([d]))
    assert df["accuracy_lo"].isna().all() and df["at_chance"].isna().all()
    fig = pareto_figure(df, METRIC_BY_KEY["latency_ms"], run_colors(list(df["run"].unique())))
    assert fig is not None and len(fig.data) >= 2
