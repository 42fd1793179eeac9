"""Latency of every (model, backend, precision) through pytest-benchmark, with drift and size
recorded in the benchmark's extra_info."""

from __future__ import annotations

import pytest


def test_latency(benchmark, perf, perf_case, perf_runner, pytestconfig):
    if hasattr(pytestconfig, "workerinput"):  # a pytest-xdist worker (pytest-benchmark 4 with
        # pytest-xdist 3.0 still times there): workers running at once disturb each other
        pytest.skip(f"{perf_case.id}: latency not timed under xdist (-n): parallel workers "
                    "disturb each other's timings")
    result = perf.measure_latency(benchmark, perf_case, perf_runner)
    assert result.artifact_bytes > 0
    if result.latency is None:  # pytest-benchmark timed nothing: say so, never pass silently
        pytest.skip(f"{perf_case.id}: latency not timed (--benchmark-disable); its size and "
                    "drift were checked")
    assert result.latency.median_ms > 0
    ab = perf.config.ab  # under --perf-ab the rounds are the current side's ABBA trials, up to
    # `pairs` of them: the comparison stops once its answer is clear
    host_pairs = len(result.paired[0].current_ms) if result.paired else 0
    assert host_pairs <= ab.pairs
    rounds = host_pairs * ab.rounds_per_trial if result.paired else perf.config.timing.rounds
    assert result.latency.samples == rounds
