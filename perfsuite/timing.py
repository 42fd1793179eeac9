"""Turning a Session into latency samples, and the statistics of those samples.

Rules (what is inside the timed region is stated where it is timed):
- warm up by time: at least `min_seconds` and at least `min_runs` calls, so lazy initialisation,
  autotuning and clock ramp-up stay out of the numbers;
- host-clock samples time `Session.run`, which returns only after the device finished
  (end to end: input copy from host, compute, output copy back);
- GPU-compute samples come from CUDA events recorded around the compute alone, inputs already on
  the device (`cuda_event_samples`);
- statistics are pure functions of the samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from perfsuite.lazy import require

Clock = Callable[[], float]


def warm_up(call: Callable[[], object], min_seconds: float, min_runs: int,
            clock: Clock = time.perf_counter) -> int:  # fmt: skip
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
        }


def summarize(samples_s: Sequence[float], trials: int = 1) -> LatencyStats:
    """Statistics of per-call seconds; `trials` consecutive equal chunks give per-trial medians."""
    if not samples_s:
        raise ValueError("no latency samples to summarize")
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    chunks = np.array_split(ms, max(1, min(trials, ms.size)))
    mean = float(ms.mean())
    return LatencyStats(
        samples=int(ms.size),
        median_ms=float(np.median(ms)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=mean,
        min_ms=float(ms.min()),
        cv=float(ms.std() / mean) if mean > 0 else 0.0,
        trial_medians_ms=tuple(float(np.median(chunk)) for chunk in chunks),
    )


def cuda_event_samples(enqueue: Callable[[], object], rounds: int, warmup_runs: int = 10
                       ) -> tuple[float, ...]:  # fmt: skip
    """Seconds per call of `enqueue` (device work only) from CUDA events on the current stream.

    Timed region: the work `enqueue` launches on the current stream, nothing on the host.
    Each call is bracketed by its own event pair and the stream is synchronised once at the end.
    """
    torch = require("torch")
    for _ in range(warmup_runs):
        enqueue()
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
             for _ in range(rounds)]  # fmt: skip
    stream = torch.cuda.current_stream()
    for start, end in pairs:
        start.record(stream)
        enqueue()
        end.record(stream)
    torch.cuda.synchronize()
    return tuple(start.elapsed_time(end) / 1e3 for start, end in pairs)
