"""Turning a Runner into latency samples, and the statistics of those samples.

Rules (what is inside the timed region is stated where it is timed):
- warm up by time: at least `min_seconds` and at least `min_runs` calls, so lazy initialisation,
  autotuning and clock ramp-up stay out of the numbers;
- host-clock samples time `Runner.run`, which returns only after the device finished
  (end to end: input copy from host, compute, output copy back);
- GPU-compute samples come from CUDA events recorded around the compute alone, inputs already on
  the device (`cuda_event_samples`);
- statistics are pure functions of the samples.
"""

from __future__ import annotations

import math
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perfsuite.lazy import require

Clock = typing.Callable[[], float]  # typing's: subscriptable at run time on Python 3.8


def warm_up(call: Callable[[], object], min_seconds: float, min_runs: int,
            clock: Clock = time.perf_counter) -> int:
    """Call `call` until both `min_seconds` have passed and `min_runs` calls were made."""
    start = clock()
    runs = 0
    while runs < min_runs or clock() - start < min_seconds:
        call()
        runs += 1
    return runs


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-call latencies, in milliseconds."""

    samples: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    cv: float  # standard deviation over mean
    trial_medians_ms: tuple[float, ...]
    trial_p90_ms: tuple[float, ...] = ()

    @property
    def throughput_per_s(self) -> float:
        return 1000.0 / self.median_ms if self.median_ms > 0 else float("inf")

    def as_dict(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "median_ms": self.median_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "cv": self.cv,
            "trial_medians_ms": list(self.trial_medians_ms),
            "trial_p90_ms": list(self.trial_p90_ms),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyStats:
        """The inverse of as_dict; ValueError, KeyError or TypeError when a number is missing,
        not finite, or not positive where a latency must be."""
        medians = tuple(positive(v, "trial_medians_ms") for v in data["trial_medians_ms"])
        if not medians:
            raise ValueError("trial_medians_ms is empty")
        return cls(
            samples=int(data["samples"]),
            median_ms=positive(data["median_ms"], "median_ms"),
            p90_ms=positive(data["p90_ms"], "p90_ms"),
            p99_ms=positive(data["p99_ms"], "p99_ms"),
            mean_ms=positive(data["mean_ms"], "mean_ms"),
            min_ms=positive(data["min_ms"], "min_ms"),
            cv=float(data["cv"]),
            trial_medians_ms=medians,
            trial_p90_ms=tuple(positive(v, "trial_p90_ms") for v in data["trial_p90_ms"]),
        )


def positive(value: Any, name: str) -> float:
    """`value` as a float; ValueError unless it is a finite number above zero."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
    return number


def summarize(samples_s: Sequence[float], trials: int = 1) -> LatencyStats:
    """Statistics of per-call seconds; `trials` consecutive equal chunks give per-trial medians.

    The median and p90 are the medians of the trials' medians and p90s: the statistics the
    gate compares, so the table, the reports, the baseline and `perfsuite history` all show the
    number that was judged (a bimodal CPU benchmark's median of all calls can differ from it)."""
    if not samples_s:
        raise ValueError("no latency samples to summarize")
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    chunks = np.array_split(ms, max(1, min(trials, ms.size)))
    medians = tuple(float(np.median(chunk)) for chunk in chunks)
    p90s = tuple(float(np.percentile(chunk, 90)) for chunk in chunks)
    mean = float(ms.mean())
    return LatencyStats(
        samples=int(ms.size),
        median_ms=float(np.median(medians)),
        p90_ms=float(np.median(p90s)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=mean,
        min_ms=float(ms.min()),
        cv=float(ms.std() / mean) if mean > 0 else 0.0,
        trial_medians_ms=medians,
        trial_p90_ms=p90s,
    )


@dataclass(frozen=True)
class DeviceSamples:
    """Per-call seconds: GPU compute (CUDA events) and the host time spent enqueueing it."""

    gpu_s: tuple[float, ...]
    enqueue_s: tuple[float, ...]


def cuda_event_samples(enqueue: Callable[[], object], rounds: int, warmup_runs: int = 10,
                       clock: Clock = time.perf_counter) -> DeviceSamples:
    """Time `enqueue` (device work only, inputs already on the device) with CUDA events.

    Timed region on the GPU: the work `enqueue` launches on the current stream, bracketed per
    call by its own event pair. On the host, the clock brackets the `enqueue` call alone (launch
    cost, no synchronisation). The stream is synchronised once, after the last call.
    """
    torch = require("torch")
    for _ in range(warmup_runs):
        enqueue()
    torch.cuda.synchronize()
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
             for _ in range(rounds)]
    enqueue_s = []
    stream = torch.cuda.current_stream()
    for start, end in pairs:
        start.record(stream)
        launched = clock()
        enqueue()
        enqueue_s.append(clock() - launched)
        end.record(stream)
    torch.cuda.synchronize()
    gpu_s = tuple(start.elapsed_time(end) / 1e3 for start, end in pairs)
    return DeviceSamples(gpu_s, tuple(enqueue_s))


def trials_cv(stats: LatencyStats) -> float:
    """The coefficient of variation of the trials' medians (0 with one trial)."""
    medians = np.asarray(stats.trial_medians_ms, dtype=np.float64)
    if medians.size < 2 or medians.mean() <= 0:
        return 0.0
    return float(medians.std(ddof=1) / medians.mean())


# trtexec's two warnings: unstable timing and enqueue-bound inference.
UNSTABLE_CV = 0.025
ENQUEUE_BOUND_RATIO = 0.8
WARNING_LABELS = ("unstable", "enqueue-bound")  # the words the results table's notes show


def timing_warnings(host: LatencyStats | None, gpu: LatencyStats | None,
                    enqueue: LatencyStats | None) -> tuple[str, ...]:
    """Human-readable warnings about how far the numbers can be trusted."""
    found = []
    judged, label = (gpu, "GPU compute") if gpu is not None else (host, "end-to-end")
    if judged is not None:
        # Between trials where there are several: per-call jitter (every CPU benchmark's) is
        # what the median is for; trials that disagree mean the machine changed during the run.
        cv, what = (trials_cv(judged), "trials' medians") if len(judged.trial_medians_ms) > 1 \
            else (judged.cv, "calls")
        if cv > UNSTABLE_CV:
            found.append(f"{WARNING_LABELS[0]}: {label} {what} vary by CV {cv:.1%} > "
                         f"{UNSTABLE_CV:.1%}")
    if gpu is not None and enqueue is not None and (
        enqueue.median_ms > ENQUEUE_BOUND_RATIO * gpu.median_ms
    ):
        found.append(f"{WARNING_LABELS[1]}: host launch {enqueue.median_ms:.3f} ms vs GPU compute "
                     f"{gpu.median_ms:.3f} ms (> {ENQUEUE_BOUND_RATIO:g}x)")
    return tuple(found)
