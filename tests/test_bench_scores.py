"""Scores of a search against ground truth, checked against hand computations on a
four-cell table, and the true front of NAS-Bench-201 on a real device."""

import math
from pathlib import Path

import pytest

from nasbench.benchmarks.scores import Truth, score

# cells a..d: accuracy (%), cost (ms); the true front is a, b, c (d is dominated by b)
TABLE = Truth.of(["a", "b", "c", "d"], [90, 80, 70, 60], [10, 5, 2, 8])
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"


def test_truth_front_and_reference():
    assert TABLE.front.tolist() == [True, True, True, False]
    # worst value moved out by 10 % of the range: accuracy 60 - 3, cost 10 + 0.8
    assert TABLE.reference.tolist() == pytest.approx([57.0, 10.8])
    assert TABLE.best_under(6) == 80 and TABLE.best_under(1) != TABLE.best_under(1)


def test_scores_by_hand():
    s = score(TABLE, "b", target=6)
    # HV true: 33 x 0.8 + 23 x 5 + 13 x 3 = 180.4; found {b}: 23 x 5.8 = 133.4
    assert s["hv_true"] == pytest.approx(180.4) and s["hv"] == pytest.approx(133.4)
    assert s["hv_gap"] == pytest.approx(1 - 133.4 / 180.4)
    assert s["regret"] == 0.0 and s["met"] and s["front_found"] == 1
    # IGD: ranges 30 % and 8 ms; distances of a, b, c to b
    da = math.hypot(10 / 30, 5 / 8)
    dc = math.hypot(10 / 30, 3 / 8)
    assert s["igd"] == pytest.approx((da + 0 + dc) / 3)
    c = score(TABLE, "c", found=["d"], target=6)
    assert c["regret"] == pytest.approx(10.0)
    over = score(TABLE, "a", target=6)
    assert not over["met"] and math.isnan(over["regret"])
    full = score(TABLE, "a", found=["a", "b", "c", "d"])
    assert full["hv_gap"] == pytest.approx(0.0) and full["igd"] == 0.0


@pytest.mark.skipif(not (SHARED / "hw-nas-bench-cifar10.csv").is_file(),
                    reason="../shared/data/nb201 absent")
def test_nb201_true_front_on_a_real_device():
    from nasbench.benchmarks import NB201Bench
    b = NB201Bench(SHARED)
    acc, hw = b.accuracy["cifar10-test"], b.hardware("cifar10")["edgegpu_latency"]
    truth = Truth.of(list(acc.index), acc.to_numpy(), hw.loc[acc.index].to_numpy())
    front = [truth.ids[k] for k in range(len(truth.ids)) if truth.front[k]]
    best = max(truth.ids, key=lambda i: truth.point(i)[0])
    fastest = min(truth.ids, key=lambda i: (truth.point(i)[1], -truth.point(i)[0]))
    assert best in front and fastest in front and 5 < len(front) < 200
    assert score(truth, best, found=front)["hv_gap"] == pytest.approx(0.0)
