"""Off a terminal, progress is plain lines at an interval (and at completion), so a
long job in a CI log or under nohup is never silent."""

from nasbench import progress
from nasbench.progress import PlainProgress, progress_bar


def test_plain_lines_at_the_interval_and_at_completion(capsys, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "time", lambda: clock[0])
    p = PlainProgress(interval=30)
    t = p.add("search", total=100)
    p.update(t, completed=10, info="loss 2.1")       # 0 s: not due
    clock[0] += 31
    p.update(t, completed=20, info="loss 1.9")       # 31 s: due
    clock[0] += 5
    p.update(t, completed=30)                        # 36 s: not due
    clock[0] += 10
    p.update(t, completed=100)                       # done: always said, once
    p.update(t, completed=100)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["search: 20/100 (20 %), 31 s elapsed, ETA 124 s; loss 1.9",
                   "search: 100/100 (100 %), 46 s elapsed; loss 1.9"]


def test_progress_bar_off_a_terminal_prints_plain_lines(capsys, monkeypatch):
    monkeypatch.setenv("NASBENCH_PROGRESS_S", "0")
    assert not progress.console.is_terminal            # pytest captures: not a TTY
    with progress_bar("profiling cpu") as cb:
        cb(1, 2, "conv")
        cb(2, 2, "pool")
    err = capsys.readouterr().err
    assert "profiling cpu: 1/2 (50 %)" in err and "profiling cpu: 2/2 (100 %)" in err
