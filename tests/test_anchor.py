"""The drift anchor of a profile: finalize_anchor's arithmetic and a real profile."""

import json

import pytest

from nasbench.cli import main
from profilers.build import finalize_anchor
from profilers.lut import LUT, full_key


def _entry(raw_ms: float, anchor_ms: float, ratio: float | None = None) -> dict:
    stats = {"median": raw_ms, "mean": raw_ms, "p5": raw_ms * 0.9, "p95": raw_ms * 1.1,
             "cv": 0.05, "repeats": 10, "ci_rel": 0.01, "stable": True}
    return {"op": "x", "batch": 1, "latency_ms": dict(stats),
            "anchored": {"ratio": ratio or raw_ms / anchor_ms,
                         "anchor_ms": {**stats, "median": anchor_ms}}}


def test_finalize_anchor_hand_computed():
    # the machine ran at 1x, 2x and 1x its typical anchor time while measuring a, b, c
    lut = LUT(provenance={"anchor": {"key": "k"}},
              entries={full_key(k, 1): _entry(ms, anc)
                       for k, ms, anc in (("a", 2.0, 1.0), ("b", 8.0, 2.0), ("c", 3.0, 1.0))})
    finalize_anchor(lut)
    a = lut.provenance["anchor"]
    assert a["ref_ms"] == 1.0 and a["spread"] == pytest.approx(1.0) and a["entries"] == 3
    b = lut.entries[full_key("b", 1)]
    assert b["latency_ms"]["median"] == pytest.approx(4.0)     # 8 ms x (1 / 2)
    assert b["latency_ms"]["p95"] == pytest.approx(4.4)
    assert b["latency_ms"]["cv"] == 0.05                     # scaling keeps the CV
    assert b["raw_latency_ms"]["median"] == 8.0 and b["latency_correction"] == "anchor"
    assert lut.value("b", 1) == pytest.approx(4.0)
    # a bracketed ratio (5) that differs from the ratio of medians (8 / 1) is what counts
    lut.entries[full_key("d", 1)] = _entry(8.0, 1.0, ratio=5.0)
    finalize_anchor(lut)
    assert lut.value("d", 1) == pytest.approx(5.0)
    assert lut.entries[full_key("d", 1)]["latency_ms"]["p5"] == pytest.approx(4.5)
    finalize_anchor(lut)                                     # idempotent (resume)
    assert lut.value("b", 1) == pytest.approx(4.0) and lut.value("a", 1) == 2.0


def test_finalize_anchor_leaves_unanchored_luts_alone():
    e = _entry(2.0, 1.0)
    del e["anchored"]
    lut = LUT(provenance={}, entries={full_key("a", 1): e})
    finalize_anchor(lut)
    assert lut.value("a", 1) == 2.0 and "raw_latency_ms" not in lut.entries[full_key("a", 1)]


def test_profile_records_anchor_and_no_anchor_opts_out(tmp_path):
    args = ["profile", "--quiet", "--channels", "4", "--layers", "3", "--input", "8",
            "--time-cap", "0.05", "--min-repeats", "3", "--max-repeats", "10",
            "--rounds", "1"]
    assert main(args + ["--out", str(tmp_path / "a.json")]) == 0
    d = json.loads((tmp_path / "a.json").read_text())
    anchor = d["provenance"]["anchor"]
    assert anchor["key"] == "sep_conv_3x3/c4-4/h8w8/s1/b1/float32" and anchor["ref_ms"] > 0
    for e in d["entries"].values():
        assert e["latency_correction"] == "anchor"
        assert e["anchored"]["estimator"] == "bracketed"
        ratio = e["anchored"]["ratio"]
        assert e["anchored"]["paired"]["median"] == pytest.approx(ratio, abs=1e-6)
        assert e["latency_ms"]["median"] == pytest.approx(
            ratio * anchor["ref_ms"], rel=1e-4, abs=1e-6)  # 1 ns storage
    # entries corrected by the older ratio of medians are not mixed with bracketed ones
    d["provenance"]["anchor"].pop("estimator")
    (tmp_path / "old.json").write_text(json.dumps(d))
    assert main(args + ["--resume", "--out", str(tmp_path / "old.json")]) == 2
    assert main(args + ["--no-anchor", "--out", str(tmp_path / "b.json")]) == 0
    d = json.loads((tmp_path / "b.json").read_text())
    assert "anchor" not in d["provenance"]
    assert not any("anchored" in e for e in d["entries"].values())
    # a LUT profiled without the anchor cannot be resumed with it (mixed time bases)
    assert main(args + ["--resume", "--out", str(tmp_path / "b.json")]) == 2
    # validating an unanchored LUT measures the networks plainly
    v = tmp_path / "v.json"
    assert main(["lut", "validate", "--lut", str(tmp_path / "b.json"), "--samples", "2",
                 "--rounds", "1", "--out", str(v), "--quiet"]) == 0
    res = json.loads(v.read_text())
    assert "anchor" not in res and "plain_raw" not in res
    assert all(p["measured_ms"] == p["raw_measured_ms"] for p in res["points"])


def test_anchor_slowed_by_large_ops_is_reported():
    """An anchor whose time grows with the op it brackets (its working set evicted) is
    measured as a rank correlation and warned about; an unrelated one is not."""
    from profilers.build import anchor_warning
    sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]

    def lut_with(anchors):
        lut = LUT(provenance={"anchor": {"key": "k"}},
                  entries={full_key(f"op{i}", 1): _entry(ms, a)
                           for i, (ms, a) in enumerate(zip(sizes, anchors, strict=True))})
        finalize_anchor(lut)
        return lut

    slowed = lut_with([1.0, 1.1, 1.3, 1.6, 2.0, 2.5])
    assert slowed.provenance["anchor"]["op_correlation"] == pytest.approx(1.0)
    assert "slower beside larger ops" in anchor_warning(slowed)
    steady = lut_with([1.2, 1.0, 1.1, 1.3, 1.0, 1.2])
    assert steady.provenance["anchor"]["op_correlation"] < 0.5
    assert anchor_warning(steady) is None


def test_validate_keeps_long_forwards_as_measured_and_says_so(tmp_path, monkeypatch):
    """With every forward counted as long, validate compares the measured medians and
    warns that they were not drift-corrected."""
    import profilers.latency as latency
    lut = tmp_path / "a.json"
    assert main(["profile", "--quiet", "--channels", "4", "--layers", "3", "--input", "8",
                 "--time-cap", "0.05", "--min-repeats", "3", "--max-repeats", "10",
                 "--rounds", "1", "--out", str(lut)]) == 0
    monkeypatch.setattr(latency, "LONG_CALL_MS", 0.0)     # the meter's rule
    v = tmp_path / "v.json"
    assert main(["lut", "validate", "--lut", str(lut), "--samples", "2", "--rounds", "1",
                 "--out", str(v), "--quiet"]) == 0
    res = json.loads(v.read_text())
    assert all(p["correction"].startswith("none") for p in res["points"])
    assert all(p["measured_ms"] == p["raw_measured_ms"] for p in res["points"])
    assert any("kept as measured" in w for w in res["warnings"])


def test_search_measurement_in_the_luts_time_base(tmp_path):
    """The deploy network a search measures is timed beside the LUT's anchor: its
    corrected latency is the bracketed ratio x the LUT's reference time; without an
    anchored LUT there is none."""
    from nasbench.api import measure_deploy
    from nasbench.genotypes import DARTS_V2
    from nasbench.spaces.darts_network import build_network_from_genotype
    from nasbench.validate import deploy_from_lut
    lut_path = tmp_path / "a.json"
    assert main(["profile", "--quiet", "--channels", "4", "--layers", "3", "--input", "8",
                 "--time-cap", "0.05", "--min-repeats", "3", "--max-repeats", "10",
                 "--rounds", "1", "--out", str(lut_path)]) == 0
    lut = LUT.load(lut_path)
    deploy = deploy_from_lut(lut)
    net = build_network_from_genotype(DARTS_V2, C=4, num_cells=3, num_classes=10,
                                      in_channels=3, input_size=8).eval()
    logged = []
    m = measure_deploy(net, deploy, "cpu", logged.append, lut)
    ref = lut.provenance["anchor"]["ref_ms"]
    assert m["latency_corrected_ms"] == pytest.approx(m["anchored"]["ratio"] * ref)
    assert "LUT's time base" in logged[-1]
    plain = measure_deploy(net, deploy, "cpu", logged.append)
    assert "latency_corrected_ms" not in plain and "anchored" not in plain
    # a LUT anchored on another op: the run keeps its raw measurement and says why
    lut.provenance["anchor"]["key"] = "sep_conv_5x5/c4-4/h8w8/s1/b1/float32"
    other = measure_deploy(net, deploy, "cpu", logged.append, lut)
    assert "latency_corrected_ms" not in other and other["latency_ms"]["median"] > 0
    assert any("profile it again; measuring without the drift anchor" in x for x in logged)
