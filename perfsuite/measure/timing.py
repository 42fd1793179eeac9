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

import time
import typing
from collections.abc import Callable
from dataclasses import dataclass

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
