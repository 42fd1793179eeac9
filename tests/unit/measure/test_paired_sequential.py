"""Sequential A/B: pairs taken in blocks stop once the answer is clear, and say how many they
used; an unclear comparison runs to its bound."""

from __future__ import annotations

import itertools

from perfsuite.measure.paired import Sequential, alternate, clear_answer, judge_pairs

RULE = Sequential(limit=0.03, min_pairs=30, block=10, look_confidence=0.999)


def side(ms_values):
    values = itertools.cycle(ms_values)

    def measure(rounds):
        return [next(values) / 1e3 for _ in range(rounds)]
    return measure


def test_a_clearly_slower_side_stops_at_the_first_look():
    trials = alternate(side([1.0, 1.01, 0.99]), side([1.2, 1.21, 1.19]), 150, 1, "e2e", RULE)
    assert len(trials.base_ms) == 30
    assert trials.stopped == "clearly slower than +3%"
    verdict = judge_pairs("m", "main", trials, 0.03)
    assert verdict.failed and verdict.pairs == 30
    assert "30 of 150 ABBA pairs, clearly slower than +3%" in verdict.describe()


def test_identical_sides_stop_once_clearly_within_the_limit():
    trials = alternate(side([1.0, 1.01, 0.99, 1.005]), side([1.0, 0.99, 1.01, 1.0]), 150, 1,
                       "e2e", RULE)
    assert len(trials.base_ms) == 30 and trials.stopped == "clearly within +3%"
    assert not judge_pairs("m", "main", trials, 0.03).failed


def test_a_change_at_the_limit_runs_to_the_bound():
    # every ratio 1.03 +- 3%: neither bound clears the limit at any look
    trials = alternate(side([1.0]), side([1.0, 1.06, 1.03]), 150, 1, "e2e", RULE)
    assert (len(trials.base_ms), trials.stopped, trials.bound) == (150, "", 150)
    assert "150 ABBA pairs;" in judge_pairs("m", "main", trials, 0.03).describe()


def test_looks_come_only_every_block_from_min_pairs():
    looks = []
    rule = Sequential(0.03, 30, 10, 0.999)
    for n in range(1, 80):
        base, current = [1.0] * n, [1.0] * n
        if clear_answer(base, current, rule):
            looks.append(n)
    assert looks[0] == 30  # nothing is decided before min_pairs
    trials = alternate(side([1.0]), side([1.0]), 100, 1, "e2e", Sequential(0.03, 35, 10))
    assert len(trials.base_ms) == 35


def test_without_a_rule_every_pair_is_taken():
    trials = alternate(side([1.0]), side([2.0]), 40, 1, "e2e")
    assert len(trials.base_ms) == 40 and trials.stopped == ""


def test_a_slow_comparison_stops_at_the_first_look_past_its_time():
    now = [0.0]

    def slow_side(ms):
        def measure(rounds):
            now[0] += rounds * ms / 1e3
            return [ms / 1e3] * rounds
        return measure

    # every ratio 1.03: never clear; each pair costs 20.3 ms of the clock, 2 s allowed
    trials = alternate(slow_side(10.0), slow_side(10.3), 300, 1, "e2e", RULE, max_seconds=2.0,
                       clock=lambda: now[0])
    assert len(trials.base_ms) == 100  # 100 pairs of 20.3 ms: the first look past 2 s
    assert trials.stopped == "its 2 s of pairs spent"
    assert "100 of 300 ABBA pairs, its 2 s of pairs spent" in judge_pairs(
        "m", "main", trials, 0.03).describe()
