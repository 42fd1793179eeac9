"""What the fresh child processes of process_spread.py and worker_placement.py share: a CUDA
graph captured the usual way, and one trial's per-call median. Only torch is imported here, so
the process being measured holds nothing else."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def capture(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """A CUDA graph of `model(x)` (warmed on a side stream first), as its replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(x)
    return graph.replay


def trial_median(call: Callable[[], object], calls: int, cuda: bool,
                 clock: Callable[[], float] = time.perf_counter) -> float:
    """The median ms of `calls` calls: CUDA events around each call on CUDA (GPU compute),
    `clock` (seconds) on a CPU."""
    times = []
    for _ in range(calls):
        if cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            began = clock()
            call()
            times.append((clock() - began) * 1e3)
    return statistics.median(times)
