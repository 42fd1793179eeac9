"""The gate's verdicts compared whole, field by field and line by line: size, drift, identity,
energy and the verdict's own line (closing gaps mutation testing found; docs/mutation.md)."""

from __future__ import annotations

import math

import pytest

from perfsuite.gate import (
    GatePolicy,
    GateVerdict,
    judge_drift,
    judge_energy,
    judge_identity,
    judge_latency,
    judge_size,
)
from tests.unit.test_gate import energy_recording, recording

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
    """GPU-bound NVML prior 1%, one recording: width 1.41%, threshold 4.24%, resolution 4.24% +
    1.645 x 1.41% = 6.57%."""
    baseline = [energy_recording((60.0,) * 5)]
    (worse,) = judge_energy("m", energy_recording((63.6,) * 5), baseline, "cuda", POLICY)
    width = 0.01 * math.sqrt(2)
    assert worse == GateVerdict(
        "m energy per inference", "regression", 63.6, 60.0, pytest.approx(1 + 3 * width), "mJ",
        "resolves +6.6%; noise CV 1.00% (prior 1.00% for energy (gpu-bound), 1 recording, this "
        "run's trials 0.00%), k=3, practical limit +5%; energy is gated on its own", True,
        pytest.approx(4.645 * width), True, "energy")


def test_p90_checks_use_the_trial_p90s_and_name_themselves():
    verdicts = judge_latency("m", recording(None, 1.0), [recording(None, 1.0)], "cpu", POLICY)
    assert [v.subject for v in verdicts] == ["m median end to end", "m p90 end to end"]
    assert verdicts[1].current == pytest.approx(1.1) and verdicts[0].current == 1.0
    assert "end to end (cpu)" in verdicts[0].detail
