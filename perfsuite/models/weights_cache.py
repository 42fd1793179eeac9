"""Realistic weights kept in the artifact cache: calibrating BatchNorm statistics runs the model
in training mode on synthetic batches (0.75 s for mobilenet_v3_small on the 2-core machine), and
every process that builds the model paid it: the run's, and under --perf-ab each side's worker.

An entry is keyed by what determines the calibrated weights: the seeded initial weights (their
digest), the model's code, the calibration's settings and torch's version. The weights travel as
a NumPy archive (no pickle), which any torch since 1.10 reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfsuite.errors import CacheError
from perfsuite.lazy import require
from perfsuite.models.artifacts import ArtifactCache
from perfsuite.models.torch_model import (
    CALIBRATION_BATCH_SIZE,
    CALIBRATION_BATCHES,
    LOGIT_STD,
    ModelSpec,
    code_digest,
    make_weights_realistic,
    weights_digest,
)

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "weights.npz"


def realistic_weights_key(model: torch.nn.Module, spec: ModelSpec) -> dict[str, str]:
    """What the calibrated weights of `model` (seeded, not yet calibrated) depend on."""
    return {
        "model": spec.name,
        "initial_sha256": weights_digest(model),
        "code_sha256": code_digest(spec),
        "input_shape": "x".join(map(str, spec.input_shape)),
        "input_range": f"{spec.input_range[0]:g},{spec.input_range[1]:g}",
        "seed": str(spec.seed),
        "calibration": f"{CALIBRATION_BATCHES}x{CALIBRATION_BATCH_SIZE}, logits {LOGIT_STD:g}",
        "torch": require("torch").__version__,
    }


def cached_realistic_weights(model: torch.nn.Module, spec: ModelSpec, cache: ArtifactCache) -> None:
    """Make `model`'s weights realistic as `make_weights_realistic` does, from the cache where
    an entry has them; a missing or unreadable entry is (re)built by calibrating."""
    loaded: dict[str, Any] = {}
    calibrated = []

    def build(directory: Path) -> None:
        make_weights_realistic(model, spec)
        calibrated.append(True)
        _save(model, directory / WEIGHTS_FILE)

    def validate(directory: Path) -> None:
        loaded.clear()
        loaded.update(_load(model, directory / WEIGHTS_FILE))

    try:
        entry = cache.get_or_build("weights", spec.name, realistic_weights_key(model, spec),
                                   build, validate)
    except (CacheError, TypeError, ValueError, RuntimeError):
        # a read-only cache without the entry, or tensors an archive cannot hold (a dtype
        # NumPy lacks): the weights are calibrated here, as without a cache
        if not calibrated:
            make_weights_realistic(model, spec)
        return
    if entry.hit:
        # the model's own state dict carries each module's version (metadata the archive does
        # not keep), which some modules' loaders require: torchvision's MNASNet refuses none
        state = model.state_dict()
        state.update(loaded)
        model.load_state_dict(state)


def _save(model: torch.nn.Module, path: Path) -> None:
    numpy = require("numpy")
    arrays = {key: tensor.detach().cpu().numpy() for key, tensor in model.state_dict().items()}
    with path.open("wb") as handle:
        numpy.savez(handle, **arrays)


def _load(model: torch.nn.Module, path: Path) -> dict[str, Any]:
    """The state dict in `path`; raises when it does not match `model`'s names, shapes and
    dtypes (the cache then moves the entry aside and rebuilds it)."""
    numpy, torch = require("numpy"), require("torch")
    expected = model.state_dict()
    with numpy.load(path, allow_pickle=False) as archive:
        found = {key: torch.from_numpy(archive[key].copy()) for key in archive.files}
    if set(found) != set(expected):
        raise ValueError(f"{path.name} holds other tensors than the model has")
    for key, tensor in expected.items():
        if found[key].shape != tensor.shape or found[key].dtype != tensor.dtype:
            raise ValueError(f"{path.name}: {key} is {tuple(found[key].shape)} "
                             f"{found[key].dtype}, the model's {tuple(tensor.shape)} "
                             f"{tensor.dtype}")
    return found
