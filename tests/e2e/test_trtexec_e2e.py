"""The trtexec backend end to end: pytest runs (pytester) against the fake trtexec of each
TensorRT version (unit tests: tests/unit/backends/tensorrt/test_trtexec.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_models import TINY_CONFIG

from tests.unit.backends.tensorrt.test_trtexec import VERSIONS, fake_trtexec

REPO = Path(__file__).resolve().parents[2]


OPSET = {"8.2.3": 13, "8.5.3": 16, "8.6.1": 17, "10.16.0": 17}  # what each version's parser reads


def trtexec_config(program: Path) -> str:
    return TINY_CONFIG + f'\n[tool.perfsuite.tensorrt]\ntrtexec = "{program}"\n'


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    pytester.makeini("[pytest]\naddopts = -ra -p no:cacheprovider\n")
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_TRTEXEC_COMPUTE_MS", "2.5")
    return pytester


@pytest.mark.parametrize("version", VERSIONS)
def test_latency_agreement_drift_and_size_rows_through_trtexec(project, tmp_path, version):
    program = fake_trtexec(tmp_path, version)
    project.makefile(".toml", pyproject=trtexec_config(program))
    result = project.runpytest_subprocess("--perf-backends=torch,trtexec", "--perf-suite=only",
                                          "-k", "not trt_selftest")
    result.assert_outcomes(passed=15)  # torch fp32/fp16 and trtexec fp32/fp16, every test
    result.stdout.fnmatch_lines([f"*exporting tiny fp32 to ONNX (torchscript, opset {OPSET[version]})*",
                                 f"*building a TensorRT {version} engine with trtexec (*"])
    # end to end = H2D 0.05 + compute 2.5 + D2H 0.02 ms; GPU compute 2.5 ms, from --exportTimes
    result.stdout.fnmatch_lines(["trtexec*fp32*cpu*2.570*2.570*2.500*",
                                 "trtexec*fp16*cpu*2.570*2.570*2.500*"])
    again = project.runpytest_subprocess("--perf-backends=trtexec", "--perf-suite=only",
                                         "-k", "test_latency")
    again.stdout.fnmatch_lines(["*reusing cached trtexec engine*"])
    assert "building a TensorRT" not in again.stdout.str()


def test_without_trtexec_its_cases_skip_saying_where_it_was_looked_for(project, monkeypatch):
    project.makefile(".toml", pyproject=TINY_CONFIG)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = project.runpytest_subprocess("--perf-backends=torch,trtexec", "--perf-suite=only",
                                          "-k", "test_latency")
    result.stdout.fnmatch_lines(["SKIPPED*tiny-trtexec-fp32*trtexec not found on PATH or at "
                                 "/usr/src/tensorrt/bin/trtexec*[[]tool.perfsuite.tensorrt[]]*"])


def test_a_configured_trtexec_that_is_not_a_program_is_a_usage_error(project, tmp_path):
    project.makefile(".toml", pyproject=trtexec_config(tmp_path / "nope"))
    result = project.runpytest_subprocess("--perf-suite=only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tensorrt.trtexec*is not an executable file*"])


def test_the_selftest_checks_the_trtexec_route(project, tmp_path):
    program = fake_trtexec(tmp_path, "8.2.3")
    project.makefile(".toml", pyproject=trtexec_config(program))
    result = project.runpytest_subprocess("-m", "trt_selftest", "--perf-backends=torch,trtexec",
                                          "--perf-suite=only")
    result.assert_outcomes(passed=1, skipped=1)  # the in-process route is not configured
    result.stdout.fnmatch_lines(["*tensorrt is not among this run's backends (torch, trtexec)*"])
    project.makefile(".toml", pyproject=TINY_CONFIG)  # no trtexec configured, none on PATH
    missing = project.runpytest_subprocess("-m", "trt_selftest", "--perf-backends=torch,trtexec",
                                           "--perf-suite=only")
    assert missing.ret == pytest.ExitCode.TESTS_FAILED
    missing.stdout.fnmatch_lines(["tiny-trtexec-fp32: TensorRT cannot run here: trtexec not found*",
                                  "Fix: install TensorRT (JetPack ships /usr/src/tensorrt/bin/trtexec)*"])


@pytest.mark.parametrize(("start_ms", "step"), [(12_000, "0.1 ms at 12 s"),
                                                 (120_000, "1 ms at 120 s")])
def test_a_run_late_in_trtexecs_clock_reports_enqueue_coarse(project, tmp_path, monkeypatch,
                                                             start_ms, step):
    program = fake_trtexec(tmp_path, "10.16.0")
    project.makefile(".toml", pyproject=trtexec_config(program))
    monkeypatch.setenv("FAKE_TRTEXEC_START_MS", str(start_ms))
    monkeypatch.setenv("FAKE_TRTEXEC_ENQUEUE_MS", "0.03")
    result = project.runpytest_subprocess("--perf-backends=trtexec", "--perf-precisions=fp32",
                                          "--perf-suite=only", "-k", "test_latency",
                                          "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["trtexec*fp32*2.570*2.500*enqueue coarse*",
                                 f"*tiny-trtexec-fp32: enqueue coarse: not reported per "
                                 f"inference; trtexec's --exportTimes timestamps step by {step}*"])
    (record,) = json.loads((project.path / "bench.json").read_text())["benchmarks"]
    assert "enqueue_latency" not in record["extra_info"]  # not a number made of the step
    assert record["extra_info"]["gpu_latency"]["median_ms"] == pytest.approx(2.5)
