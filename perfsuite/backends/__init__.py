"""Backends by name. Importing this package imports no heavy dependency."""

from __future__ import annotations

from perfsuite.backends.base import Backend, CaseSpec, ModelArtifacts, Session
from perfsuite.backends.onnxruntime import OnnxRuntimeBackend
from perfsuite.backends.torch_eager import TorchEagerBackend

BACKEND_TYPES: dict[str, type[Backend]] = {
    TorchEagerBackend.name: TorchEagerBackend,
    OnnxRuntimeBackend.name: OnnxRuntimeBackend,
}
REFERENCE_BACKEND = TorchEagerBackend.name
REFERENCE_PRECISION = "fp32"


def make_backend(name: str, cpu_threads: int) -> Backend:
    return BACKEND_TYPES[name](cpu_threads)


__all__ = [
    "BACKEND_TYPES", "REFERENCE_BACKEND", "REFERENCE_PRECISION", "Backend", "CaseSpec",
    "ModelArtifacts", "Session", "make_backend",
]  # fmt: skip
