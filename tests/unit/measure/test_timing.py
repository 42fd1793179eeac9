from __future__ import annotations

import pytest

from perfsuite.measure.latency_stats import summarize
from perfsuite.measure.timing import warm_up


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
