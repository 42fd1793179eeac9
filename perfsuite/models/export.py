"""ONNX export with an explicitly chosen exporter and opset, validated, sized on disk.

torch >= 2.9 defaults to the dynamo exporter (opset 18, external data); TensorRT 8.5/8.6 parsers
take opset <= 17, so perfsuite always passes both choices and then checks the opset actually
written: asked for opset 17, torch 2.15's dynamo exporter silently writes 18 (measured).
torch 2.3 (JetPack 6) has no `dynamo=` argument; its `torch.onnx.export` is the TorchScript one.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfsuite.errors import BackendUnavailable, ExportError
from perfsuite.lazy import require

if TYPE_CHECKING:
    import torch

ONNX_FILE = "model.onnx"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
_TORCH_DTYPES = {"fp32": "float32", "fp16": "float16"}


@dataclass(frozen=True)
class OnnxArtifact:
    """An ONNX model on disk; `size_bytes` includes its external data files."""

    path: Path
    precision: str
    exporter: str
    opset: int
    size_bytes: int
    cache_hit: bool


def export_arguments(exporter: str) -> dict[str, Any]:
    """The keyword arguments that select `exporter` on this torch, or ExportError."""
    torch = require("torch")
    parameters = inspect.signature(torch.onnx.export).parameters
    if "dynamo" in parameters:
        return {"dynamo": exporter == "dynamo"}
    if exporter == "dynamo":
        raise ExportError(
            f"onnx exporter 'dynamo' | torch {torch.__version__} has no dynamo argument to "
            "torch.onnx.export.\nRemedy: set [tool.perfsuite.onnx] exporter = \"torchscript\"."
        )
    return {}


def export_onnx(
    model: torch.nn.Module,
    input_shape: tuple[int, ...],
    precision: str,
    exporter: str,
    opset: int,
    directory: Path,
) -> None:
    """Write `directory/model.onnx` (plus any external data) for `model` cast to `precision`.
    Traced on the CPU; fp16 on the GPU when this torch has no fp16 convolutions on the CPU
    (2.1 and older), or BackendUnavailable where there is no GPU either."""
    torch = require("torch")
    try:
        _export(torch, model, input_shape, precision, exporter, opset, directory, "cpu")
    except ExportError as exc:
        if not (precision == "fp16" and "not implemented for 'Half'" in str(exc)):
            raise
        if not torch.cuda.is_available():
            raise BackendUnavailable(
                f"torch {torch.__version__} cannot run this model in fp16 on the CPU, which the "
                f"fp16 ONNX export traces ({str(exc).splitlines()[0]}); a CUDA device or a newer "
                "torch can") from exc
        _export(torch, model, input_shape, precision, exporter, opset, directory, "cuda")


def _export(torch: Any, model: torch.nn.Module, input_shape: tuple[int, ...], precision: str,
            exporter: str, opset: int, directory: Path, device: str) -> None:
    dtype = getattr(torch, _TORCH_DTYPES[precision])
    arguments = export_arguments(exporter)
    if exporter == "dynamo":
        arguments.update(external_data=True, verbose=False)
    example = torch.zeros(input_shape, dtype=dtype, device=device)
    cast = _cast_copy(model, dtype).to(device)
    captured = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(captured):
            # We chose the exporter on purpose; its deprecation notice is not news to the user.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(
                cast,
                (example,),
                str(directory / ONNX_FILE),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                **arguments,
            )
    except Exception as exc:
        raise ExportError(
            f"onnx export ({exporter}, opset {opset}, {precision}) | failed: {exc}\n"
            f"{captured.getvalue()[-2000:]}"
        ) from exc


def _cast_copy(model: torch.nn.Module, dtype: Any) -> torch.nn.Module:
    return copy.deepcopy(model).to(dtype)


def written_opset(path: Path) -> int:
    onnx = require("onnx")
    proto = onnx.load(str(path), load_external_data=False)
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ExportError(f"{path} | declares no default-domain opset.")
    return int(versions[0])


def validate_onnx(directory: Path, opset: int, exporter: str) -> None:
    """onnx.checker passes (by path, so external data is found) and the opset is as asked."""
    onnx = require("onnx")
    path = directory / ONNX_FILE
    if not path.is_file():
        raise ExportError(f"{path} | the exporter wrote no ONNX file.")
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise ExportError(f"{path} | onnx.checker rejects the model: {exc}") from exc
    got = written_opset(path)
    if got != opset:
        raise ExportError(
            f"onnx export ({exporter}) | asked for opset {opset}, the file declares opset {got}.\n"
            f"Remedy: set [tool.perfsuite.onnx] opset = {got}, or exporter = \"torchscript\" "
            "(TensorRT 8.5/8.6 parse opset <= 17)."
        )
