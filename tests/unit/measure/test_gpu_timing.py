"""GPU-side helpers that can be checked without a GPU: timing warnings."""

from __future__ import annotations

from perfsuite.measure.latency_stats import summarize, timing_warnings


def stats(*ms: float):
    return summarize([v / 1e3 for v in ms])


def test_stable_and_compute_bound_gives_no_warning():
    gpu = stats(1.0, 1.0, 1.01, 0.99)
    assert timing_warnings(stats(1.2, 1.2, 1.2), gpu, stats(0.1, 0.1, 0.1)) == ()


def test_unstable_gpu_compute_is_flagged():
    (warning,) = timing_warnings(None, stats(1.0, 1.2, 0.8, 1.0), stats(0.1, 0.1))
    assert warning.startswith("unstable: GPU compute calls vary by CV") and "> 2.5%" in warning


def test_unstable_end_to_end_is_flagged_without_gpu_numbers():
    (warning,) = timing_warnings(stats(1.0, 2.0, 1.0, 1.0), None, None)
    assert warning.startswith("unstable: end-to-end calls vary by CV")


def test_jittery_calls_in_steady_trials_are_not_unstable():
    # every CPU benchmark's calls vary by more than 2.5%; its trials' medians agree
    jittery = summarize([v / 1e3 for v in (1.0, 1.3, 0.9, 1.0, 1.2) * 4], trials=4)
    assert jittery.cv > 0.1 and timing_warnings(jittery, None, None) == ()
    drifting = summarize([v / 1e3 for v in [1.0] * 5 + [1.1] * 5 + [1.2] * 5], trials=3)
    (warning,) = timing_warnings(drifting, None, None)
    assert warning == "unstable: end-to-end trials' medians vary by CV 9.1% > 2.5%"


def test_enqueue_bound_when_launch_takes_most_of_gpu_time():
    warnings = timing_warnings(None, stats(3.0, 3.0, 3.0), stats(2.9, 2.9, 2.9))
    assert warnings == ("enqueue-bound: host launch 2.900 ms vs GPU compute 3.000 ms (> 0.8x)",)
