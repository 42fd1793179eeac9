"""Small models built in code for fast unit tests (importable as a perfsuite factory)."""

from __future__ import annotations

import os
import time

import torch
from torch import nn

BUILDS_FILE_ENV = "PERFSUITE_TEST_BUILDS_FILE"


SPIN_MS_ENV = "PERFSUITE_TEST_SPIN_MS"  # a fixed, exact amount of extra work per forward
# "EVERY:MS": every EVERY-th call of the spin takes MS milliseconds instead (a tail-only change)
TAIL_ENV = "PERFSUITE_TEST_TAIL"
COPIES_ENV = "PERFSUITE_TEST_COPIES"  # an ensemble of N copies: N times the parameters
# Set: the spin advances `virtual_clock` instead of burning CPU time, so a benchmark timed with
# `--benchmark-timer=tiny_models.virtual_clock` measures exactly the spin, whatever the load.
VIRTUAL_CLOCK_ENV = "PERFSUITE_TEST_VIRTUAL_CLOCK"
_virtual_seconds = [0.0]


def virtual_clock() -> float:
    return _virtual_seconds[0]


def _body() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


class Spin(nn.Module):
    """Busy-waits `ms` milliseconds per call (eager torch only; not exportable work)."""

    def __init__(self, ms: float) -> None:
        super().__init__()
        self.ms = ms

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ms = self.ms
        tail = os.environ.get(TAIL_ENV)
        if tail:
            every, slow_ms = tail.split(":")
            self.calls = getattr(self, "calls", 0) + 1
            ms = float(slow_ms) if self.calls % int(every) == 0 else ms
        if os.environ.get(VIRTUAL_CLOCK_ENV):
            _virtual_seconds[0] += ms / 1e3
            return x
        end = time.perf_counter() + ms / 1e3
        while time.perf_counter() < end:
            pass
        return x


class Ensemble(nn.Module):
    def __init__(self, copies: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(_body() for _ in range(copies))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def tiny_cnn() -> nn.Module:
    """Conv-BN-ReLU twice, pooled, then a 10-way Linear head: input (N, 3, 16, 16)."""
    counter = os.environ.get(BUILDS_FILE_ENV)
    if counter:  # lets end-to-end tests count how often the model is built
        with open(counter, "a") as handle:
            handle.write("built\n")
    copies = int(os.environ.get(COPIES_ENV, "1"))
    body = _body() if copies == 1 else Ensemble(copies)
    spin_ms = float(os.environ.get(SPIN_MS_ENV, "0"))
    return nn.Sequential(Spin(spin_ms), body) if spin_ms else body


def not_a_module() -> str:
    return "not a model"


TINY_CONFIG = """
[tool.perfsuite]
backends = ["torch", "onnxruntime"]
precisions = ["fp32", "fp16"]
device = "cpu"

[tool.perfsuite.timing]
rounds = 5
trials = 1
warmup_seconds = 0.0
warmup_min_runs = 1

[[tool.perfsuite.models]]
name = "tiny"
factory = "tiny_models:tiny_cnn"
input_shape = [1, 3, 16, 16]
"""


def tiny_batch(count: int = 1) -> torch.Tensor:
    return torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(0))
