"""The latency benchmark: pytest-benchmark's fixture driven by perfsuite's timing rules.

Timed region of each round: `Session.run` on one host input, which returns only after the device
finished (end to end). Warm-up is by time before pytest-benchmark's rounds start; rounds are
fixed (pedantic mode), so runs are comparable. On CUDA, GPU-compute time from CUDA events
(inputs already on the device) is measured after the host-clock rounds.
"""

from __future__ import annotations

from typing import Any

from perfsuite.backends import CaseSpec, Session
from perfsuite.session import CaseResult, PerfSession
from perfsuite.timing import LatencyStats, cuda_event_samples, summarize, warm_up


def measure_latency(benchmark: Any, perf: PerfSession, case: CaseSpec, session: Session) -> CaseResult:
    timing = perf.config.timing
    sample = perf.inputs(case.model)[0]
    benchmark.group = case.model
    if not getattr(benchmark, "disabled", False):
        warm_up(lambda: session.run(sample), timing.warmup_seconds, timing.warmup_min_runs)
    benchmark.pedantic(session.run, args=(sample,), rounds=timing.rounds, iterations=1,
                       warmup_rounds=0)  # fmt: skip
    latency = _host_stats(benchmark, timing.trials)
    gpu_latency = _gpu_stats(session, sample, timing.rounds, timing.trials)
    result = CaseResult(case, session.artifact_bytes, latency, gpu_latency, perf.drift(case),
                        session.describe())  # fmt: skip
    benchmark.extra_info.update(extra_info(result, perf.cpu_threads))
    perf.record(result)
    return result


def _host_stats(benchmark: Any, trials: int) -> LatencyStats | None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable, or xdist: nothing was timed
        return None
    return summarize(stats.stats.data, trials)


def _gpu_stats(session: Session, sample: Any, rounds: int, trials: int) -> LatencyStats | None:
    enqueue = session.device_enqueue(sample)
    if enqueue is None:
        return None
    return summarize(cuda_event_samples(enqueue, rounds), trials)


def extra_info(result: CaseResult, cpu_threads: int) -> dict[str, Any]:
    """The JSON-safe record pytest-benchmark stores per benchmark (plain floats, ints, strings)."""
    info: dict[str, Any] = {
        "model": result.case.model,
        "backend": result.case.backend,
        "precision": result.case.precision,
        "device": result.case.device,
        "artifact_bytes": int(result.artifact_bytes),
        "cpu_threads": int(cpu_threads),
        "timer": "perf_counter around a synchronised Session.run",
        "session": dict(result.details),
    }
    if result.latency is not None:
        info["latency"] = result.latency.as_dict()
    if result.gpu_latency is not None:
        info["gpu_latency"] = result.gpu_latency.as_dict()
    if result.drift is not None:
        info.update(result.drift.as_dict())
    return info
