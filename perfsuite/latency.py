"""The latency benchmark: pytest-benchmark's fixture driven by perfsuite's timing rules.

Timed region of each round: `Runner.run` on one host input, which returns only after the device
finished (end to end: host-to-device copy, compute, device-to-host copy). Warm-up is by time
before pytest-benchmark's rounds start; rounds are fixed (pedantic mode), so runs are comparable.
On CUDA, GPU-compute time from CUDA events (inputs already on the device) and the host's launch
time are measured after the host-clock rounds. Where the machine has a power meter (a Jetson's
INA3221, a GPU's NVML), an energy window follows (perfsuite.energy), and the GPU's clocks,
temperature and power are read before the warm-up and after the energy window. The pre-flight
checks run before the first latency benchmark (perfsuite.monitor).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from perfsuite.backends import CaseSpec, Runner, ToolTimings
from perfsuite.energy import Clock, EnergyStats, measure_energy
from perfsuite.errors import PerfsuiteError
from perfsuite.lazy import require
from perfsuite.paired import PairedTrials, alternate, host_timed
from perfsuite.perf_run import CaseResult, PerfRun
from perfsuite.progress import RoundCounter, rounds_every_s, step
from perfsuite.timing import (
    LatencyStats,
    cuda_event_samples,
    summarize,
    timing_warnings,
    warm_up,
)


def measure_latency(benchmark: Any, perf: PerfRun, case: CaseSpec, runner: Runner) -> CaseResult:
    if not getattr(benchmark, "disabled", False):
        perf.monitor.before_timing()  # raises when a failed check fails or skips the benchmark
    if runner.timed_by_tool and perf.base is not None:
        perf.base_failures[case.id] = (f"{case.backend} times itself in its own process; "
                                       "--perf-ab pairs the backends perfsuite times")
        base = None
    else:
        base = _base_runner(perf, case)
    if base is not None:
        return _measure_paired(benchmark, perf, case, runner, base)
    timing = perf.config.timing
    sample = perf.inputs(case.model)[0]
    benchmark.group = case.model
    if not getattr(benchmark, "disabled", False):
        timed = runner.tool_timings(sample, timing.rounds, timing.warmup_seconds)
        if timed is not None:
            return _record_tool_timings(benchmark, perf, case, runner, timed)
    state_before = perf.monitor.gpu_state()
    per_call_s = 0.0
    if not getattr(benchmark, "disabled", False):
        with step(perf.progress, f"{case.id}: warming up"):
            started = time.perf_counter()
            runs = warm_up(lambda: runner.run(sample), timing.warmup_seconds,
                           timing.warmup_min_runs)
            per_call_s = (time.perf_counter() - started) / max(runs, 1)
    _timed_rounds(benchmark, perf, case, runner.run, sample, per_call_s * timing.rounds)
    latency = _host_stats(benchmark, timing.trials)
    gpu_latency = enqueue_latency = None
    enqueue = runner.device_enqueue(sample) if latency is not None else None
    if enqueue is not None:
        samples = cuda_event_samples(enqueue, timing.rounds)
        gpu_latency = summarize(samples.gpu_s, timing.trials)
        enqueue_latency = summarize(samples.enqueue_s, timing.trials)
    clock = getattr(benchmark, "_timer", time.perf_counter)
    energy = energy_window(perf, case, runner, sample, clock) if latency is not None else None
    state = {"before": state_before, "after": perf.monitor.gpu_state()}
    result = CaseResult(
        case, runner.artifact_bytes, latency, gpu_latency, enqueue_latency, perf.drift(case),
        runner.describe(), _warnings(perf, latency, gpu_latency, enqueue_latency),
        {when: s.as_dict() for when, s in state.items() if s is not None}, energy=energy,
    )
    benchmark.extra_info.update(extra_info(result, perf.cpu_threads))
    stats = getattr(benchmark, "stats", None)
    samples_ms = tuple(s * 1e3 for s in stats.stats.data) if stats is not None else ()
    perf.record(result, samples_ms)
    return result


def _timed_rounds(benchmark: Any, perf: PerfRun, case: CaseSpec, run: Any, sample: Any,
                  expected_s: float) -> None:
    """pytest-benchmark times `rounds` single calls; a phase expected to take more than a few
    seconds says so and shows rounds done and time left while it runs."""
    rounds = perf.config.timing.rounds
    every = rounds_every_s(expected_s)
    if not every or getattr(benchmark, "disabled", False):
        benchmark.pedantic(run, args=(sample,), rounds=rounds, iterations=1, warmup_rounds=0)
        return
    counter = RoundCounter(run, rounds)
    with step(perf.progress, f"{case.id}: timing {rounds} rounds (about {expected_s:.0f} s)",
              every_s=every, status=counter.status):
        benchmark.pedantic(counter, args=(sample,), rounds=rounds, iterations=1, warmup_rounds=0)


def _record_tool_timings(benchmark: Any, perf: PerfRun, case: CaseSpec, runner: Runner,
                         timed: ToolTimings) -> CaseResult:
    """A backend that times itself (trtexec): its end-to-end times become pytest-benchmark's
    record; GPU compute and enqueue times are kept beside them, as CUDA events give them."""
    trials = perf.config.timing.trials
    _hand_to_pytest_benchmark(benchmark, list(timed.e2e_s), mode="timed by the backend's tool")
    latency = summarize(timed.e2e_s, trials)
    gpu_latency, enqueue = summarize(timed.gpu_s, trials), summarize(timed.enqueue_s, trials)
    result = CaseResult(case, runner.artifact_bytes, latency, gpu_latency, enqueue,
                        perf.drift(case), runner.describe(),
                        _warnings(perf, latency, gpu_latency, enqueue), {})
    benchmark.extra_info.update(extra_info(result, perf.cpu_threads))
    perf.record(result, tuple(s * 1e3 for s in timed.e2e_s))
    return result


def _base_runner(perf: PerfRun, case: CaseSpec) -> Runner | None:
    """Under --perf-ab, REF's runner for the same case; its failure is noted and the current
    side is measured alone."""
    if perf.base is None or not perf.base.configures(case.model, case.backend, case.precision):
        return None  # new since REF: listed, not compared
    base_case = perf.base.case(case.model, case.backend, case.precision)
    try:
        runner = perf.base.runner(base_case)
    except PerfsuiteError as exc:
        perf.base_failures[case.id] = perf.base_failed(exc)
        return None
    if runner.input_shape != perf.config.model(case.model).input_shape:
        perf.base_failures[case.id] = (f"{perf.base_ref}'s side failed: input shape "
                                       f"{runner.input_shape} at {perf.base_ref}, "
                                       f"{perf.config.model(case.model).input_shape} now")
        return None
    return runner


def _measure_paired(benchmark: Any, perf: PerfRun, case: CaseSpec, runner: Runner,
                    base: Runner) -> CaseResult:
    """Both sides in ABBA order, each call timed by the same code with pytest-benchmark's timer;
    pytest-benchmark's record (stats, table, JSON) is then made from the current side's calls."""
    timing, ab = perf.config.timing, perf.config.ab
    sample = perf.inputs(case.model)[0]
    base_sample = perf.base.inputs(case.model)[0] if perf.base is not None else sample
    benchmark.group = case.model
    with step(perf.progress, f"{case.id}: warming up both sides"):
        for call in (lambda: base.run(base_sample), lambda: runner.run(sample)):
            warm_up(call, timing.warmup_seconds, timing.warmup_min_runs)
    clock = getattr(benchmark, "_timer", time.perf_counter)
    host = alternate(host_timed(lambda: base.run(base_sample), clock),
                     host_timed(lambda: runner.run(sample), clock),
                     ab.pairs, ab.rounds_per_trial, "e2e")
    current_s = [ms / 1e3 for ms in host.current_samples_ms]
    _hand_to_pytest_benchmark(benchmark, current_s)
    gpu: PairedTrials | None = None
    enqueue, base_enqueue = runner.device_enqueue(sample), base.device_enqueue(base_sample)
    if enqueue is not None and base_enqueue is not None:
        # several calls back to back: the first finds the GPU idle and waits for its launch
        gpu = alternate(_device_timed(base_enqueue), _device_timed(enqueue), ab.pairs,
                        ab.gpu_rounds_per_trial, "gpu")
    latency = summarize(current_s, timing.trials)
    gpu_latency = (summarize([ms / 1e3 for ms in gpu.current_samples_ms], timing.trials)
                   if gpu is not None else None)
    result = CaseResult(
        case, runner.artifact_bytes, latency, gpu_latency, None, perf.drift(case),
        runner.describe(), _warnings(perf, latency, gpu_latency, None), {},
        paired=(host,) if gpu is None else (host, gpu),
    )
    benchmark.extra_info.update(extra_info(result, perf.cpu_threads))
    perf.record(result, host.current_samples_ms)
    return result


def _hand_to_pytest_benchmark(benchmark: Any, samples_s: list[float],
                              mode: str = "perfsuite --perf-ab") -> None:
    """pytest-benchmark's record of calls timed elsewhere (A/B: both sides by identical code; a
    tool's own timer). Uses pytest-benchmark 4-5's fixture internals."""
    benchmark._mode = mode
    stats = benchmark._make_stats(1)
    for seconds in samples_s:
        stats.update(seconds)


def _device_timed(enqueue: Callable[[], object]) -> Callable[[int], list[float]]:
    def measure(rounds: int) -> list[float]:
        return list(cuda_event_samples(enqueue, rounds, warmup_runs=0).gpu_s)

    return measure


def _warnings(perf: PerfRun, latency: LatencyStats | None, gpu: LatencyStats | None,
              enqueue: LatencyStats | None) -> tuple[str, ...]:
    """The timing's warnings, and the pre-flight's failures where the run only warns."""
    preflight = perf.monitor.before_timing() if latency is not None else ()
    return (*timing_warnings(latency, gpu, enqueue), *preflight)


def energy_window(perf: PerfRun, case: CaseSpec, runner: Runner, sample: Any,
                  clock: Clock = time.perf_counter) -> EnergyStats | None:
    """Energy per inference over back-to-back inferences (the GPU's launches where the session
    has them, else synchronised calls), windows timed by `clock` (pytest-benchmark's timer);
    None without a meter or with energy turned off."""
    timing = perf.config.timing
    meter = perf.monitor.meter(clock) if timing.energy_trial_seconds > 0 else None
    if meter is None:
        return None
    on_gpu = case.device == "cuda"
    enqueue = runner.device_enqueue(sample) if on_gpu else None
    call, workload = ((enqueue, "back-to-back device launches") if enqueue is not None else
                      (lambda: runner.run(sample), "synchronised calls"))
    synchronize = require("torch").cuda.synchronize if on_gpu else (lambda: None)
    with step(perf.progress, f"{case.id}: energy window, {timing.trials} x "
                             f"{timing.energy_trial_seconds:g} s ({meter.source})"):
        return measure_energy(call, synchronize, meter, workload, timing.trials,
                              timing.energy_trial_seconds, clock=clock)


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
    if result.energy is not None:
        info["energy"] = result.energy.as_dict()
    if result.drift is not None:
        info.update(result.drift.as_dict())
    if result.paired:  # --perf-ab: the pairs the verdicts are made from
        info["paired"] = [{"statistic": trials.statistic,
                           "base_trial_medians_ms": list(trials.base_ms),
                           "current_trial_medians_ms": list(trials.current_ms)}
                          for trials in result.paired]
    return info
