from __future__ import annotations

import pytest

from perfsuite.measure.latency_stats import summarize
from perfsuite.measure.timing import INTERLEAVED_WARM_CALLS, interleaved_samples, warm_up


class FakeClock:
    """Advances by `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_warm_up_honours_min_runs_when_calls_are_slow():
    calls = []
    runs = warm_up(lambda: calls.append(1), min_seconds=0.2, min_runs=10, clock=FakeClock(1.0))
    assert runs == len(calls) == 10


def test_warm_up_honours_min_time_when_calls_are_fast():
    runs = warm_up(lambda: None, min_seconds=0.2, min_runs=10, clock=FakeClock(0.001))
    assert runs >= 199  # 200 ms of 1 ms clock steps


def test_summarize_hand_computed():
    samples = [0.001 * v for v in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]
    stats = summarize(samples, trials=2)
    assert stats.samples == 10
    assert stats.median_ms == pytest.approx(5.5)  # median of the trial medians 3 and 8
    assert stats.p90_ms == pytest.approx(7.1)  # median of the trial p90s 4.6 and 9.6
    assert stats.p99_ms == pytest.approx(9.91)  # over every call
    assert stats.min_ms == pytest.approx(1.0)
    assert stats.trial_medians_ms == pytest.approx((3.0, 8.0))
    assert stats.throughput_per_s == pytest.approx(1000 / 5.5)
    assert stats.cv == pytest.approx(2.8722813 / 5.5, rel=1e-6)


def test_median_is_the_judged_statistic_not_the_median_of_all_calls():
    # bimodal, as ONNX Runtime on a busy 2-core CPU: 9 fast calls and 6 slow ones, but two of
    # the three trials are mostly slow; the median of every call would say 1 ms
    fast, slow = 0.001, 0.003
    samples = [fast] * 5 + [fast, fast, slow, slow, slow] * 2
    stats = summarize(samples, trials=3)
    assert stats.trial_medians_ms == pytest.approx((1.0, 3.0, 3.0))
    assert stats.median_ms == pytest.approx(3.0)


def test_summarize_rejects_no_samples():
    with pytest.raises(ValueError, match="no latency samples"):
        summarize([])


class SpellClock:
    """A machine that runs every call in 1 ms, except in a slow spell of virtual time
    [`start`, `end`), where a call takes 3 ms; calls advance it, reading it does not."""

    def __init__(self, start: float, end: float) -> None:
        self.now, self.start, self.end = 0.0, start, end

    def __call__(self) -> float:
        return self.now

    def call(self) -> None:
        self.now += 0.003 if self.start <= self.now < self.end else 0.001


def spell_medians(passes: int) -> dict[str, float]:
    # three cases of 100 rounds (and 3 warm-up calls a visit): 0.31 s of 1 ms calls; the spell
    # (0.11-0.30 s) takes most of the middle case's rounds when each case is timed in one go
    clock = SpellClock(0.11, 0.30)
    calls = {name: clock.call for name in ("a", "b", "c")}
    samples = interleaved_samples(calls, rounds=100, passes=passes, clock=clock)
    assert {name: len(times) for name, times in samples.items()} == {"a": 100, "b": 100, "c": 100}
    return {name: sorted(times)[50] for name, times in samples.items()}


def test_a_slow_spell_moves_one_case_in_one_go_and_none_when_interleaved():
    in_one_go = spell_medians(passes=1)
    assert max(in_one_go.values()) == pytest.approx(0.003)  # the spell's case reads 3x
    interleaved = spell_medians(passes=10)
    assert list(interleaved.values()) == [pytest.approx(0.001)] * 3  # a part of each: out-voted


def test_interleaved_passes_visit_every_case_in_a_new_order_and_split_the_rounds():
    visits: list[str] = []
    calls = {name: (lambda name=name: visits.append(name)) for name in ("a", "b", "c")}
    heard: list[int] = []
    samples = interleaved_samples(calls, rounds=7, passes=3, clock=FakeClock(0.001),
                                  on_pass=heard.append)
    assert [len(samples[name]) for name in "abc"] == [7, 7, 7] and heard == [1, 2, 3]
    # a visit: INTERLEAVED_WARM_CALLS untimed calls, then 3, 2, 2 rounds by pass
    per_visit = [INTERLEAVED_WARM_CALLS + share for share in (3, 2, 2) for _ in range(3)]
    runs, at = [], 0
    for size in per_visit:
        runs.append(visits[at:at + size])
        at += size
    assert at == len(visits) and all(len(set(run)) == 1 for run in runs)
    orders = [tuple(run[0] for run in runs[i:i + 3]) for i in (0, 3, 6)]
    assert all(sorted(order) == ["a", "b", "c"] for order in orders)
    assert len(set(orders)) > 1, orders  # seeded, and not the same order every pass


def test_passes_beyond_the_rounds_time_each_case_once_a_pass():
    samples = interleaved_samples({"a": lambda: None}, rounds=2, passes=5, clock=FakeClock(0.001))
    assert len(samples["a"]) == 2
