"""``--measure-top K``: after a multi-trial search the runner measures the Pareto
finalists of the visited candidates (accuracy vs predicted latency) on the device and
stores measured vs predicted latency (a HW-NAS-Bench device: table values, labelled so);
and a whole tiny run with ``--evaluate train``."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nasbench.errors import UserError
from nasbench.luts import get_device
from nasbench.run.measure import finalists
from nasbench.run.result import summary_lines
from nasbench.run.runner import run_search
from nasbench.searchers import TrialConfig
from nasbench.spaces.nb201 import NB201Space
from profilers.lut import LUT, full_key
from tests.conftest import make_entry
from tests.test_runner import fake_measure  # noqa: F401 - a fixture

sys.path.insert(0, str(Path(__file__).parent))
from nb201_fake import cost_ms, write_fake_nb201  # noqa: E402


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("nb201"))


def write_space_lut(path, space):
    """Writes a LUT of every op instance of ``space``'s deploy network for this CPU
    (made-up latencies growing with the op's size); returns the path."""
    entries = {}
    for inst in space.enumerate_instances():
        ms = 0.001 + 1e-6 * inst.c_in * inst.c_out * inst.h
        if inst.op in ("none", "skip_connect"):
            ms = 0.0005
        entries[full_key(inst.key, 1)] = make_entry(inst.key, 1, ms)
    LUT({"device": get_device("cpu").to_dict(), "deploy": space.describe(),
         "batches": [1]}, entries).save(path)
    return path


def config(tmp_path, fake, **kw) -> TrialConfig:
    base = dict(trials=12, trials_per_epoch=12, benchmark_dir=str(fake),
                dataset="synthetic", train_epochs=0, references="", threads=1,
                out=str(tmp_path / "runs"), seed=1)
    cfg = TrialConfig.from_preset("quick", "random", **{**base, **kw})
    if not cfg.device.startswith("hw-nas-bench") and cfg.lut is None:
        space = NB201Space(cfg.deploy())
        cfg = cfg.replace(lut=str(write_space_lut(tmp_path / "lut.json", space)))
    return cfg


def dominated(v, others) -> bool:
    a, c = v["accuracy"], v["cost"]["latency"]
    return any(o["accuracy"] >= a and o["cost"]["latency"] <= c and
               (o["accuracy"] > a or o["cost"]["latency"] < c) for o in others)


def test_finalists_are_the_front_thinned_evenly():
    vis = [{"arch": {"i": i}, "accuracy": acc, "cost": {"latency": lat}}
           for i, (acc, lat) in enumerate([(50, 1), (60, 2), (55, 3), (70, 4), (80, 8),
                                           (65, 9), (81, 10)])]
    front = finalists(vis, 10)
    assert [v["arch"]["i"] for v in front] == [0, 1, 3, 4, 6]      # fastest first
    three = finalists(vis, 3)
    assert [v["arch"]["i"] for v in three] == [0, 3, 6]            # both ends kept
    assert finalists(vis, 0) == [] and finalists([], 5) == []
    twice = vis + [dict(vis[0])]
    assert len(finalists(twice, 10)) == 5


def test_a_multi_trial_run_measures_its_finalists(tmp_path, fake, fake_measure):  # noqa: F811
    cfg = config(tmp_path, fake, measure_top=3)
    r = run_search(cfg, quiet=True)
    assert r.status == "complete"
    res = json.loads((r.run_dir / "result.json").read_text())
    fin = [c for c in res["candidates"] if c["role"] == "finalist"]
    assert 1 <= len(fin) <= 3 and fin == res["finalists"]
    visited = res["visited"]
    for c in fin:
        assert c["latency_source"] == "measured"
        assert c["latency_ms"]["measured"]["median"] == 1.0          # the fake meter
        assert c["latency_ms"]["predicted"] == pytest.approx(c["search_cost"]["latency"])
        assert c["accuracy_kind"] == "validation" and "NAS-Bench-201" in c[
            "accuracy_signal"]
        v = next(v for v in visited if v["arch"] == c["genotype"])
        assert c["accuracy"] == v["accuracy"] and not dominated(v, visited)
    best = max(visited, key=lambda v: v["accuracy"])
    assert best["arch"] in [c["genotype"] for c in fin]              # always on the front
    lat = [c["latency_ms"]["predicted"] for c in fin]
    assert lat == sorted(lat)
    text = "\n".join(summary_lines(r))
    assert "finalist 1" in text and "measured 1.000 ms" in text
    assert (r.run_dir / "report.html").is_file()


def test_tabular_finalists_are_table_values(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = config(tmp_path, fake, measure_top=2, device="hw-nas-bench:edgegpu")
    r = run_search(cfg, quiet=True)
    fin = r.to_dict()["finalists"]
    assert 1 <= len(fin) <= 2
    space = NB201Space(cfg.deploy())
    for c in fin:
        arch = space.arch_from_dict(c["genotype"])
        assert c["latency_source"] == "table"
        assert c["latency_ms"]["measured"]["median"] == pytest.approx(cost_ms(arch))
        assert c["latency_ms"]["predicted"] is not None     # the fitted LUT's sum
    assert "table" in "\n".join(summary_lines(r))


def test_measure_top_zero_and_bad_values(tmp_path, fake, fake_measure):  # noqa: F811
    r = run_search(config(tmp_path, fake, measure_top=0, trials=4), quiet=True)
    assert r.finalists == [] and all(c["role"] != "finalist"
                                     for c in r.to_dict()["candidates"])
    with pytest.raises(UserError, match="--measure-top must be >= 0"):
        config(tmp_path, fake, measure_top=-1)


def test_a_run_with_the_train_evaluator(tmp_path, fake, fake_measure,  # noqa: F811
                                        monkeypatch):
    """Random search on nb201 with --evaluate train on digits: every candidate trained
    (a few steps), the search sees held-out accuracy, a second run reuses the cache."""
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = config(tmp_path, fake, evaluate="train", dataset="digits", trials=3,
                 trials_per_epoch=3, train_epochs=1, train_max_steps=2,
                 train_batch_size=16, measure_top=2, benchmark_dir=None)
    r = run_search(cfg, quiet=True)
    assert r.status == "complete" and len(r.visited) == 3
    accs = [v["accuracy"] for v in r.visited]
    assert all(0.0 <= a <= 100.0 for a in accs) and len(set(map(str, accs))) >= 1
    log = (r.run_dir / "search.log").read_text()
    assert log.count("train evaluator:") == 3 and "cached" not in log
    assert r.test_acc is not None              # the winner is retrained, tested once
    again = run_search(cfg.replace(out=str(tmp_path / "again")), quiet=True)
    log2 = (again.run_dir / "search.log").read_text()
    assert log2.count("(cached in") == 3
    assert [v["accuracy"] for v in again.visited] == accs
    assert np.isfinite([c["latency_ms"]["predicted"] for c in again.finalists]).all()
