"""The `[[tool.perfsuite.models]]` table: each model's source, input and weights, validated.
Every error names the model entry, what was expected and the remedy."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from perfsuite.config.validate import check_int, check_keys, is_positive_int
from perfsuite.errors import ConfigError
from perfsuite.models.torch_model import IMAGE_INPUT_RANGE, ModelSpec, import_folders

MODEL_KEYS = {"name", "torchvision", "factory", "input_shape", "weights", "seed", "input_range"}
MAX_INPUT_ELEMENTS = 2**31 - 1  # int32 indexing in the runtimes; larger shapes overflow


def parse_models(value: Any, where: str, rootdir: Path, folder: Path) -> tuple[ModelSpec, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}models | expected a non-empty array of [[models]] tables.")
    search = import_folders((folder, rootdir))  # factories import from these folders
    specs = [_model(entry, f"{where}models[{i}] ", rootdir, search)
             for i, entry in enumerate(value)]
    names = [spec.name for spec in specs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"{where}models | model name {duplicate!r} is used twice.")
    return tuple(specs)


def _model(entry: Any, where: str, rootdir: Path, search: tuple[Path, ...]) -> ModelSpec:
    check_keys(entry, MODEL_KEYS, where)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}| 'name' is required: a non-empty string.")
    sources = [key for key in ("torchvision", "factory") if key in entry]
    if len(sources) != 1:
        raise ConfigError(
            f"{where}({name}) | give exactly one of 'torchvision = \"<model name>\"' or "
            f"'factory = \"module:callable\"'; got {sources or 'neither'}."
        )
    source_value = entry[sources[0]]
    if not isinstance(source_value, str) or not source_value:
        raise ConfigError(f"{where}({name}) | {sources[0]!r} must be a non-empty string.")
    if sources[0] == "factory" and ":" not in source_value:
        raise ConfigError(
            f"{where}({name}) | factory {source_value!r} is not of the form 'module:callable'."
        )
    shape = entry.get("input_shape")
    if isinstance(shape, list) and shape and all(isinstance(d, list) for d in shape):
        raise ConfigError(
            f"{where}({name}) | 'input_shape' lists {len(shape)} inputs; perfsuite runs models "
            "with one float32 input tensor (several inputs and integer inputs are not supported "
            "yet).\nRemedy: give one shape such as [1, 3, 224, 224], or wrap the model so its "
            "forward takes one tensor."
        )
    if not (isinstance(shape, list) and shape and all(is_positive_int(d) for d in shape)):
        raise ConfigError(
            f"{where}({name}) | 'input_shape' must be a list of positive integers such as "
            f"[1, 3, 224, 224]; got {shape!r}."
        )
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise ConfigError(
            f"{where}({name}) | 'input_shape' {shape} holds {math.prod(shape):,} values, more "
            f"than the {MAX_INPUT_ELEMENTS:,} perfsuite accepts for one input.\nRemedy: check "
            "the shape (batch, channels, height, width)."
        )
    weights = entry.get("weights")
    if weights is not None and not isinstance(weights, str):
        raise ConfigError(f"{where}({name}) | 'weights' must be a path string.")
    low_high = entry.get("input_range", list(IMAGE_INPUT_RANGE))
    if not (
        isinstance(low_high, list) and len(low_high) == 2
        and all(isinstance(v, (int, float)) for v in low_high) and low_high[0] < low_high[1]
    ):
        raise ConfigError(f"{where}({name}) | 'input_range' must be [low, high] with low < high.")
    return ModelSpec(
        name=name,
        input_shape=tuple(shape),
        torchvision=source_value if sources[0] == "torchvision" else None,
        factory=source_value if sources[0] == "factory" else None,
        weights=(rootdir / weights) if weights else None,
        seed=check_int(entry.get("seed", 0), f"{where}({name}) seed", 0),
        input_range=(float(low_high[0]), float(low_high[1])),
        search_path=search if sources[0] == "factory" else (),
    )
