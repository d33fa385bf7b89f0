"""Mechanisms behind bad input and faults: unrelated LUTs are not diffed, a destination
that cannot be written fails before any work, a damaged checkpoint is one line, and
SIGTERM is handled as Ctrl-C (checkpoint, then exit)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nasbench.cli import main
from nasbench.searchers.darts_config import DARTSConfig
from profilers.lut import LUT
from tests.test_runner import TINY, write_lut


def _one_line_error(capsys, args, msg, rc=2):
    capsys.readouterr()
    assert main(args) == rc, args
    err = capsys.readouterr().err.strip()
    assert msg in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_lut_diff_refuses_unrelated_tables_and_fails_on_removed_entries(tmp_path, capsys):
    cfg = DARTSConfig.from_preset("quick", "darts", **TINY)
    a = write_lut(tmp_path / "a.json", cfg)
    b = write_lut(tmp_path / "b.json", cfg.replace(eval_channels=8))   # another network
    _one_line_error(capsys, ["lut", "diff", str(a), str(b), "--fail"], "deploy network")
    assert main(["lut", "diff", str(a), str(b), "--allow-different", "-q"]) in (0, 1)
    other = write_lut(tmp_path / "c.json", cfg, device_id="gpu:7")
    _one_line_error(capsys, ["lut", "diff", str(a), str(other)], "device")
    fewer = LUT.load(a)
    fewer.entries.pop(next(iter(fewer.entries)))
    fewer.save(tmp_path / "fewer.json")
    assert main(["lut", "diff", str(a), str(tmp_path / "fewer.json"), "-q"]) == 0
    assert main(["lut", "diff", str(a), str(tmp_path / "fewer.json"), "--fail", "-q"]) == 1


def test_unwritable_destinations_fail_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")                  # a folder cannot be made under a file
    cfg = DARTSConfig.from_preset("quick", "darts", **TINY)
    lut = write_lut(tmp_path / "lut.json", cfg)
    t0 = time.time()
    _one_line_error(capsys, ["search", "--dataset", "synthetic", "--lut", str(lut),
                             "--out", str(blocker / "runs"), "-q"], "not writable")
    _one_line_error(capsys, ["profile", "--device", "cpu", "--out",
                             str(blocker / "lut.json"), "-q"], "not writable")
    assert time.time() - t0 < 30             # nothing was searched or measured


def test_a_damaged_checkpoint_is_one_line(tmp_path, capsys):
    from nasbench.api import search_architecture
    cfg = DARTSConfig.from_preset("quick", "darts", **{**TINY, "out": str(tmp_path / "r"),
                                                       "measure": False})
    cfg = cfg.replace(lut=str(write_lut(tmp_path / "lut.json", cfg)))
    r = search_architecture(cfg, quiet=True, _interrupt_after_steps=2)
    ck = r.run_dir / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:100])    # truncated, as by a full disk
    _one_line_error(capsys, ["search", "--resume", str(r.run_dir), "-q"], "damaged")


def test_sigterm_checkpoints_like_ctrl_c(tmp_path):
    cfg = DARTSConfig.from_preset("quick", "darts", **TINY)
    lut = write_lut(tmp_path / "lut.json", cfg)
    args = [sys.executable, "-m", "nasbench", "search", "--dataset", "synthetic",
            "--input", "8", "--channels", "4", "--layers", "3", "--eval-channels", "4",
            "--eval-layers", "3", "--epochs", "200", "--steps-per-epoch", "3",
            "--batch-size", "8", "--train-epochs", "0", "--references", "none",
            "--threads", "1", "--lut", str(lut), "--out", str(tmp_path / "runs"), "-q"]
    env = {**os.environ, "NASBENCH_CACHE_DIR": str(tmp_path / "cache")}
    p = subprocess.Popen(args, cwd=Path(__file__).parents[1], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:              # wait until an epoch has been written
        hist = list((tmp_path / "runs").glob("*/history.json"))
        if hist:
            break
        time.sleep(0.5)
    assert hist, p.communicate(timeout=5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err.decode()[-2000:]
    run = hist[0].parent
    res = json.loads((run / "result.json").read_text())
    assert res["status"] == "interrupted" and (run / "checkpoint.pt").is_file()
    assert "Traceback" not in err.decode()


def test_ctrl_c_inside_a_darts_step_waits_for_both_halves(tmp_path, monkeypatch):
    """An interrupt landing after the alpha step and before the weight step is held
    until the weight step is done, so resume equals the uninterrupted run."""
    import torch

    from nasbench.api import search_architecture
    from nasbench.oneshot.architect import Architect
    cfg = DARTSConfig.from_preset("quick", "darts", **{**TINY, "out": str(tmp_path / "r"),
                                                       "measure": False})
    cfg = cfg.replace(lut=str(write_lut(tmp_path / "lut.json", cfg)))
    full = search_architecture(cfg, quiet=True)
    real_step, calls = Architect.step, []

    def step_then_ctrl_c(self, *a, **k):
        out = real_step(self, *a, **k)
        calls.append(1)
        if len(calls) == 2:                  # Ctrl-C between the two halves of step 2
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Architect, "step", step_then_ctrl_c)
    part = search_architecture(cfg.replace(out=str(tmp_path / "p")), quiet=True)
    assert part.status == "interrupted"
    ck = torch.load(part.run_dir / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 2 and ck["acc"]["arch_steps"] == 2     # both halves, twice
    monkeypatch.setattr(Architect, "step", real_step)
    done = search_architecture(None, resume=part.run_dir, quiet=True)
    assert done.genotype == full.genotype
    h_full = json.loads((full.run_dir / "history.json").read_text())
    h_done = json.loads((done.run_dir / "history.json").read_text())
    assert h_full[-1]["alphas"] == h_done[-1]["alphas"]


def test_two_writers_of_one_file_the_second_fails_at_once(tmp_path):
    from nasbench.errors import UserError
    from nasbench.files import exclusive
    target = tmp_path / "lut.json"
    with exclusive(target, "LUT"):
        try:
            with exclusive(target, "LUT"):
                raise AssertionError("a second writer got the lock")
        except UserError as e:
            assert "another process" in str(e) and ".lut.json.lock" in str(e)
    with exclusive(target, "LUT"):           # released: free again
        pass


def test_an_incomplete_lut_is_refused_and_the_cache_finishes_it(tmp_path, monkeypatch,
                                                                  capsys):
    import nasbench.luts as prof
    from nasbench.errors import UserError
    from nasbench.run.runner import run_search
    cfg = DARTSConfig.from_preset("quick", "darts", **{**TINY, "out": str(tmp_path / "r")})
    path = write_lut(tmp_path / "lut.json", cfg)
    lut = LUT.load(path)
    next(iter(lut.entries.values()))["rounds_pending"] = 2      # a killed profile
    lut.save(path)
    try:
        run_search(cfg.replace(lut=str(path)), quiet=True)
        raise AssertionError("an incomplete LUT was used")
    except UserError as e:
        assert "incomplete" in str(e) and "--resume" in str(e)
    _one_line_error(capsys, ["lut", "show", str(path)], "incomplete", rc=0)
    # the per-user cache: an incomplete cached LUT is profiled again (resumed)
    monkeypatch.setattr(prof, "cached_lut_path", lambda dev, deploy: path)
    resumed = []
    monkeypatch.setattr(prof, "run_profile", lambda *a, **k: resumed.append(k["resume"]))
    assert prof.ensure_lut("cpu", cfg.deploy(), quiet=True) == path
    assert resumed == [True]


def test_profile_refuses_non_finite_settings(tmp_path, capsys):
    for opt in ("--time-cap", "--ci-target", "--cv-threshold"):
        _one_line_error(capsys, ["profile", "--device", "cpu", opt, "nan", "--out",
                                 str(tmp_path / "lut.json"), "-q"], "finite")
    assert not (tmp_path / "lut.json").exists()


def test_the_run_lock_stays_inside_the_run_directory(tmp_path):
    from nasbench.api import search_architecture
    cfg = DARTSConfig.from_preset("quick", "darts", **{**TINY, "out": str(tmp_path / "r"),
                                                       "measure": False, "train_epochs": 0})
    cfg = cfg.replace(lut=str(write_lut(tmp_path / "lut.json", cfg)))
    r = search_architecture(cfg, quiet=True)
    assert [p.name for p in (tmp_path / "r").iterdir()] == [r.run_dir.name]
    assert (r.run_dir / ".lock").exists()


def test_refused_commands_leave_no_folder_behind(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line_error(capsys, ["bench", "--benchmark-dir", str(tmp_path / "none")],
                    "not a folder")
    _one_line_error(capsys, ["search", "--space", "nb201", "--method", "random",
                             "--device", "hw-nas-bench:nope", "--benchmark-dir",
                             str(tmp_path)], "unknown HW-NAS-Bench device")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_damaged_state_beside_a_lut_is_named_not_ignored(tmp_path, capsys):
    """A damaged calibration changes every prediction: one line naming it (error). A
    damaged cache only costs time: one warning line naming it, then it is rebuilt."""
    import pytest

    from nasbench.errors import UserError
    from nasbench.predict.calibration import calibration_path, load_calibration
    cfg = DARTSConfig.from_preset("quick", "darts", **TINY)
    lut = LUT.load(write_lut(tmp_path / "a.json", cfg))
    assert load_calibration(lut) is None                        # none yet: fine
    calibration_path(lut.path, 1).write_text('{"coef": ')
    with pytest.raises(UserError, match=r"calibration file .*calib-b1.json is damaged.*"
                                        r"nasbench lut calibrate"):
        load_calibration(lut)
    from kernels.tuning import Tuner, _slug

    class Runtime:
        device_key = "pocl:cpu"

    f = tmp_path / f"opencl-tuning-{_slug('pocl:cpu')}.json"
    f.write_text("{not json")
    capsys.readouterr()
    t = Tuner(Runtime(), tmp_path)
    err = capsys.readouterr().err.strip()
    assert t.entries == {} and str(f) in err and "tuned again" in err
    assert len(err.splitlines()) == 1


def test_doubts_travel_with_the_figures(tmp_path):
    """A LUT measured under load, or a measurement on a machine slower than at profile
    time, puts a warning in the result, its summary and its report."""
    from nasbench.run.result import SearchResult, summary_lines
    from nasbench.run.runner import drift_doubts
    from profilers.build import lut_doubts
    cfg = DARTSConfig.from_preset("quick", "darts", **TINY)
    lut = LUT.load(write_lut(tmp_path / "a.json", cfg))
    assert lut_doubts(lut) == []
    for e in list(lut.entries.values())[:3]:
        e["under_load"] = [{"name": "python", "pid": 1, "cpu": 90.0}]
    doubts = lut_doubts(lut)
    assert len(doubts) == 1 and doubts[0].startswith(f"3 of {len(lut.entries)} LUT entries")
    assert drift_doubts({"latency_ms": {"median": 10.0}, "latency_corrected_ms": 9.5}) == []
    slow = drift_doubts({"latency_ms": {"median": 15.0}, "latency_corrected_ms": 10.0})
    assert len(slow) == 1 and "1.50x slower" in slow[0]
    r = SearchResult(run_dir=tmp_path, method="darts", status="complete",
                     warnings=doubts + slow)
    lines = summary_lines(r)
    assert sum(line.startswith("warning: ") for line in lines) == 2
    assert r.to_dict()["warnings"] == doubts + slow
