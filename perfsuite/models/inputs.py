"""Deterministic model inputs drawn from the model's input domain."""

from __future__ import annotations

import numpy as np

from perfsuite.models.torch_model import ModelSpec


def input_set(spec: ModelSpec, count: int, seed: int) -> np.ndarray:
    """`count` fp32 inputs shaped like the model's input, stacked: (count, *input_shape).

    Uniform in `spec.input_range`; the same (spec, count, seed) always gives the same array.
    """
    low, high = spec.input_range
    generator = np.random.default_rng([seed, *spec.input_shape])
    return generator.uniform(low, high, size=(count, *spec.input_shape)).astype(np.float32)
