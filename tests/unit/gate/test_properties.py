"""Properties of the baseline store, the gate, the A/B verdict and the cache keys, over inputs
hypothesis draws (derandomized: the same examples on every run)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.gate.decide import judge_drift, judge_latency, judge_size
from perfsuite.gate.store import (
    Baseline,
    BaselineError,
    LatencyRecording,
    load_baseline,
    merge,
    write_baseline,
)
from perfsuite.measure.paired import PairedTrials, judge_pairs
from perfsuite.models.artifacts import cache_digest
from tests.unit.gate.test_gate import stats

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
positive_ms = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@st.composite
def recordings(draw):
    trials = draw(st.lists(positive_ms, min_size=1, max_size=6))
    gpu = draw(st.one_of(st.none(), st.lists(positive_ms, min_size=1, max_size=6)))
    return LatencyRecording(stats(*trials), stats(*gpu) if gpu else None)


@st.composite
def baselines(draw):
    latency = draw(st.dictionaries(names, st.lists(recordings(), min_size=1, max_size=3)
                                   .map(tuple), max_size=3))
    sizes = draw(st.dictionaries(names, st.dictionaries(names, st.integers(1, 2**40),
                                                        min_size=1, max_size=3), max_size=2))
    drift = draw(st.dictionaries(names, st.dictionaries(
        names, st.floats(0, 10, allow_nan=False), min_size=1, max_size=2), max_size=2))
    return Baseline("key", {"isa": "x86_64"}, {"torch": "2.0"}, latency, sizes, drift, {})


@SETTINGS
@given(baselines())
def test_store_round_trip_is_exact_and_byte_stable(baseline):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "baseline.json"
        write_baseline(path, baseline)
        first = path.read_bytes()
        assert load_baseline(path) == baseline
        write_baseline(path, load_baseline(path))  # type: ignore[arg-type]
        assert path.read_bytes() == first


@SETTINGS
@given(baselines(), baselines())
def test_merge_keeps_what_the_new_run_did_not_measure(old, fresh):
    merged = merge(old, fresh, add=False).baseline
    for name, recorded in old.latency.items():
        if name not in fresh.latency:
            assert merged.latency[name] == recorded
    for model, sizes in old.sizes.items():
        assert merged.sizes[model] == fresh.sizes.get(model, sizes)


@SETTINGS
@given(st.lists(positive_ms, min_size=1, max_size=6), st.sampled_from(["cpu", "cuda"]))
def test_a_result_compared_with_itself_never_regresses(trials, device):
    same = LatencyRecording(stats(*trials), stats(*trials) if device == "cuda" else None)
    verdicts = judge_latency("m", same, (same,), device, GatePolicy())
    assert verdicts and not any(v.failed for v in verdicts)


@SETTINGS
@given(st.lists(positive_ms, min_size=20, max_size=60),
       st.floats(min_value=0.2, max_value=5.0, allow_nan=False))
def test_the_ab_ratio_scales_with_the_current_side_and_aa_never_fails(base, factor):
    assume(abs(factor - 1.01) > 1e-6)  # exactly at the limit, rounding decides
    same = judge_pairs("m", "ref", PairedTrials("e2e", tuple(base), tuple(base)), 0.01)
    assert same.ratio == 1.0 and not same.failed
    scaled = judge_pairs("m", "ref", PairedTrials("e2e", tuple(base),
                                                  tuple(b * factor for b in base)), 0.01)
    assert math.isclose(scaled.ratio, factor, rel_tol=1e-9)
    assert scaled.failed == (factor > 1.01)


@st.composite
def runs(draw):
    """A current recording and one to three recorded ones, CPU or CUDA."""
    device = draw(st.sampled_from(["cpu", "cuda"]))

    def one():
        trials = draw(st.lists(positive_ms, min_size=1, max_size=6))
        gpu = draw(st.lists(positive_ms, min_size=1, max_size=6)) if device == "cuda" else None
        enqueue = draw(positive_ms) if device == "cuda" else None
        return LatencyRecording(stats(*trials), stats(*gpu) if gpu else None, enqueue)

    return one(), tuple(one() for _ in range(draw(st.integers(1, 3)))), device


def scaled(recording: LatencyRecording, factor: float) -> LatencyRecording:
    def times(s):
        return None if s is None else stats(*(t * factor for t in s.trial_medians_ms))
    enqueue = recording.enqueue_ms
    return LatencyRecording(times(recording.e2e), times(recording.gpu),  # type: ignore[arg-type]
                            enqueue * factor if enqueue is not None else None)


def outcome(verdicts):
    return [(v.subject, v.status, v.failed) for v in verdicts]


NO_FLOOR = GatePolicy(floor_ms=0.0)  # the absolute floor is the one limit not scale-free


@SETTINGS
@given(runs(), st.integers(-20, 20))
def test_scaling_every_sample_by_the_same_factor_keeps_every_verdict(run, power):
    """Milliseconds or seconds, a fast or a slow model: only ratios decide (a power of two
    scales floating-point numbers exactly)."""
    current, recorded, device = run
    factor = 2.0 ** power
    assert outcome(judge_latency("m", current, recorded, device, NO_FLOOR)) == outcome(
        judge_latency("m", scaled(current, factor), tuple(scaled(r, factor) for r in recorded),
                      device, NO_FLOOR))


@SETTINGS
@given(runs(), st.floats(min_value=1.0, max_value=100.0, allow_nan=False))
def test_a_slower_run_never_turns_a_failure_into_a_pass(run, slower):
    current, recorded, device = run
    before = judge_latency("m", current, recorded, device, GatePolicy())
    after = judge_latency("m", scaled(current, slower), recorded, device, GatePolicy())
    assert len(before) == len(after)
    for was, now in zip(before, after):
        assert now.failed or not was.failed, f"x{slower} slower passed: {now.describe()}"


not_finite = st.sampled_from([math.nan, math.inf, -math.inf])


@SETTINGS
@given(runs(), not_finite, st.sampled_from(["e2e", "gpu"]), st.data())
def test_nan_or_inf_in_this_runs_latency_never_passes(run, bad, statistic, data):
    current, recorded, device = run
    chosen = current.stats(statistic) or current.e2e
    trials = list(chosen.trial_medians_ms)
    trials[data.draw(st.integers(0, len(trials) - 1))] = bad
    broken = stats(*trials)
    current = (LatencyRecording(current.e2e, broken, current.enqueue_ms) if chosen is current.gpu
               else LatencyRecording(broken, current.gpu, current.enqueue_ms))
    verdicts = judge_latency("m", current, recorded, device, GatePolicy())
    assert any(v.failed for v in verdicts), [v.describe() for v in verdicts]


@SETTINGS
@given(st.floats(0, 10, allow_nan=False), not_finite, st.integers(1, 2**40))
def test_nan_or_inf_drift_and_sizes_never_pass(baseline, bad, size):
    assert judge_drift("d", bad, baseline, GatePolicy()).failed
    assert judge_size("s", bad, size, GatePolicy()).failed  # type: ignore[arg-type]


@SETTINGS
@given(st.lists(positive_ms, min_size=5, max_size=40), st.sampled_from([0.0, -1.0, *[math.nan,
       math.inf]]), st.data())
def test_nan_inf_or_non_positive_ab_timings_never_pass(base, bad, data):
    current = list(base)
    current[data.draw(st.integers(0, len(current) - 1))] = bad
    side = data.draw(st.booleans())
    trials = (PairedTrials("e2e", tuple(base), tuple(current)) if side
              else PairedTrials("e2e", tuple(current), tuple(base)))
    assert judge_pairs("m", "ref", trials, 0.01).failed


@SETTINGS
@given(baselines(), not_finite, st.data())
def test_a_baseline_with_nan_or_inf_is_never_written(baseline, bad, data):
    assume(baseline.drift)
    case = data.draw(st.sampled_from(sorted(baseline.drift)))
    metric = data.draw(st.sampled_from(sorted(baseline.drift[case])))
    broken = Baseline(baseline.machine_key, baseline.machine, baseline.software, baseline.latency,
                      baseline.sizes, {**baseline.drift, case: {metric: bad}}, baseline.identity)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "baseline.json"
        try:
            write_baseline(path, broken)
        except BaselineError as exc:
            assert "NaN or infinite" in str(exc)
        else:
            raise AssertionError("written")
        assert not path.exists()


@SETTINGS
@given(st.dictionaries(names, names, min_size=1, max_size=6), st.data())
def test_any_change_of_a_cache_key_changes_its_digest(key, data):
    name = data.draw(st.sampled_from(sorted(key)))
    changed = {**key, name: key[name] + data.draw(names)}
    assert cache_digest(changed) != cache_digest(key)
    assert cache_digest({**key, data.draw(names) + "_new": "x"}) != cache_digest(key)
