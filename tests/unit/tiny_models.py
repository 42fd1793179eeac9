"""Small models built in code for fast unit tests (importable as a perfsuite factory)."""

from __future__ import annotations

import torch
from torch import nn

BUILDS_FILE_ENV = "PERFSUITE_TEST_BUILDS_FILE"


def tiny_cnn() -> nn.Module:
    """Conv-BN-ReLU twice, pooled, then a 10-way Linear head: input (N, 3, 16, 16)."""
    import os

    counter = os.environ.get(BUILDS_FILE_ENV)
    if counter:  # lets end-to-end tests count how often the model is built
        with open(counter, "a") as handle:
            handle.write("built\n")
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


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
