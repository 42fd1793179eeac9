"""Size accounting: what a model weighs in memory and on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from perfsuite.errors import BackendUnavailable

if TYPE_CHECKING:
    import torch


class ModelFiles(Protocol):
    """What sizes are read from (perfsuite.backends.ModelArtifacts is one)."""

    def torch_model(self) -> Any: ...

    def onnx(self, precision: str) -> Any: ...


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes of the trainable parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def state_dict_bytes(model: torch.nn.Module) -> int:
    """Bytes of every tensor in the state_dict: parameters plus buffers, at their dtypes."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_sizes(artifacts: ModelFiles, fp16_onnx: bool) -> dict[str, int]:
    """What the size test records and gates: parameter and state_dict bytes, the fp32 ONNX file
    (external data included) and, when asked, the fp16 one."""
    model = artifacts.torch_model()
    sizes = {"parameter_bytes": parameter_bytes(model),  # type: ignore[arg-type]
             "state_dict_bytes": state_dict_bytes(model),  # type: ignore[arg-type]
             "onnx_fp32_bytes": artifacts.onnx("fp32").size_bytes}
    if fp16_onnx:
        try:
            sizes["onnx_fp16_bytes"] = artifacts.onnx("fp16").size_bytes
        except BackendUnavailable:  # this torch cannot trace fp16 here; its cases skip saying so
            pass
    return sizes
