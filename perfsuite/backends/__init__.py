"""Backends by name. Importing this package imports no heavy dependency."""

from __future__ import annotations

from collections.abc import Sequence

from perfsuite.backends.base import (
    RECIPE_KEYS,
    REFERENCE_BACKEND,
    REFERENCE_PRECISION,
    Backend,
    BackendOptions,
    CaseSpec,
    ModelArtifacts,
    Runner,
    ToolTimings,
)
from perfsuite.backends.onnxruntime import OnnxRuntimeBackend
from perfsuite.backends.tensorrt.pycuda import TensorRTPycudaBackend
from perfsuite.backends.tensorrt.rtx import TensorRTRtxBackend
from perfsuite.backends.tensorrt.runner import TensorRTBackend
from perfsuite.backends.tensorrt.trtexec import TrtexecBackend
from perfsuite.backends.torch_cudagraph import TorchCudaGraphBackend
from perfsuite.backends.torch_eager import TorchEagerBackend
from perfsuite.machine.fingerprint import SOFTWARE_PACKAGES

BACKEND_TYPES: dict[str, type[Backend]] = {
    backend.name: backend
    for backend in (TorchEagerBackend, TorchCudaGraphBackend, OnnxRuntimeBackend,
                    TensorRTBackend, TensorRTPycudaBackend, TrtexecBackend, TensorRTRtxBackend)
}
assert TorchEagerBackend.name == REFERENCE_BACKEND, "the reference is torch eager"


def software_packages() -> tuple[str, ...]:
    """What a machine fingerprint records the versions of: the common packages, then each
    backend's own (Backend.packages)."""
    return tuple(dict.fromkeys((*SOFTWARE_PACKAGES, *(p for backend in BACKEND_TYPES.values()
                                                     for p in backend.packages))))


def configured_cases(models: Sequence[str], backends: Sequence[str],
                     precisions: Sequence[str]) -> list[tuple[str, str, str]]:
    """(model, backend, precision) for every combination a configuration names that the
    backend can run, in the configuration's order."""
    return [(model, backend, precision) for model in models for backend in backends
            for precision in precisions if precision in BACKEND_TYPES[backend].precisions]


def make_backend(name: str, options: BackendOptions = BackendOptions()) -> Backend:
    return BACKEND_TYPES[name](options)


__all__ = [
    "BACKEND_TYPES", "RECIPE_KEYS", "REFERENCE_BACKEND", "REFERENCE_PRECISION", "Backend",
    "BackendOptions", "CaseSpec", "ModelArtifacts", "Runner", "ToolTimings", "configured_cases",
    "make_backend", "software_packages",
]
