"""Tests for reports.pareto: fronts against brute force, non-dominated sorting, hypervolume."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reports.pareto import (
    default_reference_point,
    dominates,
    hypervolume,
    non_dominated_mask,
    pareto_ranks,
)


def brute_force_front(points, senses):
    """Pure-Python O(n^2) definition: i is on the front iff no j dominates it."""
    sign = [1 if s == "min" else -1 for s in senses]
    pts = [[v * s for v, s in zip(row, sign, strict=True)] for row in points]
    out = []
    for i, a in enumerate(pts):
        dominated = False
        for j, b in enumerate(pts):
            if i != j and (all(y <= x for x, y in zip(a, b, strict=True))
                          and any(y < x for x, y in zip(a, b, strict=True))):
                dominated = True
                break
        out.append(not dominated)
    return np.array(out)


def random_points(rng, n, k):
    """Integer-valued points on a small grid, so ties and exact duplicates are common."""
    pts = rng.integers(0, 6, size=(n, k)).astype(float)
    dup = rng.integers(0, n, size=n // 5)
    pts[rng.integers(0, n, size=dup.size)] = pts[dup]
    return pts


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", range(8))
def test_front_matches_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    pts = random_points(rng, n, k)
    senses = [("min", "max")[int(b)] for b in rng.integers(0, 2, size=k)]
    np.testing.assert_array_equal(non_dominated_mask(pts, senses), brute_force_front(pts, senses))


def test_front_continuous_random_2d_large():
    rng = np.random.default_rng(1234)
    pts = rng.normal(size=(400, 2))
    pts[:50] = pts[50:100]  # exact duplicates
    senses = ["max", "min"]
    np.testing.assert_array_equal(non_dominated_mask(pts, senses), brute_force_front(pts, senses))


def test_duplicates_and_ties():
    pts = [[1, 5], [1, 5], [1, 6], [2, 4], [2, 4], [3, 4], [0, 9]]
    mask = non_dominated_mask(pts, ["min", "min"])
    assert mask.tolist() == [True, True, False, True, True, False, True]
    assert not dominates([1, 5], [1, 5], ["min", "min"])
    assert dominates([1, 5], [1, 6], ["min", "min"])


def test_nan_rows_are_excluded():
    pts = [[1.0, np.nan], [2.0, 2.0], [3.0, 3.0]]
    assert non_dominated_mask(pts, ["min", "min"]).tolist() == [False, True, False]
    assert pareto_ranks(pts, ["min", "min"]).tolist() == [-1, 0, 1]


@pytest.mark.parametrize("seed", range(5))
def test_ranks_peel_fronts(seed):
    rng = np.random.default_rng(seed)
    pts = random_points(rng, 40, 3)
    senses = ["max", "min", "min"]
    ranks = pareto_ranks(pts, senses)
    remaining = np.arange(len(pts))
    r = 0
    while remaining.size:
        front = brute_force_front(pts[remaining], senses)
        assert np.all(ranks[remaining[front]] == r)
        remaining = remaining[~front]
        r += 1


def test_empty_input():
    assert non_dominated_mask(np.empty((0, 2)), ["min", "max"]).shape == (0,)
    assert hypervolume(np.empty((0, 2)), [1, 1], ["min", "min"]) == 0.0


def test_hypervolume_2d_hand_computed():
    # accuracy (max, %) vs latency (min, ms), reference (0 %, 10 ms).
    # Points: (90, 8), (80, 4), (50, 2), plus a dominated (70, 5) and a duplicate.
    # Staircase (as minimisation of -acc): area = 2*50 + (4-2)*80 ... computed by strips:
    #   latency 2..4: best acc 50 -> 2*50 = 100
    #   latency 4..8: best acc 80 -> 4*80 = 320
    #   latency 8..10: best acc 90 -> 2*90 = 180      total 600
    pts = [[90, 8], [80, 4], [50, 2], [70, 5], [80, 4]]
    assert hypervolume(pts, [0, 10], ["max", "min"]) == pytest.approx(600.0)


def test_hypervolume_3d_hand_computed():
    # Two boxes against the origin-corner reference (minimise all, ref = (2, 2, 2)):
    # (0,1,1) -> box 2*1*1 = 2 ; (1,0,0) -> box 1*2*2 = 4 ; overlap 1*1*1 = 1 -> 5.
    pts = [[0, 1, 1], [1, 0, 0]]
    assert hypervolume(pts, [2, 2, 2], ["min"] * 3) == pytest.approx(5.0)
    # a point outside the reference box contributes nothing
    assert hypervolume(pts + [[3, 0, 0]], [2, 2, 2], ["min"] * 3) == pytest.approx(5.0)


@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_nd_against_grid_count(seed):
    """On an integer grid the exact volume equals the count of dominated unit cells."""
    rng = np.random.default_rng(seed)
    k = 3 if seed % 2 else 4
    pts = rng.integers(0, 5, size=(12, k)).astype(float)
    ref = np.full(k, 5.0)
    count = 0
    for cell in itertools.product(range(5), repeat=k):
        if np.any(np.all(pts <= np.array(cell), axis=1)):
            count += 1
    assert hypervolume(pts, ref, ["min"] * k) == pytest.approx(float(count))


def test_hypervolume_2d_matches_nd_path():
    rng = np.random.default_rng(7)
    pts = rng.uniform(0, 1, size=(30, 2))
    third = np.zeros((30, 1))
    hv2 = hypervolume(pts, [1.0, 1.0], ["min", "min"])
    hv3 = hypervolume(np.hstack([pts, third]), [1.0, 1.0, 1.0], ["min"] * 3)
    assert hv3 == pytest.approx(hv2)


def test_default_reference_point_is_worse_than_all():
    pts = [[90, 8], [50, 2]]
    ref = default_reference_point(pts, ["max", "min"])
    assert ref[0] < 50 and ref[1] > 8


def test_bad_sense():
    with pytest.raises(ValueError):
        non_dominated_mask([[1, 2]], ["min", "bigger"])
