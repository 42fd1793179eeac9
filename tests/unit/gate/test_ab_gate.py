"""The A/B gate's latency verdicts where two statistics gate a benchmark (CUDA): each at its
share of the benchmark's confidence, either failing fails the item; and how many calls a GPU
compute trial takes so that every pair fits in the statistic's time bound."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from perfsuite.backends.base import CaseSpec
from perfsuite.config.gate_policy import GatePolicy
from perfsuite.config.parts import AbConfig, GateConfig
from perfsuite.gate.ab_gate import AbComparison, sequential_rule
from perfsuite.measure.paired import PairedTrials
from perfsuite.results import CaseResult, ItemRecord
from perfsuite.run.latency import gpu_calls_per_trial

CASE = CaseSpec("m", "torch", "fp32", "cuda")


def comparison(benchmarks: int) -> AbComparison:
    hook = SimpleNamespace(pytest_perfsuite_gate_policy=lambda **_: None)
    gate = AbComparison(GateConfig(), SimpleNamespace(hook=hook), fp16_onnx=False)
    gate.attach(SimpleNamespace(label="main"))
    gate.prepare(benchmarks)
    return gate


def record(e2e_ratio: float, gpu_ratio: float, pairs: int = 300) -> ItemRecord:
    """Pairs whose ratios spread evenly around `ratio` (+-0.5%), both statistics."""
    def trials(statistic: str, ratio: float) -> PairedTrials:
        spread = [ratio * (1 + 0.01 * (i / (pairs - 1) - 0.5)) for i in range(pairs)]
        return PairedTrials(statistic, (1.0,) * pairs, tuple(spread))
    paired = (trials("e2e", e2e_ratio), trials("gpu", gpu_ratio))
    return ItemRecord("latency", CASE.id, CASE,
                      result=CaseResult(CASE, 0, paired=paired))


@pytest.mark.parametrize(("e2e", "gpu", "fails"), [
    (1.0, 1.0, ""),
    (1.025, 1.025, "GPU compute"),  # end to end within its +3%: GPU compute's +1% catches it
    (1.10, 1.0, "end to end"),  # GPU compute steady: end to end alone still fails the item
    (1.0, 1.10, "GPU compute"),
])
def test_either_statistic_fails_a_benchmark_and_the_cell_shows_which(e2e, gpu, fails):
    gate = comparison(benchmarks=24)
    failures = gate.judge([record(e2e, gpu)], None)
    assert [f for f in failures if "REGRESSED" in f] == failures
    assert len(failures) == (1 if fails else 0)
    if fails:
        assert fails in failures[0]
        shown = gate.decisions[CASE.id]
        assert shown.failed and shown.statistic == ("gpu" if fails == "GPU compute" else "e2e")
    # 24 benchmarks share the run's 1%, and each benchmark's share is split between its two
    assert {v.confidence for v in gate.verdicts} == {1 - 0.01 / 48 / 2}


def test_two_statistics_split_the_final_and_early_looks():
    policy, ab = GatePolicy(), AbConfig()
    one = sequential_rule(policy, ab, "gpu", 24)
    two = sequential_rule(policy, ab, "gpu", 24, statistics=2)
    assert (1 - two.look_confidence) == pytest.approx((1 - one.look_confidence) / 2)
    assert (two.limit, two.min_pairs, two.block) == (one.limit, one.min_pairs, one.block)


@pytest.mark.parametrize(("call_ms", "device", "calls"), [
    (0.5, "cuda", 5),  # a CUDA graph: 300 pairs of 5-call trials take 1.5 s of the 6
    (3.3, "cuda", 3),  # launch-bound eager: 3 calls a trial fit 300 pairs in 6 s (5 took 9.9)
    (4.0, "cuda", 2),
    (12.0, "cuda", 1),  # too slow even for one: the time bound then stops the pairs
    (0.5, "cpu", 5),
    (3.3, "cpu", 1),
])
def test_gpu_trials_take_as_many_calls_as_let_every_pair_fit(call_ms, device, calls):
    settings = AbConfig()
    assert gpu_calls_per_trial(settings, device, call_ms) == calls
    if calls > 1:
        assert 2 * settings.pairs * calls * call_ms <= settings.pairs_seconds(device) * 1e3


def test_the_configured_calls_are_the_most_a_trial_takes():
    assert gpu_calls_per_trial(AbConfig(gpu_rounds_per_trial=2), "cuda", 0.01) == 2
    assert gpu_calls_per_trial(AbConfig(max_seconds=60.0), "cuda", 3.3) == 5
