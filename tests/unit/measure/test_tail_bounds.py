"""Tail percentiles' distribution-free bounds: the sample counts they need, their coverage on
known distributions, and what too few calls give."""

from __future__ import annotations

import math
import random

import pytest

from perfsuite.measure.latency_stats import p99_cell, samples_needed, summarize, tail_bound


def test_samples_needed_is_the_first_count_whose_maximum_bounds_the_percentile():
    for percentile in (90, 99):
        n = samples_needed(percentile)
        q = percentile / 100
        assert 1 - q**n >= 0.99 > 1 - q ** (n - 1)
    assert (samples_needed(99), samples_needed(90)) == (459, 44)


def test_too_few_calls_give_no_bound():
    bound = tail_bound([1.0] * 458, 99)
    assert not bound.supported and bound.high_ms is None
    assert "needs 459" in bound.describe()
    assert tail_bound([1.0] * 459, 99).supported


@pytest.mark.parametrize("n", [500, 2000])
def test_bounds_cover_the_true_percentile_at_their_confidence(n):
    rng = random.Random(n)
    true = -math.log(0.01)  # p99 of the unit exponential
    trials = 300
    above = below = 0
    for _ in range(trials):
        bound = tail_bound([rng.expovariate(1.0) for _ in range(n)], 99)
        assert bound.low_ms is not None and bound.high_ms is not None
        assert bound.low_ms <= bound.estimate_ms <= bound.high_ms
        above += bound.high_ms < true
        below += bound.low_ms > true
    # each side misses at most 1% of the time: 3 of 300 expected, 10 is far beyond chance
    assert above <= 10 and below <= 10


def test_the_table_cell_shows_the_bound_or_the_calls_needed():
    assert p99_cell(summarize([0.001] * 100)) == "needs 459 calls"
    many = summarize([0.001] * 990 + [0.005] * 10)
    assert many.p99_high_ms is not None
    assert p99_cell(many).startswith(f"{many.p99_ms:.3f} (<=")
    assert summarize([0.001] * 100).as_dict().get("p99_high_ms") is None
