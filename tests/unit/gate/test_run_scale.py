"""A whole run's false alarms: each check's bar rises with the run's benchmarks, and a p90
that moved while its median held does not fail."""

from __future__ import annotations

from statistics import NormalDist

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.gate.decide import judge_latency
from perfsuite.gate.store import LatencyRecording
from perfsuite.measure.latency_stats import LatencyStats


def stats(medians, p90s):
    return LatencyStats(len(medians) * 10, sorted(medians)[len(medians) // 2],
                        sorted(p90s)[len(p90s) // 2], max(p90s), 1.0, 0.5, 0.1,
                        tuple(medians), tuple(p90s))


def test_the_bar_rises_with_the_runs_benchmarks_to_keep_the_run_budget():
    policy = GatePolicy()
    assert policy.at_scale(1).noise_k == 3.0
    k24 = policy.at_scale(24).noise_k
    assert k24 == NormalDist().inv_cdf(1 - 0.01 / (24 * 4))
    assert 3.7 < k24 < policy.at_scale(60).noise_k
    # the run's budget, spent over every check, is the configured one
    per_check = 1 - NormalDist().cdf(k24)
    assert abs(per_check * 24 * 4 - 0.01) < 1e-9
    assert GatePolicy(run_false_alarms=0).at_scale(60).noise_k == 3.0
    assert GatePolicy(noise_k=5).at_scale(24).noise_k == 5
    assert policy.ab_confidence(1) == 0.99
    assert policy.ab_confidence(50) == 1 - 0.01 / 100
    assert policy.ab_confidence(1, 2) == 1 - 0.01 / 2, "two statistics share a benchmark's 1%"
    assert policy.ab_confidence(50, 2) == 1 - 0.01 / 200


def test_a_p90_that_moved_alone_is_not_failed_but_said():
    before = LatencyRecording(stats([1.0, 1.0, 1.0, 1.0, 1.0], [1.1] * 5))
    burst = LatencyRecording(stats([1.0, 1.0, 1.0, 1.0, 1.0], [6.0] * 5))
    verdicts = judge_latency("m", burst, [before], "cpu", GatePolicy())
    p90 = next(v for v in verdicts if "p90" in v.subject)
    assert not p90.failed and "tail-only change" in p90.detail
    slower = LatencyRecording(stats([6.0] * 5, [6.6] * 5))
    verdicts = judge_latency("m", slower, [before], "cpu", GatePolicy())
    assert all(v.failed for v in verdicts)
