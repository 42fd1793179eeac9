"""Properties of the baseline store, the gate, the A/B verdict and the cache keys, over inputs
hypothesis draws (derandomized: the same examples on every run)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_gate import stats

from perfsuite.artifacts import cache_digest
from perfsuite.baselines import Baseline, LatencyRecording, load_baseline, merge, write_baseline
from perfsuite.gate import GatePolicy, judge_latency
from perfsuite.paired import PairedTrials, judge_pairs

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


@SETTINGS
@given(st.dictionaries(names, names, min_size=1, max_size=6), st.data())
def test_any_change_of_a_cache_key_changes_its_digest(key, data):
    name = data.draw(st.sampled_from(sorted(key)))
    changed = {**key, name: key[name] + data.draw(names)}
    assert cache_digest(changed) != cache_digest(key)
    assert cache_digest({**key, data.draw(names) + "_new": "x"}) != cache_digest(key)
