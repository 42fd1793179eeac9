"""End-to-end runs of pytest with the perfsuite plugin on a tiny model."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from tiny_models import BUILDS_FILE_ENV, TINY_CONFIG

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_suite(pytester, tmp_path, monkeypatch):
    """A pytester project configured for the tiny model: the shipped suite runs, nothing copied
    but the model's factory module."""
    pytester.makefile(".toml", pyproject=TINY_CONFIG)
    pytester.makeini("[pytest]\naddopts = -ra -p no:cacheprovider\n")
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(BUILDS_FILE_ENV, str(tmp_path / "builds.txt"))
    return pytester


def test_help_lists_options(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*perfsuite*", "*--perf-models=NAMES*", "*--perf-device=DEVICE*"])


def test_suite_prints_table_and_builds_everything_once(tiny_suite, tmp_path):
    json_path = tmp_path / "bench.json"
    result = tiny_suite.runpytest_subprocess(f"--benchmark-json={json_path}")
    result.assert_outcomes(passed=15, deselected=2)  # trt_selftest: only under -m trt_selftest
    result.stdout.fnmatch_lines([
        "*perfsuite results: tiny*",
        "backend*precision*device*median ms*p90 ms*inf/s*speedup*artifact MB*drift rel_l2*",
        "torch*fp32*cpu*1.00x*reference*",
        "torch*fp16*cpu*",
        "onnxruntime*fp32*cpu*",
        "onnxruntime*fp16*cpu*",
    ])
    assert (tmp_path / "builds.txt").read_text().count("built") == 1, "model built once"
    out = result.stdout.str()
    assert out.count("exporting tiny fp32 to ONNX") == 2, "exported once: a start and an end line"
    for step in (r"building model tiny \(factory:.*\)", r"exporting tiny fp32 to ONNX \(.*\)",
                 r"tiny-torch-fp32\S*: warming up", r"tiny-onnxruntime-fp16\S*: warming up"):
        result.stdout.re_match_lines([rf"\[perfsuite\] {step} \.\.\.$"])
        result.stdout.re_match_lines([rf"\[perfsuite\] {step}: done in \d+\.\d s$"])
    benchmarks = json.loads(json_path.read_text())["benchmarks"]
    assert len(benchmarks) == 4
    for bench in benchmarks:
        info = bench["extra_info"]
        assert {"model", "backend", "precision", "device", "artifact_bytes"} <= set(info)
        if (info["backend"], info["precision"]) != ("torch", "fp32"):
            assert {"rel_l2", "max_abs", "cosine", "top1_agreement"} <= set(info)
        assert bench["stats"]["rounds"] == 5


def test_second_run_reuses_the_onnx_cache(tiny_suite, tmp_path):
    tiny_suite.runpytest_subprocess("-k", "size").assert_outcomes(passed=1)
    onnx_files = sorted((tmp_path / "cache" / "onnx").glob("*/model.onnx"))
    stamps = [f.stat().st_mtime_ns for f in onnx_files]
    second = tiny_suite.runpytest_subprocess("-k", "size")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["*reusing cached ONNX*"])
    assert "exporting" not in second.stdout.str()
    assert [f.stat().st_mtime_ns for f in onnx_files] == stamps and len(onnx_files) == 2


def test_cuda_without_gpu_skips_with_reason(tiny_suite):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the CUDA paths run in the suite itself "
                    "(perfsuite/suite) instead")
    result = tiny_suite.runpytest_subprocess("--perf-device", "cuda", "-k", "latency")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines(["SKIPPED*tiny-torch-fp32 on cuda: CUDA is not available*",
                                 "SKIPPED*tiny-onnxruntime-fp32 on cuda: onnxruntime has no "
                                 "CUDAExecutionProvider*"])


def test_plain_pytest_run_imports_nothing_heavy_and_writes_nothing(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile("""
        import sys
        def test_light():
            heavy = {"torch", "onnx", "onnxruntime", "tensorrt", "torchvision"} & set(sys.modules)
            assert not heavy, heavy
    """)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    created = {p.name for p in pytester.path.rglob("*")}
    assert not {".perfsuite-cache", "baselines", "perfsuite-entry.json"} & created


def test_untimed_latency_skips_with_the_reason(tiny_suite):
    result = tiny_suite.runpytest_subprocess("--benchmark-disable", "-k", "latency",
                                             "--perf-backends=torch", "--perf-precisions=fp32")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*tiny-torch-fp32: latency not timed "
                                 "(--benchmark-disable); its size and drift were checked"])


def test_recording_with_benchmarks_disabled_is_a_usage_error(tiny_suite):
    result = tiny_suite.runpytest_subprocess("--benchmark-disable", "--perf-save-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--benchmark-disable times nothing, so a recording run*"])
    assert not (tiny_suite.path / "baselines").exists()


def test_benchmark_compare_without_perf_tests_leaves_perfsuite_out(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("--benchmark-compare")
    result.assert_outcomes(passed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "perfsuite:" not in output and "perfsuite gate" not in output and "ERROR" not in output
    assert not (pytester.path / "baselines").exists()


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names is Python 3.10+; "
                    "this static check runs on the current Python")
def test_the_shipped_suite_needs_only_the_base_install():
    """What perfsuite/suite imports at module level is the standard library, perfsuite, or a
    base dependency in pyproject.toml (no extra needed to run the suite)."""
    import ast
    import re
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    from perfsuite.plugin import SUITE_DIR

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {re.split(r"[<>=;\[ ]", dep)[0].replace("-", "_") for dep in project["dependencies"]}
    imported = set()
    for path in SUITE_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    outside = imported - base - set(sys.stdlib_module_names) - {"perfsuite"}
    assert not outside, f"the suite imports {outside}, which the base install lacks"
    assert "hypothesis" in imported and "hypothesis" in base


def test_a_failing_factory_runs_once_and_fails_its_tests_without_traceback(pytester, tmp_path,
                                                                           monkeypatch):
    counter = tmp_path / "calls.txt"
    pytester.makefile(".toml", pyproject=TINY_CONFIG.replace("tiny_models:tiny_cnn",
                                                             "broken_models:build"))
    pytester.makeini("[pytest]\naddopts = -ra -p no:cacheprovider\n")
    pytester.makepyfile(broken_models=f"""
        def build():
            with open({str(counter)!r}, "a") as handle:
                handle.write("called\\n")
            raise RuntimeError("boom")
    """)
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    result = pytester.runpytest_subprocess("-k", "not trt_selftest")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 5 and not outcomes.get("passed")
    assert counter.read_text().count("called") == 1, "a failed build is remembered"
    result.stdout.fnmatch_lines(["*model 'tiny' | factory 'broken_models:build' raised "
                                 "RuntimeError: boom*"])
    out = result.stdout.str()
    assert "Traceback" not in out and "The above exception" not in out and "raise " not in out
