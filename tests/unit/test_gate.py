"""The regression decision and baseline files, with hand-computed numbers."""

from __future__ import annotations

import json

import pytest

from perfsuite.baselines import (
    MAX_RECORDINGS,
    Baseline,
    BaselineError,
    LatencyRecording,
    load_baseline,
    write_baseline,
)
from perfsuite.gate import GatePolicy, between_run_noise, judge_drift, judge_latency, judge_size

POLICY = GatePolicy()


def test_single_recording_uses_assumed_noise():
    # one recording: noise 5% assumed, k=3 -> fails above x1.15
    verdict = judge_latency("m", [1.14, 1.14, 1.14], [1.0], 0.03, POLICY)
    assert not verdict.failed and verdict.threshold == pytest.approx(1.15)
    slower = judge_latency("m", [1.3, 1.3, 1.3], [1.0], 0.03, POLICY)
    assert slower.failed and slower.ratio == pytest.approx(1.3)
    assert "REGRESSED: 1.3 ms vs baseline 1 ms (x1.300, fails above x1.150)" in slower.describe()
    size = judge_size("s", 2_000_000, 1_000_000, POLICY)
    assert "REGRESSED: 2,000,000 bytes vs baseline 1,000,000 bytes" in size.describe()


def test_recorded_noise_sets_the_threshold():
    recordings = [1.0, 1.02, 0.98]  # sample stdev 0.02 around 1.0 -> CV 2%, k=3 -> x1.06
    verdict = judge_latency("m", [1.05], recordings, 0.03, POLICY)
    assert not verdict.failed and verdict.threshold == pytest.approx(1.06)
    assert judge_latency("m", [1.07], recordings, 0.03, POLICY).failed


def test_practical_limit_and_floor_bound_quiet_benchmarks():
    quiet = [1.0, 1.0, 1.0]  # no measured noise: the practical 3% limit applies
    assert judge_latency("m", [1.029], quiet, 0.03, POLICY).threshold == pytest.approx(1.03)
    assert judge_latency("m", [1.04], quiet, 0.03, POLICY).failed
    tiny = judge_latency("m", [0.0014], [0.001] * 3, 0.03, POLICY)  # +40% but only 0.4 us
    assert not tiny.failed


def test_current_within_run_spread_widens_the_threshold():
    verdict = judge_latency("m", [1.0, 1.2, 1.4], [1.0, 1.0, 1.0], 0.03, POLICY)
    assert verdict.threshold == pytest.approx(1 + 3 * 0.2 / 1.2)


def test_between_run_noise():
    assert between_run_noise([2.0], assumed=0.05) == 0.05
    assert between_run_noise([1.0, 3.0], assumed=0.05) == pytest.approx(2 ** 0.5 / 2)


def test_size_and_drift_limits():
    assert judge_size("s", 2_000, 1_000, POLICY).failed
    assert not judge_size("s", 1_005, 1_000, POLICY).failed
    assert not judge_drift("d", 0.0049, 0.004, POLICY).failed  # +22.5% < 25%
    assert judge_drift("d", 0.0051, 0.004, POLICY).failed


def baseline(medians=(1.0,)) -> Baseline:
    rec = tuple(LatencyRecording(m, m * 1.1, m * 1.2, (m,), (m * 1.1,), (m,)) for m in medians)
    return Baseline("key", {"isa": "x86_64"}, {"torch": "2.0"}, {"m-torch-fp32": rec},
                    {"m": {"parameter_bytes": 10}}, {"m-torch-fp16": {"rel_l2": 0.004}})


def test_baseline_round_trip_is_stable(tmp_path):
    path = tmp_path / "key" / "baseline.json"
    write_baseline(path, baseline())
    first = path.read_bytes()
    assert load_baseline(path) == baseline()
    write_baseline(path, load_baseline(path))
    assert path.read_bytes() == first, "same content, same bytes (sorted keys, stable format)"
    assert list(json.loads(first)) == sorted(json.loads(first))


def test_recordings_accumulate_up_to_a_limit():
    combined = baseline((1.0,))
    for i in range(MAX_RECORDINGS + 3):
        combined = combined.with_recordings_added(baseline((2.0 + i,)))
    assert len(combined.latency["m-torch-fp32"]) == MAX_RECORDINGS


def test_failed_write_leaves_old_file_and_no_temporaries(tmp_path, monkeypatch):
    path = tmp_path / "baseline.json"
    write_baseline(path, baseline())
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_baseline(path, baseline((9.0,)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{not json", "cannot be read as a perfsuite baseline"),
     ('{"schema": 99}', "schema 99, expected 1"),
     ('{"schema": 1, "machine_key": "k"}', "KeyError")],
)
def test_bad_baseline_files_name_path_and_fix(tmp_path, content, needle):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=needle) as raised:
        load_baseline(path)
    assert str(path) in str(raised.value) and "Remedy" in str(raised.value)


def test_missing_baseline_is_none(tmp_path):
    assert load_baseline(tmp_path / "nope.json") is None
