"""TensorRT-RTX end to end: a pytest run (pytester) whose table shows the engines the real
builder made (unit tests: tests/unit/backends/tensorrt/test_tensorrt_rtx.py)."""

from __future__ import annotations

from pathlib import Path

from perfsuite.backends.tensorrt import rtx as rtx
from tests.unit.backends.tensorrt.test_tensorrt_rtx import RTX_CONFIG, needs_rtx


@needs_rtx
def test_engine_rows_appear_in_the_results_table(pytester, tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[2]
    pytester.makefile(".toml", pyproject=RTX_CONFIG)
    pytester.makeini("[pytest]\naddopts = -ra -p no:cacheprovider\n")
    (pytester.path / "tiny_models.py").write_text((repo / "tests/tiny_models.py").read_text())
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    result = pytester.runpytest_subprocess("--perf-suite=only", "-k", "test_latency")
    result.assert_outcomes(passed=2, skipped=2, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines([
        "backend*precision*artifact MB*",
        "torch*fp32*cpu*reference*",
        "tensorrt-rtx*fp32*cpu*n/a*fp32: fp32 ONNX*built for SM86; not run",
        "tensorrt-rtx*fp16*cpu*n/a*fp16: fp16 ONNX, strongly typed network*not run",
        "*tiny-tensorrt-rtx-fp16: not run: TensorRT-RTX * built the fp16 engine (* MB, for SM86)*",
    ])
