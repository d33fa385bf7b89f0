"""The drift check's estimators against hand computations, and one short real run."""

import pytest

from nasbench.diagnostics.drift_check import agreement, main, round_estimates


def test_round_estimates_by_hand():
    # anchor levels 1, 2, 3 ms around two forwards of 10 and 20 ms
    e = round_estimates([10.0, 20.0], [1.0, 2.0, 3.0], [1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    assert e["plain"] == 15.0
    assert e["ratio_of_medians"] == pytest.approx(15.0 / 2.0)
    assert e["paired"] == pytest.approx((10.0 / 1.0 + 20.0 / 2.0) / 2)
    assert e["bracketed"] == pytest.approx((10.0 / 1.5 + 20.0 / 2.5) / 2)


def test_agreement_by_hand():
    g = agreement([100.0, 104.0, 96.0, 120.0])       # median 102
    assert g["rounds"] == 4
    assert g["within_5pct"] == 0.5 and g["within_10pct"] == 0.75    # 2 %, 2 %, 5.9 %, 17.6 %
    # mean 105, deviations -5, -1, -9, 15: population std sqrt(332 / 4)
    assert g["cv"] == pytest.approx(83 ** 0.5 / 105)


def test_short_real_run_prints_every_estimator(capsys):
    assert main(["--seconds", "0.2", "--calls", "2", "--anchors", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for k in ("plain", "ratio_of_medians", "paired", "bracketed"):
        assert k in out


def test_bad_arguments_exit_with_a_message():
    with pytest.raises(SystemExit) as e:
        main(["--calls", "0"])
    assert e.value.code == 2
