"""GPU-side helpers that can be checked without a GPU: timing warnings."""

from __future__ import annotations

from perfsuite.timing import summarize, timing_warnings


def stats(*ms: float):
    return summarize([v / 1e3 for v in ms])


def test_stable_and_compute_bound_gives_no_warning():
    gpu = stats(1.0, 1.0, 1.01, 0.99)
    assert timing_warnings(stats(1.2, 1.2, 1.2), gpu, stats(0.1, 0.1, 0.1)) == ()


def test_unstable_gpu_compute_is_flagged():
    (warning,) = timing_warnings(None, stats(1.0, 1.2, 0.8, 1.0), stats(0.1, 0.1))
    assert warning.startswith("unstable: GPU compute CV") and "> 2.5%" in warning


def test_unstable_end_to_end_is_flagged_without_gpu_numbers():
    (warning,) = timing_warnings(stats(1.0, 2.0, 1.0, 1.0), None, None)
    assert warning.startswith("unstable: end-to-end CV")


def test_enqueue_bound_when_launch_takes_most_of_gpu_time():
    warnings = timing_warnings(None, stats(3.0, 3.0, 3.0), stats(2.9, 2.9, 2.9))
    assert warnings == ("enqueue-bound: host launch 2.900 ms vs GPU compute 3.000 ms (> 0.8x)",)
