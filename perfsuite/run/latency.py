"""The latency benchmark: pytest-benchmark's fixture driven by perfsuite's timing rules.

Timed region of each round: `Runner.run` on one host input, which returns only after the device
finished (end to end: host-to-device copy, compute, device-to-host copy). Warm-up is by time
before pytest-benchmark's rounds start; rounds are fixed (pedantic mode), so runs are comparable.
With `passes` > 1 the host-clock rounds come from the run's interleaved passes instead (the
workshop times them all at the first latency benchmark, on the same clock).
On CUDA, GPU-compute time from CUDA events (inputs already on the device) and the host's launch
time are measured after the host-clock rounds. Where the machine has a power meter (a Jetson's
INA3221, a GPU's NVML), an energy window follows (perfsuite.measure.energy), and the GPU's clocks,
temperature and power are read before the warm-up and after the energy window. The pre-flight
checks run before the first latency benchmark (perfsuite.machine.monitor).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from perfsuite.backends.base import CaseSpec, Runner, ToolTimings
from perfsuite.config.parts import AbConfig, TimingConfig
from perfsuite.errors import SideError, SideStopped
from perfsuite.lazy import require
from perfsuite.machine.monitor import RunMonitor
from perfsuite.measure.agreement import Drift
from perfsuite.measure.energy import Clock, EnergyStats, measure_energy
from perfsuite.measure.latency_stats import LatencyStats, summarize, timing_warnings
from perfsuite.measure.paired import PairedTrials, Sequential, alternate
from perfsuite.measure.timing import cuda_event_samples, warm_up
from perfsuite.progress import Progress, RoundCounter, rounds_every_s, step
from perfsuite.results import CaseResult, encode_case_result
from perfsuite.run.ab.sides import AbSides


@dataclass(frozen=True)
class LatencyPlan:
    """What timing one case takes from its run: the settings, the sample input, the machine's
    monitor, the progress line, the A/B sides (None outside --perf-ab) and the case's drift
    against the reference (called once the timing is done)."""

    case: CaseSpec
    timing: TimingConfig
    ab: AbConfig
    input_shape: tuple[int, ...]
    sample: Any
    monitor: RunMonitor
    progress: Progress
    cpu_threads: int
    sides: AbSides | None
    drift: Callable[[], Drift | None]
    # A/B: (statistic 'gpu' or 'e2e', how many gate the case) -> when its pairs may stop (the
    # A/B gate's rule)
    ab_rule: Callable[[str, int], Sequential] = lambda statistic, statistics: Sequential(0.0, 2**31)
    # timing.passes > 1: the case's host-clock seconds from the run's interleaved passes, timed
    # on the given clock (None: timed here, in one go)
    interleaved: Callable[[Clock], tuple[float, ...] | None] = lambda clock: None


@dataclass(frozen=True)
class LatencyMeasurement:
    """A timed case: its result and pytest-benchmark's raw samples (ms)."""

    result: CaseResult
    samples_ms: tuple[float, ...]


def measure_latency(benchmark: Any, plan: LatencyPlan, runner: Runner) -> LatencyMeasurement:
    """Time `plan.case` through pytest-benchmark's fixture (warm-up by time, then `rounds`
    synchronised calls on the host clock; on CUDA also CUDA-event timing and an energy window),
    or in A/B pairs under --perf-ab, or by the backend's own tool (trtexec)."""
    case = plan.case
    if not getattr(benchmark, "disabled", False):
        plan.monitor.before_timing()  # raises when a failed check fails or skips the benchmark
    if plan.sides is not None:
        paired = _measure_paired(benchmark, plan, plan.sides, runner)
        if paired is not None:
            return paired
    timing = plan.timing
    sample = plan.sample
    benchmark.group = case.model
    if not getattr(benchmark, "disabled", False):
        timed = runner.tool_timings(sample, timing.rounds, timing.warmup_seconds)
        if timed is not None:
            return _record_tool_timings(benchmark, plan, runner, timed)
    state_before = plan.monitor.gpu_state()
    clock = getattr(benchmark, "_timer", time.perf_counter)
    disabled = getattr(benchmark, "disabled", False)
    interleaved = None if disabled else plan.interleaved(clock)
    passes = 1
    if interleaved is not None:
        passes = min(timing.passes, timing.rounds)
        _hand_to_pytest_benchmark(benchmark, list(interleaved),
                                  mode=f"perfsuite: interleaved in {passes} passes")
    else:
        per_call_s = 0.0
        if not disabled:
            with step(plan.progress, f"{case.id}: warming up"):
                started = time.perf_counter()
                runs = warm_up(lambda: runner.run(sample), timing.warmup_seconds,
                               timing.warmup_min_runs)
                per_call_s = (time.perf_counter() - started) / max(runs, 1)
        _timed_rounds(benchmark, plan, runner.run, per_call_s * timing.rounds)
    latency = _host_stats(benchmark, timing.trials)
    gpu_latency = enqueue_latency = None
    enqueue = runner.device_enqueue(sample) if latency is not None else None
    if enqueue is not None:
        samples = cuda_event_samples(enqueue, timing.rounds)
        gpu_latency = summarize(samples.gpu_s, timing.trials)
        enqueue_latency = summarize(samples.enqueue_s, timing.trials)
    energy = energy_window(plan, runner, clock) if latency is not None else None
    state = {"before": state_before, "after": plan.monitor.gpu_state()}
    result = CaseResult(
        case, runner.artifact_bytes, latency, gpu_latency, enqueue_latency, plan.drift(),
        runner.describe(), _warnings(plan, latency, gpu_latency, enqueue_latency),
        {when: s.as_dict() for when, s in state.items() if s is not None}, energy=energy,
        passes=passes,
    )
    benchmark.extra_info.update(encode_case_result(result, plan.cpu_threads))
    stats = getattr(benchmark, "stats", None)
    samples_ms = tuple(s * 1e3 for s in stats.stats.data) if stats is not None else ()
    return LatencyMeasurement(result, samples_ms)


def _timed_rounds(benchmark: Any, plan: LatencyPlan, run: Any, expected_s: float) -> None:
    """pytest-benchmark times `rounds` single calls; a phase expected to take more than a few
    seconds says so and shows rounds done and time left while it runs."""
    rounds, sample = plan.timing.rounds, plan.sample
    every = rounds_every_s(expected_s)
    if not every or getattr(benchmark, "disabled", False):
        benchmark.pedantic(run, args=(sample,), rounds=rounds, iterations=1, warmup_rounds=0)
        return
    counter = RoundCounter(run, rounds)
    with step(plan.progress, f"{plan.case.id}: timing {rounds} rounds (about {expected_s:.0f} s)",
              every_s=every, status=counter.status):
        benchmark.pedantic(counter, args=(sample,), rounds=rounds, iterations=1, warmup_rounds=0)


def _record_tool_timings(benchmark: Any, plan: LatencyPlan, runner: Runner,
                         timed: ToolTimings) -> LatencyMeasurement:
    """A backend that times itself (trtexec): its end-to-end times become pytest-benchmark's
    record; GPU compute and enqueue times are kept beside them, as CUDA events give them."""
    trials = plan.timing.trials
    _hand_to_pytest_benchmark(benchmark, list(timed.e2e_s), mode="timed by the backend's tool")
    latency = summarize(timed.e2e_s, trials)
    gpu_latency = summarize(timed.gpu_s, trials) if timed.gpu_s else None
    enqueue = summarize(timed.enqueue_s, trials) if timed.enqueue_s else None
    result = CaseResult(plan.case, runner.artifact_bytes, latency, gpu_latency, enqueue,
                        plan.drift(), runner.describe(),
                        (*_warnings(plan, latency, gpu_latency, enqueue), *timed.notes), {})
    benchmark.extra_info.update(encode_case_result(result, plan.cpu_threads))
    return LatencyMeasurement(result, tuple(s * 1e3 for s in timed.e2e_s))


def _measure_paired(benchmark: Any, plan: LatencyPlan, ab: AbSides,
                    runner: Runner) -> LatencyMeasurement | None:
    """Both sides in ABBA order, each trial timed in its side's worker; pytest-benchmark's record
    (stats, table, JSON) is then made from the current side's calls. None, with the reason noted,
    when the sides cannot be paired: the current side is then measured here alone."""
    case = plan.case
    if runner.timed_by_tool:
        if ab.configures(case.model, case.backend, case.precision):
            ab.failures[case.id] = (f"{case.backend} times itself in its own process; "
                                    "--perf-ab pairs the backends perfsuite times")
        return None
    pair = ab.prepare(case, plan.input_shape)
    if pair is None:
        return None
    timing, settings = plan.timing, plan.ab
    benchmark.group = case.model
    try:
        with step(plan.progress, f"{case.id}: warming up both sides"):
            ab.warm(pair)
        gating = 2 if pair.gpu else 1  # statistics that gate the case
        host = _pairs(plan, pair.trials(pair.base, "e2e"), pair.trials(pair.current, "e2e"),
                      settings.rounds_per_trial, "e2e", gating, "ABBA pairs")
        gpu: PairedTrials | None = None
        if pair.gpu:
            calls = gpu_calls_per_trial(settings, case.device,
                                        median((*host.base_samples_ms, *host.current_samples_ms)))
            gpu = _pairs(plan, pair.trials(pair.base, "gpu"), pair.trials(pair.current, "gpu"),
                         calls, "gpu", gating, f"ABBA pairs of GPU compute ({calls} calls a trial)")
    except (SideError, SideStopped) as exc:
        ab.failures[case.id] = ab.side_failed(exc)
        return None
    current_s = [ms / 1e3 for ms in host.current_samples_ms]
    _hand_to_pytest_benchmark(benchmark, current_s)
    latency = summarize(current_s, timing.trials)
    gpu_latency = (summarize([ms / 1e3 for ms in gpu.current_samples_ms], timing.trials)
                   if gpu is not None else None)
    result = CaseResult(
        case, runner.artifact_bytes, latency, gpu_latency, None, plan.drift(),
        runner.describe(), _warnings(plan, latency, gpu_latency, None), {},
        paired=(host,) if gpu is None else (host, gpu),
    )
    benchmark.extra_info.update(encode_case_result(result, plan.cpu_threads))
    return LatencyMeasurement(result, tuple(host.current_samples_ms))


def gpu_calls_per_trial(settings: AbConfig, device: str, call_ms: float) -> int:
    """Back-to-back calls in a GPU-compute trial: `gpu_rounds_per_trial` (the first call of a
    trial finds the GPU idle; the median leaves it out), fewer where that many would not let
    every pair fit in the statistic's time bound at `call_ms` a call, and at least one. A
    launch-bound eager call (milliseconds) gets one or two: the GPU waits for the host in
    every call alike, and cutting its pairs short cost more than single calls (docs/gate.md)."""
    fit = int(settings.pairs_seconds(device) * 1e3 / (2 * settings.pairs * max(call_ms, 1e-6)))
    return max(1, min(settings.gpu_rounds_per_trial, fit))


def _pairs(plan: LatencyPlan, base: Callable[[int], list[float]],
           current: Callable[[int], list[float]], rounds: int, statistic: str, statistics: int,
           what: str) -> PairedTrials:
    """Up to `pairs` ABBA pairs of one statistic, stopping once the answer is clear (at the
    statistic's practical limit, by the A/B gate's rule); the progress line counts the trials."""
    settings = plan.ab
    counter = [0]

    def counted(measure: Callable[[int], list[float]]) -> Callable[[int], list[float]]:
        def run(rounds: int) -> list[float]:
            counter[0] += 1
            return measure(rounds)
        return run

    rule = plan.ab_rule(statistic, statistics)
    with step(plan.progress, f"{plan.case.id}: up to {settings.pairs} {what}",
              status=lambda elapsed: f"{counter[0]} trials"):
        return alternate(counted(base), counted(current), settings.pairs, rounds, statistic,
                         rule, settings.pairs_seconds(plan.case.device))


def _hand_to_pytest_benchmark(benchmark: Any, samples_s: list[float],
                              mode: str = "perfsuite --perf-ab") -> None:
    """pytest-benchmark's record of calls timed elsewhere (A/B: both sides by identical code; a
    tool's own timer; the run's interleaved passes). Uses pytest-benchmark 4-5's fixture
    internals."""
    benchmark._mode = mode
    stats = benchmark._make_stats(1)
    for seconds in samples_s:
        stats.update(seconds)


def _warnings(plan: LatencyPlan, latency: LatencyStats | None, gpu: LatencyStats | None,
              enqueue: LatencyStats | None) -> tuple[str, ...]:
    """The timing's warnings, and the pre-flight's failures where the run only warns."""
    preflight = plan.monitor.before_timing() if latency is not None else ()
    return (*timing_warnings(latency, gpu, enqueue), *preflight)


def energy_window(plan: LatencyPlan, runner: Runner,
                  clock: Clock = time.perf_counter) -> EnergyStats | None:
    """Energy per inference over back-to-back inferences (the GPU's launches where the session
    has them, else synchronised calls), windows timed by `clock` (pytest-benchmark's timer);
    None without a meter or with energy turned off."""
    timing, case, sample = plan.timing, plan.case, plan.sample
    meter = plan.monitor.meter(clock) if timing.energy_trial_seconds > 0 else None
    if meter is None:
        return None
    on_gpu = case.device == "cuda"
    enqueue = runner.device_enqueue(sample) if on_gpu else None
    call, workload = ((enqueue, "back-to-back device launches") if enqueue is not None else
                      (lambda: runner.run(sample), "synchronised calls"))
    synchronize = require("torch").cuda.synchronize if on_gpu else (lambda: None)
    with step(plan.progress, f"{case.id}: energy window, {timing.trials} x "
                             f"{timing.energy_trial_seconds:g} s ({meter.source})"):
        return measure_energy(call, synchronize, meter, workload, timing.trials,
                              timing.energy_trial_seconds, clock=clock)


def _host_stats(benchmark: Any, trials: int) -> LatencyStats | None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable, or xdist: nothing was timed
        return None
    return summarize(stats.stats.data, trials)
