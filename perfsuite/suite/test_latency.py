"""Latency of every (model, backend, precision) through pytest-benchmark, with drift and size
recorded in the benchmark's extra_info."""

from __future__ import annotations

import pytest

from perfsuite.latency import measure_latency


def test_latency(benchmark, perf, perf_case, perf_runner, pytestconfig):
    result = measure_latency(benchmark, perf, perf_case, perf_runner)
    assert result.artifact_bytes > 0
    if result.latency is None:  # pytest-benchmark timed nothing: say so, never pass silently
        xdist = hasattr(pytestconfig, "workerinput")  # a pytest-xdist worker
        why = "pytest-benchmark turns benchmarks off under xdist (-n)" if xdist else \
            "--benchmark-disable"
        pytest.skip(f"{perf_case.id}: latency not timed ({why}); its size and drift were checked")
    assert result.latency.median_ms > 0
    ab = perf.config.ab  # under --perf-ab the rounds are the current side's ABBA trials
    rounds = ab.pairs * ab.rounds_per_trial if result.paired else perf.config.timing.rounds
    assert result.latency.samples == rounds
