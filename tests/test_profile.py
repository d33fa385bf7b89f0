"""The profile loop end to end on this CPU (tiny deploy network, quick settings)."""

import json
import subprocess
import sys

import pytest

from nasbench.cli import main
from nasbench.luts import get_device, run_profile
from nasbench.spaces.darts import DeployConfig, enumerate_instances
from profilers.latency import LatencySettings
from profilers.lut import LUT

TINY = DeployConfig(channels=4, layers=3, input_size=8, batches=(1, 2))
FAST = LatencySettings(warmup=1, warmup_s=0.0, min_repeats=3, max_repeats=5, time_cap_s=0.05)
TINY_ARGS = ["--channels", "4", "--layers", "3", "--input", "8", "--time-cap", "0.05",
             "--batch", "1,2", "--min-repeats", "3", "--max-repeats", "5"]


@pytest.fixture(scope="module")
def tiny_lut_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("lut") / "tiny.json"
    run_profile(get_device("cpu"), TINY, out, settings=FAST)
    return out


def test_profile_covers_every_instance_at_every_batch(tiny_lut_path):
    lut = LUT.load(tiny_lut_path)
    keys = [i.key for i in enumerate_instances(TINY)]
    assert len(lut.entries) == 2 * len(keys)
    for b in (1, 2):
        assert lut.missing(keys, b) == []
    e = lut.entry(keys[0], 1)
    lat = e["latency_ms"]
    assert 0 < lat["p5"] <= lat["median"] <= lat["p95"]
    assert lat["repeats"] >= 3 and lat["cv"] >= 0
    assert e["latency_source"] == "wall-clock"
    # no sensor here: energy is null with the reason, never 0
    assert e["energy_j"] is None and e["energy_reason"]
    assert e["memory_method"] == "cpu-rss-hwm"
    p = lut.provenance
    assert p["device"]["kind"] == "cpu" and p["threads"] >= 1
    assert p["deploy"]["channels"] == 4 and p["batches"] == [1, 2]
    assert p["settings"]["max_repeats"] == 5 and p["versions"]["torch"]


def test_resume_keeps_measured_entries(tmp_path):
    out = tmp_path / "r.json"
    calls = []

    def stop_after_three(done, total, label):
        calls.append(done)
        if done == 3 and label:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_profile(get_device("cpu"), TINY, out, settings=FAST, progress=stop_after_three)
    partial = LUT.load(out)
    assert len(partial.entries) == 3
    lut = run_profile(get_device("cpu"), TINY, out, settings=FAST, resume=True)
    assert len(lut.entries) == 2 * len(enumerate_instances(TINY))
    for k, v in partial.entries.items():  # not measured again (only drift-corrected)
        e = lut.entries[k]
        assert e["raw_latency_ms"] == v["latency_ms"] and e["anchored"] == v["anchored"]
    assert "resumed" in lut.provenance


def test_resume_refuses_other_network(tmp_path, tiny_lut_path):
    from nasbench.errors import UserError
    other = DeployConfig(channels=8, layers=3, input_size=8)
    out = tmp_path / "x.json"
    out.write_bytes(tiny_lut_path.read_bytes())
    with pytest.raises(UserError, match="deploy differs"):
        run_profile(get_device("cpu"), other, out, settings=FAST, resume=True)


def test_cli_profile_show_and_diff(tmp_path, tiny_lut_path, capsys):
    out = tmp_path / "cli.json"
    assert main(["profile", "--device", "cpu", "--out", str(out), "--quiet", *TINY_ARGS]) == 0
    assert LUT.load(out).entries
    assert main(["lut", "show", str(out), "--csv", "--op", "sep_conv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert csv[0].startswith("key,op,") and len(csv) == 1 + 2 * 2 * 5  # ops x shapes x batches
    assert main(["lut", "show", str(out), "--json", "--batch", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["batch"] == 2 for r in rows)
    # a regression of 3x on one entry fails the pipeline; without --fail it reports only
    slow = LUT.load(out)
    k = next(iter(slow.entries))
    slow.entries[k]["latency_ms"]["median"] *= 3
    slow.save(tmp_path / "slow.json")
    assert main(["lut", "diff", str(out), str(tmp_path / "slow.json"), "--quiet"]) == 0
    assert main(["lut", "diff", str(out), str(tmp_path / "slow.json"), "--fail"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["lut", "diff", str(out), str(out), "--fail", "--threshold", "5%"]) == 0


@pytest.mark.parametrize("args,msg", [
    (["profile", "--device", "rx580"], "preset 'rx580' needs"),
    (["profile", "--device", "quantum"], "unknown device"),
    (["profile", "--device", "cuda:3"], "no cuda:3 device"),
    (["profile", "--batch", "0"], "positive"),
    (["profile", "--space", "nope"], "unknown space"),
    (["profile", "--layers", "2"], "at least 3"),
    (["profile", "--time-cap", "0"], "must be positive"),
    (["profile", "--resume", "--out", "/nonexistent/x.json"], "does not exist"),
    (["lut", "show", "/nonexistent.json"], "not found"),
    (["lut", "diff", "a.json", "b.json", "--threshold", "lots"], "threshold"),
    (["lut", "show", "x.json", "--sort", "nope"], "not found"),
    (["profile", "--no-such-option"], "No such option"),
])
def test_bad_input_is_one_line_and_exit_2(args, msg, capsys):
    assert main(args) == 2
    e = capsys.readouterr().err.strip()
    assert msg in e
    assert len(e.splitlines()) <= 2  # one line (rich may wrap a long one at 80 columns)
    assert "Traceback" not in e


def test_rx580_absent_exits_2_listing_devices():
    r = subprocess.run([sys.executable, "-m", "nasbench", "profile", "--device", "rx580"],
                       capture_output=True, text=True, env={"COLUMNS": "400", "PATH": ""})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "cpu (" in line
    import importlib.util
    if importlib.util.find_spec("pyopencl"):
        assert "opencl:0:0" in line


def test_profile_records_machine_state_and_warns_when_busy(tmp_path, monkeypatch, capsys):
    import json

    import profilers.machine as machine
    from nasbench.cli import main as cli_main
    monkeypatch.setattr(machine, "busy_processes", lambda *a, **k: [
        {"pid": 4242, "name": "hog", "cpu_percent": 97.0}])
    out = tmp_path / "lut.json"
    assert cli_main(["profile", "--out", str(out), "--quiet", "--channels", "4",
                     "--layers", "3", "--input", "8", "--time-cap", "0.02",
                     "--min-repeats", "3", "--max-repeats", "5"]) == 0
    prov = json.loads(out.read_text())["provenance"]
    assert prov["machine_at_start"]["loaded"] is True
    assert prov["machine_at_start"]["busy"][0]["name"] == "hog"
    assert "machine_at_end" in prov and "noisy_entries" in prov
    assert prov["affinity"] and len(prov["affinity"]) == prov["threads"]
    err = capsys.readouterr().err
    assert "warning: the machine is busy" in err and "hog (pid 4242" in err


def test_entries_measured_under_load_are_flagged_and_remeasured(tmp_path, capsys):
    """A competitor that runs through the whole profile (bounded to 30 s): every entry is
    re-measured once, stays flagged `under_load`, and the profile warns."""
    import time

    from tests.test_validate import _bounded_load
    out = tmp_path / "lut.json"
    load = _bounded_load(30.0, 1)
    t0 = time.time()
    try:
        time.sleep(1.5)                      # let the monitor see it from the start
        rc = main(["profile", "--out", str(out), "--quiet", "--channels", "4",
                   "--layers", "3", "--input", "8", "--time-cap", "0.05",
                   "--min-repeats", "10", "--max-repeats", "20", "--rounds", "1"])
    finally:
        load[0].terminate()
        load[0].wait(timeout=35)
    assert time.time() - t0 < 90
    assert rc == 0
    lut = json.loads(out.read_text())
    # every entry measured under load was measured again at the end; those still under
    # load then keep the flag (the load may have ended by the time of the re-measure)
    seen = [e for e in lut["entries"].values() if isinstance(e.get("remeasured"), dict)]
    assert seen and all(e["remeasured"]["first_under_load"][0]["cpu_percent"] > 20
                        for e in seen)
    flagged = [e for e in lut["entries"].values() if e.get("under_load")]
    assert all(isinstance(e.get("remeasured"), dict) for e in flagged)
    assert lut["provenance"]["entries_under_load"] == len(flagged)
    if flagged:
        assert "measured while other processes were busy" in capsys.readouterr().err


def test_rounds_keep_the_median_round(tmp_path):
    """With rounds=3 every entry is measured three times, round-robin over the whole
    profile; the kept statistics are those of the median round."""
    deploy = DeployConfig(channels=4, layers=3, input_size=8)
    settings = LatencySettings(time_cap_s=0.03, min_repeats=3, max_repeats=10, rounds=3)
    lut = run_profile(get_device("cpu"), deploy, tmp_path / "r.json", settings=settings)
    for e in lut.entries.values():
        assert len(e["rounds_ms"]) == 3 and "rounds_pending" not in e
        if isinstance(e.get("remeasured"), dict):
            continue      # measured again at the end: another process was busy
        # the median round by ratio to the drift anchor; its measured median is kept raw
        assert e["anchored"]["ratio"] == sorted(e["rounds_ratio"])[1]
        assert e["raw_latency_ms"]["median"] in e["rounds_ms"]
        assert e["round_spread"] == pytest.approx(max(e["rounds_ratio"]) /
                                                  min(e["rounds_ratio"]) - 1)
    plain = run_profile(get_device("cpu"), deploy, tmp_path / "p.json",
                        settings=LatencySettings(time_cap_s=0.03, min_repeats=3,
                                                 max_repeats=10, rounds=3, anchor=False))
    for e in plain.entries.values():
        if not isinstance(e.get("remeasured"), dict):
            assert e["latency_ms"]["median"] == sorted(e["rounds_ms"])[1]


def test_combine_rounds_discards_one_slow_round():
    from profilers.build import _combine_rounds

    def entry(ms):
        return {"latency_ms": {"median": ms, "cv": 0.01}}
    e = _combine_rounds([entry(1.0), entry(1.9), entry(1.02)], 3)
    assert e["latency_ms"]["median"] == 1.02 and e["rounds_ms"] == [1.0, 1.9, 1.02]
    part = _combine_rounds([entry(1.0)], 3)
    assert part["rounds_pending"] == 2
