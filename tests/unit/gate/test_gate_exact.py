"""The gate's verdicts compared whole, field by field and line by line: size, drift, identity,
energy and the verdict's own line (closing gaps mutation testing found; docs/mutation.md)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.gate.decide import (
    GateVerdict,
    Noise,
    StatisticCheck,
    estimate_noise,
    judge_drift,
    judge_energy,
    judge_identity,
    judge_latency,
    judge_size,
    latency_checks,
    sample_cv,
    session_kind,
)
from perfsuite.gate.store import LatencyRecording
from tests.unit.gate.test_gate import energy_recording, recording, stats

POLICY = GatePolicy()


def test_size_verdicts_whole_at_and_past_the_one_percent_tolerance():
    assert judge_size("m onnx", 1010, 1000, POLICY) == GateVerdict(
        "m onnx", "pass", 1010.0, 1000.0, 1.01, "bytes")
    over = judge_size("m onnx", 1011, 1000, POLICY)
    assert over == GateVerdict("m onnx", "regression", 1011.0, 1000.0, 1.01, "bytes",
                               failed=True)
    assert over.describe() == ("m onnx REGRESSED: 1,011 bytes vs baseline 1,000 bytes (x1.011, "
                               "fails above x1.010)")
    assert judge_size("m", 0, 1000, POLICY).status == "pass", "an empty file is a size"
    assert judge_size("m", 1, 0, POLICY).failed


def test_drift_verdicts_whole_with_their_limit():
    # limit = 1e-3 x 1.25 + 1e-6 = 1.251e-3; threshold = limit / baseline = 1.251
    fine = judge_drift("m max_abs", 1.2509e-3, 1e-3, POLICY)
    assert fine == GateVerdict("m max_abs", "pass", 1.2509e-3, 1e-3, pytest.approx(1.251), "",
                               "limit 1.251e-03")
    worse = judge_drift("m max_abs", 1.2511e-3, 1e-3, POLICY)
    assert (worse.status, worse.failed, worse.detail) == ("regression", True, "limit 1.251e-03")
    assert worse.describe() == ("m max_abs REGRESSED: 0.001251 vs baseline 0.001 (x1.251, "
                                "fails above x1.251); limit 1.251e-03")
    exact = judge_drift("m", 0.0, 0.0, POLICY)
    assert (exact.status, exact.threshold, exact.detail) == ("pass", math.inf, "limit 1.000e-06")
    assert judge_drift("m", 0.0, 1e-3, POLICY).status == "pass", "no drift at all passes"


def test_identity_verdict_names_each_change_both_ways():
    verdict = judge_identity("m", {"a": "1", "b": "2", "same": "x"},
                             {"b": "3", "c": "4", "same": "x"}, fails=True)
    assert verdict == GateVerdict(
        "m", "not comparable", 0.0, 0.0, 0.0, "",
        "a: 1 -> absent; b: 2 -> 3; c: absent -> 4 (baseline -> this run); not gated. Fix: run "
        "with the baseline's settings, or re-record it: pytest --perf-save-baseline", True)
    assert verdict.describe() == f"m NOT COMPARABLE: {verdict.detail}"
    assert not judge_identity("m", {"a": "1"}, {"b": "1"}, fails=False).failed
    assert judge_identity("m", {"a": "1"}, {"a": "1"}, fails=True) is None


def test_a_verdict_line_with_and_without_detail():
    plain = GateVerdict("m", "pass", 1.0, 1.0, 1.05, "ms")
    assert plain.describe() == "m ok: 1 ms vs baseline 1 ms (x1.000, fails above x1.050)"
    noisy = GateVerdict("m", "too noisy", 2.0, 1.0, 1.5, "ms", "why", against="main")
    assert noisy.describe() == "m TOO NOISY: 2 ms vs main 1 ms (x2.000, fails above x1.500); why"
    assert GateVerdict("m", "pass", 1.0, 0.0, 1.0, "").ratio == math.inf


def test_an_energy_verdict_whole():
    """GPU-bound NVML prior 1%, one recording: width 1.41%, threshold e^(3 widths) - 1 = 4.33%,
    resolution e^(4.645 widths) - 1 = 6.79%."""
    baseline = [energy_recording((60.0,) * 5)]
    (worse,) = judge_energy("m", energy_recording((63.6,) * 5), baseline, "cuda", POLICY)
    width = 0.01 * math.sqrt(2)
    assert worse == GateVerdict(
        "m energy per inference", "regression", 63.6, 60.0, pytest.approx(math.exp(3 * width)),
        "mJ", "resolves +6.8%; noise CV 1.00% (prior 1.00% for energy (gpu-bound), 1 recording, this "
        "run's trials 0.00%), k=3, practical limit +5%; energy is gated on its own", True,
        pytest.approx(math.expm1(4.645 * width)), True, "energy")


def test_p90_checks_use_the_trial_p90s_and_name_themselves():
    verdicts = judge_latency("m", recording(None, 1.0), [recording(None, 1.0)], "cpu", POLICY)
    assert [v.subject for v in verdicts] == ["m median end to end", "m p90 end to end"]
    assert verdicts[1].current == pytest.approx(1.1) and verdicts[0].current == 1.0
    assert "end to end (cpu)" in verdicts[0].detail


@pytest.mark.parametrize(("gpu", "e2e", "broken"), [
    (None, math.nan, "end to end trial medians"), (math.inf, 1.0, "GPU compute trial medians")])
def test_a_non_finite_timing_is_one_failing_verdict_whole(gpu, e2e, broken):
    (verdict,) = judge_latency("m", recording(gpu, e2e), [recording(1.0, 1.0)], "cuda", POLICY)
    assert math.isnan(verdict.current)
    assert replace(verdict, current=0.0) == GateVerdict(
        "m latency", "regression", 0.0, 0.0, 0.0, "ms",
        f"this run's {broken} is not a finite number: the timer or the backend misbehaved; "
        "nothing can pass on it", failed=True, decides=True)


def test_energy_from_another_meter_is_not_comparable_whole():
    before = [energy_recording((60.0,) * 5), energy_recording((60.0,) * 5, source="INA3221 VDD_IN")]
    (verdict,) = judge_energy("m", energy_recording((60.0,) * 5, source="tegrastats"), before,
                              "cuda", POLICY)
    launches = "back-to-back device launches"
    assert verdict == GateVerdict(
        "m energy per inference", "not comparable", 0.0, 0.0, 0.0, "",
        f"measured by INA3221 VDD_IN over {launches}, NVML total energy over {launches} in the "
        f"baseline, tegrastats over {launches} now")


def test_energy_from_a_rail_takes_the_end_to_end_prior():
    rail = "INA3221 VDD_IN"
    (verdict,) = judge_energy("m", energy_recording((60.0,) * 5, source=rail),
                              [energy_recording((60.0,) * 5, source=rail)], "cuda", POLICY)
    assert "(prior 8.00% for energy (gpu-bound), 1 recording, " in verdict.detail
    assert verdict.statistic == "energy" and verdict.decides


def test_a_small_energy_rise_is_judged_without_the_latency_floor():
    # +30% of 0.005 mJ is 0.0015 mJ: under latency's 0.002 ms floor, still a regression in mJ
    (verdict,) = judge_energy("m", energy_recording((0.0065,) * 5),
                              [energy_recording((0.005,) * 5)], "cuda", POLICY)
    assert verdict.failed and verdict.status == "regression"


def test_a_too_noisy_energy_fails_when_told_to():
    noisy = (40.0, 80.0, 60.0, 45.0, 75.0)
    before = [energy_recording(noisy)]
    (advisory,) = judge_energy("m", energy_recording(noisy), before, "cuda", POLICY)
    (failing,) = judge_energy("m", energy_recording(noisy), before, "cuda", POLICY,
                              too_noisy_fails=True)
    assert (advisory.status, advisory.failed) == ("too noisy", False)
    assert (failing.status, failing.failed) == ("too noisy", True)


# -- the noise estimate and the checks at their boundaries ---------------------------------------
def test_sample_cv_of_two_values_and_of_no_positive_mean():
    assert sample_cv([1.0, 3.0]) == pytest.approx(math.sqrt(2) / 2)
    assert sample_cv([2.0]) == 0.0
    assert sample_cv([0.0, 0.0]) == 0.0 and sample_cv([-1.0, -3.0]) == 0.0


def test_two_recordings_give_a_spread_between_them():
    noise = estimate_noise([1.0, 1.02], [1.0] * 5, prior=0.25, kind="cpu", prior_weight=2.0)
    assert noise.between == sample_cv([1.0, 1.02]) and noise.recordings == 2
    assert noise.evidence_agrees
    assert noise.describe() == (
        f"noise CV {noise.cv:.2%} (prior 25.00% for cpu, 2 recordings spread "
        f"{noise.between:.2%}, this run's trials 0.00%; both below the prior, so they outweigh it)")


def test_evidence_at_the_prior_does_not_agree_with_it():
    spread = sample_cv([1.0, 1.02])
    assert not estimate_noise([1.0, 1.02], [1.0] * 5, spread, "cpu", 2.0).evidence_agrees
    trials = [1.0, 1.05, 0.95, 1.0, 1.0]
    at_trials = sample_cv(trials)
    assert not estimate_noise([1.0, 1.001], trials, at_trials, "cpu", 2.0).evidence_agrees


def test_recordings_alone_can_agree_and_a_fractional_prior_weight_counts():
    alone = estimate_noise([1.0, 1.02], [1.0] * 5, prior=0.05, kind="cpu", prior_weight=0.0)
    assert alone.evidence_agrees and alone.cv == pytest.approx(sample_cv([1.0, 1.02]))
    half = estimate_noise([1.0], [1.0] * 5, prior=0.05, kind="cpu", prior_weight=0.5)
    assert half.cv == pytest.approx(0.05) and not half.evidence_agrees


def check(current: float, threshold: float) -> StatisticCheck:
    noise = Noise(0.01, 0.01, "cpu", None, 0.0, 1)
    return StatisticCheck("m", "e2e", "median", current, 1.0, noise, 0.05, 0.01, 0.03, threshold,
                          0.05)


def test_exceeding_is_strictly_above_the_threshold_and_the_floor():
    assert not check(1.5, 0.5).exceeded(0.002) and check(1.5001, 0.5).exceeded(0.002)
    assert not check(1.25, 0.0).exceeded(0.25) and check(1.25, 0.0).exceeded(0.2499)


def test_drift_exactly_at_its_limit_passes():
    limit = 1e-3 * (1.0 + POLICY.drift_growth) + POLICY.drift_floor
    assert judge_drift("m", limit, 1e-3, POLICY).status == "pass"


def test_ab_limits_per_statistic():
    assert POLICY.ab_limit("gpu") == POLICY.ab_min_increase == 0.01
    assert POLICY.ab_limit("e2e") == POLICY.ab_e2e_min_increase == 0.03


@pytest.mark.parametrize(("gpu", "enqueue", "kind"), [
    (1.0, None, "cuda"), (2.0, 1.6, "gpu-bound"), (2.0, 1.61, "launch-bound"),
    (2.0, 0.5, "gpu-bound")])
def test_the_session_kind_from_enqueue_against_gpu_time(gpu, enqueue, kind):
    assert session_kind("cuda", recording(gpu, 3.0, enqueue), []) == kind


@pytest.mark.parametrize(("field", "label"), [("trial_p90_ms", "trial p90s"),
                                              ("median_ms", "median")])
def test_each_non_finite_statistic_is_named(field, label):
    e2e = recording(None, 1.0).e2e
    value = (math.nan,) * 5 if field == "trial_p90_ms" else math.inf
    broken = LatencyRecording(replace(e2e, **{field: value}), None, None)
    (verdict,) = judge_latency("m", broken, [recording(None, 1.0)], "cpu", POLICY)
    assert verdict.detail.startswith(f"this run's end to end {label} is not a finite number")


def test_a_timing_only_the_baseline_has_is_not_checked():
    checks = latency_checks("m", recording(None, 1.0), [recording(1.0, 1.0)], "cuda", POLICY)
    assert [c.statistic for c in checks] == ["e2e", "e2e"]


def test_a_too_noisy_benchmark_says_which_statistic_decides_and_that_it_fails():
    noisy = LatencyRecording(stats(1.0, 1.6, 0.7, 1.4, 0.8), None, None)
    verdicts = judge_latency("m", noisy, [noisy], "cpu", POLICY, too_noisy_fails=True)
    median, p90 = verdicts
    assert (median.status, median.failed, median.unit) == ("too noisy", True, "ms")
    assert "(advisory, fails: too_noisy = fail; resolves +" in median.detail
    assert (p90.status, p90.failed) == ("too noisy", False)
    assert "(advisory; its benchmark resolves +" in p90.detail


def test_the_deciding_statistic_is_compared_with_the_other():
    verdicts = judge_latency("m", recording(1.0, 1.2, 0.1), [recording(1.0, 1.2, 0.1)], "cuda",
                             POLICY)
    gpu = verdicts[0]
    assert gpu.statistic == "gpu" and gpu.decides
    assert gpu.detail.endswith("decided by GPU compute, the steadiest statistic (noise 0.30% vs "
                               "end to end 8.00%)")
