"""Model size: parameters, state_dict and ONNX files (external data included)."""

from __future__ import annotations

from perfsuite.measure.sizes import model_sizes, parameter_count

# What an ONNX file holds besides its weights (graph, names, shapes): small, but it dominates
# for a model of a few kilobytes.
GRAPH_ALLOWANCE_BYTES = 64 << 10


def test_size(perf, perf_model, record_property):
    sizes = model_sizes(perf_model, perf.wants_fp16_onnx())
    params, state = sizes["parameter_bytes"], sizes["state_dict_bytes"]
    onnx_fp32 = sizes["onnx_fp32_bytes"]
    assert params == 4 * parameter_count(perf_model.torch_model()), "fp32 parameters: 4 bytes each"
    assert state >= params, "the state_dict holds every parameter plus buffers"
    # The ONNX file carries the same fp32 weights (BatchNorm folded in), plus a small graph.
    assert 0.8 * params < onnx_fp32 < 1.3 * state + GRAPH_ALLOWANCE_BYTES, (
        f"ONNX {onnx_fp32} bytes vs {params} parameter bytes: external data missing?"
    )
    if "onnx_fp16_bytes" in sizes:
        onnx_fp16, half = sizes["onnx_fp16_bytes"], 0.5 * onnx_fp32
        assert 0.8 * half - GRAPH_ALLOWANCE_BYTES < onnx_fp16 < 1.2 * half + GRAPH_ALLOWANCE_BYTES, \
            f"fp16 weights take half the bytes: ONNX fp16 {onnx_fp16} vs fp32 {onnx_fp32}"
    for name, value in sizes.items():
        record_property(name, value)
    perf.record_sizes(perf_model.spec.name, sizes)  # gated by the plugin (baseline or --perf-ab)
