"""The TensorRT backends end to end: pytest runs (pytester) under the TensorRT emulator, and the
self-test without TensorRT (unit tests: tests/unit/backends/tensorrt/test_tensorrt.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.backends.tensorrt.test_tensorrt import TRT_CONFIG


def test_tensorrt_rows_in_the_table_under_the_emulator(pytester, tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[2]
    pytester.makefile(".toml", pyproject=TRT_CONFIG)
    pytester.makeini("[pytest]\naddopts = -ra -p no:cacheprovider\nmarkers =\n"
                     "    trt_selftest: TensorRT self-check\n")
    pytester.makeconftest(f"""
        import sys
        sys.path.insert(0, {str(repo / "tests")!r})
        from fakes.tensorrt_emulator import emulated_tensorrt
        sys.modules["tensorrt"] = emulated_tensorrt("11.4.0.106")
    """)
    (pytester.path / "tiny_models.py").write_text((repo / "tests/tiny_models.py").read_text())
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    files = ("--perf-suite=only", "-k", "test_latency or test_trt_selftest")
    result = pytester.runpytest_subprocess(*files)
    result.assert_outcomes(passed=4, deselected=13)  # -k, and the self-check: only under -m
    result.stdout.fnmatch_lines([
        "*building TensorRT fp16 engine from model.onnx*",
        "tensorrt*fp32*cpu*fp32: fp32 ONNX, no reduced-precision flags; TF32 off*",
        "tensorrt*fp16*cpu*fp16: fp16 ONNX, strongly typed network; TF32 off*",
    ])
    selftest = pytester.runpytest_subprocess("-m", "trt_selftest", *files)
    selftest.assert_outcomes(passed=1, skipped=1)
    selftest.stdout.fnmatch_lines(["*reusing cached TensorRT engine*"])


def test_selftest_fails_with_the_fix_without_tensorrt(pytester, tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[2]
    pytester.makefile(".toml", pyproject=TRT_CONFIG)
    pytester.makeini("[pytest]\naddopts = -ra -p no:cacheprovider\nmarkers =\n"
                     "    trt_selftest: TensorRT self-check\n")
    pytester.makeconftest("import sys\nsys.modules['tensorrt'] = None\n")
    (pytester.path / "tiny_models.py").write_text((repo / "tests/tiny_models.py").read_text())
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    result = pytester.runpytest_subprocess("-m", "trt_selftest")
    result.assert_outcomes(failed=1, skipped=1)  # trtexec is not among TRT_CONFIG's backends
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "tiny-tensorrt-fp32: TensorRT cannot run here: TensorRT is not installed*",
        "Fix: on a Jetson: create the virtualenv with --system-site-packages*"])
    assert "Traceback" not in result.stdout.str()
