import json
import os

import pytest

from profilers.lut import LUT, LUTError, atomic_write_text, diff_luts, full_key
from tests.conftest import make_lut


def test_round_trip(tmp_path, tiny_lut):
    p = tiny_lut.save(tmp_path / "a.json")
    back = LUT.load(p)
    assert back.entries == tiny_lut.entries
    assert back.provenance == tiny_lut.provenance
    assert back.value("sep_conv_3x3/c8-8/h8w8/s1", 1) == 2.0
    assert back.value("sep_conv_3x3/c8-8/h8w8/s1", 32) is None
    assert back.value("max_pool_3x3/c8-8/h8w8/s1", 1, "memory") == 1000
    assert back.value("max_pool_3x3/c8-8/h8w8/s1", 1, "energy") is None
    assert back.batches == [1]
    assert len(back.sha256()) == 64


def test_atomic_write_leaves_no_temp_and_keeps_old_on_failure(tmp_path):
    p = tmp_path / "f.json"
    atomic_write_text(p, "one")

    with pytest.raises(TypeError):
        atomic_write_text(p, 123)  # write fails half-way
    assert p.read_text() == "one"
    assert [f.name for f in tmp_path.iterdir()] == ["f.json"]


@pytest.mark.parametrize("content,msg", [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    ('{"a": 1}', "not a nasbench LUT"),
    ('{"schema": 99, "entries": {}}', "schema 99"),
    ('{"schema": 1, "entries": {"k": {"x": 1}}}', "malformed"),
])
def test_bad_files_give_one_line(tmp_path, content, msg):
    p = tmp_path / "bad.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(LUTError) as e:
        LUT.load(p)
    assert msg in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_names_full_keys(tiny_lut):
    miss = tiny_lut.missing(["sep_conv_3x3/c8-8/h8w8/s1", "dil_conv_3x3/c8-8/h8w8/s1"], 1)
    assert miss == [full_key("dil_conv_3x3/c8-8/h8w8/s1", 1)]


def test_check_matches(tiny_lut):
    tiny_lut.check_matches(device={"id": "cpu:Test CPU"})
    with pytest.raises(LUTError, match="measured on"):
        tiny_lut.check_matches(device={"id": "opencl:Ellesmere"})
    tiny_lut.provenance["deploy"] = {"channels": 36, "layers": 20}
    with pytest.raises(LUTError, match="channels=36"):
        tiny_lut.check_matches(deploy={"channels": 16, "layers": 20})


def test_diff_orders_worst_regression_first():
    old = make_lut({"a/c1-1/h1w1/s1": 1.0, "b/c1-1/h1w1/s1": 1.0, "c/c1-1/h1w1/s1": 1.0,
                    "d/c1-1/h1w1/s1": 1.0})
    new = make_lut({"a/c1-1/h1w1/s1": 1.05, "b/c1-1/h1w1/s1": 1.5, "c/c1-1/h1w1/s1": 1.2,
                    "e/c1-1/h1w1/s1": 1.0})
    rows = diff_luts(old, new, threshold=0.10)
    assert [r.key.split("/")[0] for r in rows[:2]] == ["b", "c"]
    st = {r.key.split("/")[0]: r.status for r in rows}
    assert st == {"a": "same", "b": "regressed", "c": "regressed", "d": "removed",
                  "e": "added"}
    assert rows[0].ratio == pytest.approx(1.5)
    assert {r.status for r in diff_luts(old, new, threshold=0.6)} >= {"same"}
    assert not any(r.status == "regressed" for r in diff_luts(old, new, threshold=0.6))


def test_saved_file_is_versioned_json(tmp_path, tiny_lut):
    p = tiny_lut.save(tmp_path / "x.json")
    data = json.loads(p.read_text())
    assert data["schema"] == 1 and set(data) == {"schema", "provenance", "entries"}
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_a_lut_is_strict_json_even_with_a_non_finite_value(tmp_path):
    lut = LUT(provenance={"note": float("nan")},
              entries={"k": {"latency_ms": 1.0, "energy_mj": float("inf")}})
    p = lut.save(tmp_path / "l.json")
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    d = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert d["entries"]["k"]["energy_mj"] is None and d["provenance"]["note"] is None


def test_a_folder_is_not_a_lut(tmp_path):
    with pytest.raises(LUTError, match="is a folder, not a LUT file"):
        LUT.load(tmp_path)
