"""A/B's paired decision worked by hand: the order-statistic bound, one verdict's every field and
line, the statistic a comparison is shown by, the ABBA order and the host timer (closing gaps mutation testing
found; docs/mutation.md)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from perfsuite.measure.paired import (
    PairedTrials,
    alternate,
    headline,
    host_timed,
    judge_pairs,
    order_statistic_bound,
)


@pytest.mark.parametrize(("pairs", "confidence", "k"), [
    (10, 0.99, 0),  # P(B <= 0) = 1/1024 <= 1%; P(B <= 1) = 11/1024 > 1%
    (20, 0.99, 4),  # 6196/2^20 = 0.59%; 21700/2^20 = 2.07%
    (5, 0.99, -1),  # 1/32 > 1%: no bound at all
    (10, 0.95, 1),  # 11/1024 <= 5% < 56/1024
    (5, 0.95, 0),  # 1/32 <= 5% < 6/32
    (1, 0.5, 0),  # P(B <= 0) = 1/2 is not above 1 - 0.5: the bound holds at equality
    (3, 0.0, 3),  # no confidence asked: every order statistic qualifies, the largest is 3
])
def test_order_statistic_bound_by_hand(pairs, confidence, k):
    assert order_statistic_bound(pairs, confidence) == k


def test_order_statistic_bound_past_floating_point():
    """1100 pairs: 2.0 ** 1100 overflows a float; the bound is still the binomial law's."""
    from fractions import Fraction

    k = order_statistic_bound(1100, 0.99)
    tail = [Fraction(math.comb(1100, j), 2**1100) for j in range(k + 2)]
    assert sum(tail[:k + 1]) <= Fraction(1, 100) < sum(tail)
    assert 500 < k < 520  # the normal approximation: 550 - 2.33 x 16.6


RISING = PairedTrials("gpu", (1.0,) * 10, tuple(1 + i / 100 for i in range(10)))


def test_a_verdict_worked_by_hand():
    """Ratios 1.00 ... 1.09: k = 0, so the bounds are the extremes; the median of the logs lies
    between 1.04 and 1.05 (their geometric mean); resolution = exp(log 1.01 + half-width x
    (1 + z95/z99)) - 1 with half-width log(1.09)/2."""
    verdict = judge_pairs("m", "main", RISING, 0.01)
    assert (verdict.ratio, verdict.low, verdict.high) == \
        (pytest.approx(math.sqrt(1.04 * 1.05), rel=1e-12), 1.0, 1.09)
    assert (verdict.pairs, verdict.base_median_ms, verdict.current_median_ms) == \
        (10, 1.0, pytest.approx(1.045))
    half = math.log(1.09) / 2
    assert verdict.resolution == pytest.approx(
        math.expm1(math.log1p(0.01) + half * (1 + 1.6448536 / 2.3263479)), rel=1e-9)
    assert verdict.resolution == pytest.approx(0.0870910, abs=1e-7)
    assert (verdict.status, verdict.failed) == ("pass", False)
    assert verdict.width == pytest.approx(math.log(1.09))
    assert verdict.describe() == (
        "m GPU compute vs main ok: x1.045 [1.000, 1.090] (median ratio, 99% bounds over 10 "
        "ABBA pairs; 1.045 ms vs 1.000 ms); resolves +8.7%")


def test_a_regression_just_above_the_limit_and_one_at_it():
    above = judge_pairs("m", "main", PairedTrials("e2e", (2.0,) * 10, (2.0202,) * 10), 0.01)
    assert above.status == "regression" and above.failed and above.low == pytest.approx(1.0101)
    assert above.describe().startswith("m end to end vs main REGRESSED: x1.010 [1.010, 1.010]")
    at = judge_pairs("m", "main", PairedTrials("e2e", (1.0,) * 10, (1.01,) * 10), 0.01)
    assert at.status == "pass", "a lower bound equal to 1 + limit is not above it"


def test_too_few_pairs_give_no_bound_and_cannot_fail():
    verdict = judge_pairs("m", "main", PairedTrials("gpu", (1.0,) * 5, (3.0,) * 5), 0.01)
    assert (verdict.low, verdict.high, verdict.resolution) == (0.0, math.inf, math.inf)
    assert verdict.status == "pass" and verdict.width == math.inf


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_a_timing_that_is_not_finite_and_positive_fails(bad):
    verdict = judge_pairs("m", "main", PairedTrials("gpu", (1.0, 1.0), (1.0, bad)), 0.01)
    assert verdict.status == "not finite" and verdict.pairs == 2 and verdict.failed
    assert "NOT FINITE (a timing was NaN, infinite or not above 0)" in verdict.describe()
    empty = judge_pairs("m", "main", PairedTrials("gpu", (), ()), 0.01)
    assert empty.status == "not finite" and empty.pairs == 0


def test_a_comparison_is_shown_by_what_failed_else_by_its_finest_resolution():
    wide = judge_pairs("m", "main", RISING, 0.01)
    narrow = judge_pairs("m", "main", replace(RISING, statistic="e2e",
                                              current_ms=tuple(1 + i / 1000 for i in range(10))),
                         0.01)
    assert headline([wide, narrow]) is narrow and headline([narrow, wide]) is narrow
    assert headline([wide, replace(wide, statistic="e2e")]) is wide, "a tie: the first"
    slower = judge_pairs("m", "main", PairedTrials("e2e", (2.0,) * 10,
                                                   tuple(2.1 + i / 20 for i in range(10))), 0.01)
    assert slower.failed and slower.resolution > narrow.resolution
    assert headline([narrow, slower]) is slower, "a failure is shown whatever its resolution"


def test_abba_order_and_every_sample_kept():
    calls = []

    def side(name, seconds):
        def measure(rounds):
            calls.append(name)
            return [seconds] * (rounds - 1) + [seconds * 3]
        return measure

    trials = alternate(side("A", 0.001), side("B", 0.002), 3, 3, "e2e")
    assert calls == ["A", "B", "B", "A", "A", "B"]
    assert trials == PairedTrials("e2e", (1.0, 1.0, 1.0), (2.0, 2.0, 2.0),
                                  (1.0, 1.0, 3.0) * 3, (2.0, 2.0, 6.0) * 3, calls_per_trial=3)


def test_host_timed_reads_the_clock_around_each_call():
    ticks = iter([10.0, 10.5, 11.0, 12.0])
    measure = host_timed(lambda: None, lambda: next(ticks))
    assert measure(2) == [0.5, 1.0]


def test_the_half_width_is_between_the_bounds_not_around_one():
    """Ratios 1.10 ... 1.19: k = 0, bounds 1.10 and 1.19; half-width (log 1.19 - log 1.10)/2."""
    verdict = judge_pairs("m", "main", PairedTrials("gpu", (1.0,) * 10,
                                                    tuple(1.1 + i / 100 for i in range(10))), 0.01)
    assert (verdict.low, verdict.high) == (pytest.approx(1.1), pytest.approx(1.19))
    half = (math.log(1.19) - math.log(1.1)) / 2
    assert verdict.resolution == pytest.approx(
        math.expm1(math.log1p(0.01) + half * (1 + 1.6448536 / 2.3263479)), rel=1e-9)


def test_a_not_finite_verdict_keeps_its_names_and_warns_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a zero base divides by zero: refused, not warned
        verdict = judge_pairs("m", "main", PairedTrials("e2e", (0.0, 1.0), (0.0, 1.0)), 0.01)
        judge_pairs("m", "main", PairedTrials("e2e", (0.0,), (1.0,)), 0.01)
    assert (verdict.name, verdict.ref, verdict.statistic, verdict.status) == (
        "m", "main", "e2e", "not finite")
