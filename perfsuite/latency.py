"""The latency benchmark: pytest-benchmark's fixture driven by perfsuite's timing rules.

Timed region of each round: `Runner.run` on one host input, which returns only after the device
finished (end to end: host-to-device copy, compute, device-to-host copy). Warm-up is by time
before pytest-benchmark's rounds start; rounds are fixed (pedantic mode), so runs are comparable.
On CUDA, GPU-compute time from CUDA events (inputs already on the device) and the host's launch
time are measured after the host-clock rounds, and the GPU's clocks and temperature are read
before and after.
"""

from __future__ import annotations

from typing import Any

from perfsuite.backends import CaseSpec, Runner
from perfsuite.gpu_state import GpuState, nvidia_smi_selector, read_gpu_state
from perfsuite.perf_run import CaseResult, PerfRun
from perfsuite.timing import (
    LatencyStats,
    cuda_event_samples,
    summarize,
    timing_warnings,
    warm_up,
)


def measure_latency(benchmark: Any, perf: PerfRun, case: CaseSpec, runner: Runner) -> CaseResult:
    timing = perf.config.timing
    sample = perf.inputs(case.model)[0]
    benchmark.group = case.model
    on_gpu = case.device == "cuda"
    state_before = _gpu_state() if on_gpu else None
    if not getattr(benchmark, "disabled", False):
        warm_up(lambda: runner.run(sample), timing.warmup_seconds, timing.warmup_min_runs)
    benchmark.pedantic(runner.run, args=(sample,), rounds=timing.rounds, iterations=1,
                       warmup_rounds=0)
    latency = _host_stats(benchmark, timing.trials)
    gpu_latency = enqueue_latency = None
    enqueue = runner.device_enqueue(sample) if latency is not None else None
    if enqueue is not None:
        samples = cuda_event_samples(enqueue, timing.rounds)
        gpu_latency = summarize(samples.gpu_s, timing.trials)
        enqueue_latency = summarize(samples.enqueue_s, timing.trials)
    state = {"before": state_before, "after": _gpu_state() if on_gpu else None}
    result = CaseResult(
        case, runner.artifact_bytes, latency, gpu_latency, enqueue_latency, perf.drift(case),
        runner.describe(), timing_warnings(latency, gpu_latency, enqueue_latency),
        {when: s.as_dict() for when, s in state.items() if s is not None},
    )
    benchmark.extra_info.update(extra_info(result, perf.cpu_threads))
    stats = getattr(benchmark, "stats", None)
    samples_ms = tuple(s * 1e3 for s in stats.stats.data) if stats is not None else ()
    perf.record(result, samples_ms)
    return result


def _gpu_state() -> GpuState | None:
    return read_gpu_state(nvidia_smi_selector())


def _host_stats(benchmark: Any, trials: int) -> LatencyStats | None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable, or xdist: nothing was timed
        return None
    return summarize(stats.stats.data, trials)


def extra_info(result: CaseResult, cpu_threads: int) -> dict[str, Any]:
    """The JSON-safe record pytest-benchmark stores per benchmark (plain floats, ints, strings)."""
    info: dict[str, Any] = {
        "model": result.case.model,
        "backend": result.case.backend,
        "precision": result.case.precision,
        "device": result.case.device,
        "artifact_bytes": int(result.artifact_bytes),
        "cpu_threads": int(cpu_threads),
        "timer": "perf_counter around a synchronised Runner.run",
        "session": dict(result.details),
        "warnings": list(result.warnings),
    }
    for name in ("latency", "gpu_latency", "enqueue_latency"):
        stats = getattr(result, name)
        if stats is not None:
            info[name] = stats.as_dict()
    if result.gpu_state:
        info["gpu_state"] = result.gpu_state
    if result.drift is not None:
        info.update(result.drift.as_dict())
    return info
