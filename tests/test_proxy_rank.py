"""The proxy-budget ranking diagnostic (nasbench.diagnostics.proxy_rank): its rank
statistics against hand values, and a tiny end-to-end run that resumes."""

import json

import pytest

from nasbench.diagnostics.proxy_rank import main, rank_agreement, separable_swaps


def test_rank_agreement_against_hand_values():
    same = rank_agreement([1, 2, 3, 4], [10, 20, 30, 40], boot=200)
    assert same["kendall_tau"] == pytest.approx(1.0) and same["spearman"] == 1.0
    assert same["tau_ci95"] == [1.0, 1.0]
    # one swapped pair of 6: tau = (5 - 1) / 6
    one = rank_agreement([1, 2, 3, 4], [10, 30, 20, 40], boot=200)
    assert one["kendall_tau"] == pytest.approx(4 / 6)
    lo, hi = one["tau_ci95"]
    assert lo < one["kendall_tau"] <= hi


def test_separable_swaps_count_only_pairs_the_long_budget_separates():
    long = [{"acc": 50.0, "ci95": [45.0, 55.0]}, {"acc": 60.0, "ci95": [56.0, 64.0]},
            {"acc": 52.0, "ci95": [47.0, 55.5]}]
    # separable pairs: (0, 1), swapped by the short budget; (1, 2), in the same order.
    # (0, 2) is swapped too, but the long budget cannot tell them apart
    assert separable_swaps([70.0, 65.0, 60.0], long) == (1, 2)


def test_tiny_run_ranks_and_resumes(tmp_path, capsys):
    args = ["--dataset", "synthetic", "--out", str(tmp_path), "--sampled", "1",
            "--factor", "2", "--epochs", "1", "--max-steps", "2", "--channels", "4",
            "--layers", "3", "--threads", "1"]
    assert main(args) == 0
    res = json.loads((tmp_path / "proxy_rank.json").read_text())
    assert len(res["runs"]) == 10                 # 4 references + 1 sample, two budgets
    assert res["runs"]["long/resnet20"]["steps"] == 2 * res["runs"]["short/resnet20"]["steps"]
    assert -1 <= res["agreement"]["kendall_tau"] <= 1 and res["agreement"]["n"] == 5
    capsys.readouterr()
    assert main(args) == 0                        # everything reused: nothing trained
    assert "[1/" not in capsys.readouterr().out
    assert main(args[:-2] + ["--factor", "1"]) == 2
