from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from perfsuite.errors import BackendUnavailable, ExportError
from perfsuite.models.export import ONNX_FILE, export_onnx, validate_onnx, written_opset
from perfsuite.models.torch_model import ModelSpec, build_model

TINY = ModelSpec(name="tiny", factory="tiny_models:tiny_cnn", input_shape=(1, 3, 16, 16))


@pytest.fixture(scope="module")
def model():
    return build_model(TINY)


def test_torchscript_export_writes_requested_opset(model, tmp_path):
    export_onnx(model, TINY.input_shape, "fp32", "torchscript", 17, tmp_path)
    validate_onnx(tmp_path, 17, "torchscript")
    assert written_opset(tmp_path / ONNX_FILE) == 17


def test_fp16_export_has_fp16_io_and_leaves_model_fp32(model, tmp_path):
    export_onnx(model, TINY.input_shape, "fp16", "torchscript", 17, tmp_path)
    graph = onnx.load(str(tmp_path / ONNX_FILE)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert next(model.parameters()).dtype.is_floating_point
    assert str(next(model.parameters()).dtype) == "torch.float32"


def test_opset_mismatch_is_reported(model, tmp_path):
    export_onnx(model, TINY.input_shape, "fp32", "torchscript", 16, tmp_path)
    with pytest.raises(ExportError, match="asked for opset 17, the file declares opset 16"):
        validate_onnx(tmp_path, 17, "torchscript")


def test_dynamo_export_counts_external_data(model, tmp_path):
    pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    from perfsuite.models.artifacts import ArtifactCache

    entry = ArtifactCache(tmp_path).get_or_build(
        "onnx", "tiny", {"k": "dynamo"},
        lambda d: export_onnx(model, TINY.input_shape, "fp32", "dynamo", 18, d),
        validate=lambda d: validate_onnx(d, 18, "dynamo"),
    )
    files = {p.name: p.stat().st_size for p in entry.files()}
    assert ONNX_FILE in files
    assert entry.size_bytes() == sum(files.values())
    # the fp32 weights, counted from the model (not from the files): external data included,
    # nothing counted twice (the graph itself is a few kB)
    weights = sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())
    assert weights * 0.8 <= entry.size_bytes() <= weights + 64 * 1024


def test_unwritten_file_is_reported(tmp_path):
    with pytest.raises(ExportError, match="wrote no ONNX file"):
        validate_onnx(tmp_path, 17, "torchscript")


def test_export_failure_names_exporter(tmp_path):
    class Broken(__import__("torch").nn.Module):
        def forward(self, x):
            return np.asarray(x)  # not traceable

    with pytest.raises(ExportError, match=r"onnx export \(torchscript, opset 17, fp32\) \| failed"):
        export_onnx(Broken(), (1, 3), "fp32", "torchscript", 17, tmp_path)


class NoHalfOnCpu(torch.nn.Module):
    """Fails in fp16 as torch 2.1 and older fail: no fp16 convolutions on the CPU."""

    def forward(self, x):
        if x.dtype == torch.float16 and x.device.type == "cpu":
            raise RuntimeError("\"slow_conv2d_cpu\" not implemented for 'Half'")
        return x * 2


def test_fp16_export_without_cpu_half_kernels_or_a_gpu_is_unavailable_not_an_error(tmp_path):
    assert not torch.cuda.is_available(), "this checks the CPU-only path"
    with pytest.raises(BackendUnavailable, match=r"cannot run this model in fp16 on the CPU"):
        export_onnx(NoHalfOnCpu(), (1, 4), "fp16", "torchscript", 17, tmp_path)
    export_onnx(NoHalfOnCpu(), (1, 4), "fp32", "torchscript", 17, tmp_path)  # fp32 unaffected
