"""Latency of every (model, backend, precision) through pytest-benchmark, with drift and size
recorded in the benchmark's extra_info."""

from __future__ import annotations

from perfsuite.latency import measure_latency


def test_latency(benchmark, perf, perf_case, perf_session):
    result = measure_latency(benchmark, perf, perf_case, perf_session)
    assert result.artifact_bytes > 0
    if result.latency is not None:  # None only under --benchmark-disable
        assert result.latency.median_ms > 0
        assert result.latency.samples == perf.config.timing.rounds
