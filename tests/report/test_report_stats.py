"""The report's statistics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.report import stats

T2 = 4.302653  # t(0.975, 2 df), from tables


def test_ci_uses_t_distribution() -> None:
    assert stats.ci95_halfwidth([0.5]) == 0.0
    # n=2: t(0.975, 1) = 12.706; std = 0.0707; se = 0.05
    assert stats.ci95_halfwidth([0.45, 0.55]) == pytest.approx(12.706 * 0.05, rel=1e-3)


def test_paired_difference_pairs_by_seed() -> None:
    # seed 3 has no partner and b is given out of order: diffs (seeds 0, 1, 2) = .02, .01, .04
    a = {0: 0.80, 1: 0.82, 2: 0.84, 3: 0.90}
    b = {2: 0.80, 0: 0.78, 1: 0.81}
    d = stats.paired_difference(a, b)
    # mean .023333; sd = sqrt((.00333^2 + .01333^2 + .01667^2) / 2) = .015275; se = .0088192
    assert d.n == 3
    assert d.mean == pytest.approx(0.0233333, abs=1e-6)
    assert d.low == pytest.approx(0.0233333 - T2 * 0.0088192, abs=1e-5)  # -0.014613
    assert d.high == pytest.approx(0.0233333 + T2 * 0.0088192, abs=1e-5)  # 0.061279
    # t = 2.6458 = sqrt(7) with 2 df: p = 1 - t / sqrt(t^2 + 2) = 1 - sqrt(7) / 3
    assert d.p_value == pytest.approx(1 - math.sqrt(7) / 3, abs=1e-6)


def test_no_spread_and_too_few_seeds() -> None:
    const = stats.paired_difference({0: 0.9, 1: 0.8}, {0: 0.8, 1: 0.7})
    assert (const.low, const.high, const.p_value) == pytest.approx((0.1, 0.1, 0.0))
    same = stats.paired_difference({0: 0.9, 1: 0.8}, {0: 0.9, 1: 0.8})
    assert same.p_value == 1.0 and same.contains(0.0)
    one = stats.paired_difference({0: 0.9, 1: 0.8}, {1: 0.7})
    assert one.n == 1 and one.mean == pytest.approx(0.1) and not one.defined


def test_mark_tied_with_the_best() -> None:
    entries = {
        "B": {0: 0.91, 1: 0.88, 2: 0.92},  # mean .90333: B - A = .01, -.03, 0
        "A": {0: 0.90, 1: 0.91, 2: 0.92},  # best, mean .91
        "C": {0: 0.80, 1: 0.82, 2: 0.81},  # C - A = -.10, -.09, -.11
        "D": {0: 0.70},  # one seed: no test possible
    }
    out = {c.entry: c for c in stats.mark_tied(entries)}
    assert [c.entry for c in stats.mark_tied(entries)] == ["A", "B", "C", "D"]
    assert out["A"].is_best and out["A"].tied and out["A"].diff.mean == 0
    # B: mean -.006667, sd .020817, se .012019 -> [-.05838, .04505]: tied
    assert out["B"].diff.low == pytest.approx(-0.0066667 - T2 * 0.0120185, abs=1e-5)
    assert out["B"].diff.high == pytest.approx(-0.0066667 + T2 * 0.0120185, abs=1e-5)
    assert out["B"].tied and not out["B"].is_best
    # C: mean -.10, sd .01, se .0057735 -> [-.12484, -.07516]: below the best
    assert out["C"].diff.high == pytest.approx(-0.10 + T2 * 0.0057735, abs=1e-5)
    assert not out["C"].tied
    assert out["D"].tied and out["D"].diff.n == 1  # not separated from the best


def test_slope_interval() -> None:
    # x 0..3, y 1, 3, 2, 5: Sxx = 5, Sxy = 5.5 -> slope 1.1; SSE = 2.7, s^2 = 1.35,
    # se(slope) = sqrt(1.35 / 5) = .519615; half-width t(2) * se = 2.235722
    est = stats.slope_interval([0, 1, 2, 3], [1, 3, 2, 5])
    assert est.mean == pytest.approx(1.1)
    assert est.low == pytest.approx(1.1 - T2 * 0.519615, abs=1e-5)  # -1.135722
    assert est.high == pytest.approx(1.1 + T2 * 0.519615, abs=1e-5)  # 3.335722
    assert est.n == 4
    assert not stats.slope_interval([2, 2, 2], [1, 2, 3]).defined  # one x value
    assert not stats.slope_interval([1, 2], [1, 2]).defined  # no residual df


def test_bootstrap_interval() -> None:
    # two seeds [0, 1], statistic = mean: resamples give 0, .5, 1 with p = 1/4, 1/2, 1/4
    est = stats.bootstrap_interval(np.array([0.0, 1.0]), lambda a: float(a.mean()))
    assert (est.mean, est.low, est.high) == (0.5, 0.0, 1.0)
    again = stats.bootstrap_interval(np.array([0.0, 1.0, 3.0]), lambda a: float(a.mean()))
    assert again == stats.bootstrap_interval(np.array([0.0, 1.0, 3.0]), lambda a: float(a.mean()))
    assert 0.0 <= again.low < again.mean < again.high <= 3.0
    assert not stats.bootstrap_interval(np.array([1.0]), lambda a: float(a.mean())).defined


@pytest.mark.parametrize(
    "low, high, direction, verdict",
    [
        (0.1, 2.0, 1, "reproduced"),
        (-2.0, -0.1, 1, "not reproduced"),  # excludes 0 on the wrong side
        (-0.4, 0.3, 1, "not reproduced"),  # inside the +/-0.5 band: no practical effect
        (-1.0, 2.0, 1, "inconclusive"),
        (-0.6, 0.3, 1, "inconclusive"),  # reaches out of the band
        (-2.0, -0.1, -1, "reproduced"),  # the paper claims a decrease
        (0.1, 2.0, -1, "not reproduced"),
        (math.nan, math.nan, 1, "inconclusive"),
    ],
)
def test_trend_verdict(low: float, high: float, direction: int, verdict: str) -> None:
    assert stats.trend_verdict(low, high, direction) == verdict


def test_seeds_for_halfwidth() -> None:
    # sd 2: t(0.975, 17) * 2 / sqrt(18) = 0.995 <= 1, and 17 seeds give 1.028
    assert stats.seeds_for_halfwidth(2.0, 1.0) == 18
    assert stats.seeds_for_halfwidth(0.1, 1.0) == 2
    assert stats.seeds_for_halfwidth(float("nan"), 1.0) is None
    assert stats.seeds_for_halfwidth(100.0, 1.0, most=50) is None
