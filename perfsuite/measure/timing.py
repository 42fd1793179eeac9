"""Turning a Runner into latency samples, and the statistics of those samples.

Rules (what is inside the timed region is stated where it is timed):
- warm up by time: at least `min_seconds` and at least `min_runs` calls, so lazy initialisation,
  autotuning and clock ramp-up stay out of the numbers;
- host-clock samples time `Runner.run`, which returns only after the device finished
  (end to end: input copy from host, compute, output copy back);
- with `passes` > 1 a run's host-clock rounds are spread over the whole run
  (`interleaved_samples`): every case's rounds in that many passes over all cases, each pass
  in a new order, so that a slow spell of the machine (a busy neighbour for some seconds)
  falls on a part of every case's rounds instead of on all of one case's;
- GPU-compute samples come from CUDA events recorded around the compute alone, inputs already on
  the device (`cuda_event_samples`);
- statistics are pure functions of the samples.
"""

from __future__ import annotations

import random
import time
import typing
from collections.abc import Callable, Mapping
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


INTERLEAVED_WARM_CALLS = 3  # untimed calls at each visit: the caches the other cases used


Key = typing.TypeVar("Key")


def interleaved_samples(calls: Mapping[Key, Callable[[], object]], rounds: int, passes: int,
                        clock: Clock = time.perf_counter, seed: int = 0,
                        on_pass: Callable[[int], object] = lambda done: None
                        ) -> dict[Key, list[float]]:
    """`rounds` host-clock seconds per call of `calls` (warmed up already), taken in `passes`
    passes over all of them, each pass in a new seeded order; a visit makes
    INTERLEAVED_WARM_CALLS untimed calls, then its share of the rounds (the first
    `rounds % passes` passes take one more); `on_pass` hears the count of passes done."""
    passes = max(1, min(passes, rounds))
    order = list(calls)
    shuffle = random.Random(seed).shuffle
    samples: dict[Key, list[float]] = {name: [] for name in order}
    for number in range(passes):
        shuffle(order)
        share = rounds // passes + (1 if number < rounds % passes else 0)
        for name in order:
            call = calls[name]
            for _ in range(INTERLEAVED_WARM_CALLS):
                call()
            for _ in range(share):
                start = clock()
                call()
                samples[name].append(clock() - start)
        on_pass(number + 1)
    return samples
