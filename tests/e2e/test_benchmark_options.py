"""pytest-benchmark's options with perfsuite's benchmarks: each one's behaviour, end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_models import SPIN_MS_ENV, TINY_CONFIG, VIRTUAL_CLOCK_ENV

REPO = Path(__file__).resolve().parents[2]
KEY = "options-machine"
# The tiny model in eager torch only, latency read from the virtual clock (exactly the spin).
ARGS = ("-p", "no:cacheprovider", "--perf-backends=torch", "--perf-precisions=fp32",
        f"--perf-machine-key={KEY}", "--benchmark-timer=tiny_models.virtual_clock",
        "-k", "test_latency or test_size")
CANT_COMPARE = "Can't compare"


@pytest.fixture
def repo(pytester, tmp_path, monkeypatch):
    pytester.makefile(".toml", pyproject=TINY_CONFIG + "\n[tool.perfsuite.gate]\n"
                      "max_increase = 0.6\ntail_max_increase = 0.7\n")
    pytester.makeini("[pytest]\naddopts = -ra\n")
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(SPIN_MS_ENV, "2.0")
    monkeypatch.setenv(VIRTUAL_CLOCK_ENV, "1")
    return pytester


def output(result) -> str:
    return result.stdout.str() + result.stderr.str()


def test_bare_compare_gates_on_the_baseline_without_pytest_benchmark_warnings(repo):
    repo.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    result = repo.runpytest_subprocess(*ARGS, "--benchmark-compare")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["perfsuite gate: * checks against *, 0 regressed*"])
    assert CANT_COMPARE not in output(result)


def test_compare_with_a_stored_run_is_pytest_benchmarks(repo, monkeypatch):
    """--benchmark-compare=NUM: pytest-benchmark compares with its store (its table shows both
    runs), its --benchmark-compare-fail decides, and no perfsuite baseline is needed."""
    repo.runpytest_subprocess(*ARGS, "--benchmark-save=first").assert_outcomes(passed=2)
    same = repo.runpytest_subprocess(*ARGS, "--benchmark-compare=0001",
                                     "--benchmark-compare-fail=median:5%")
    same.assert_outcomes(passed=2)
    same.stdout.fnmatch_lines(["perfsuite: --benchmark-compare=0001 compares with "
                               "pytest-benchmark's store; perfsuite's baseline gate is off*"])
    rows = [line for line in same.stdout.lines if line.startswith("test_latency[tiny-torch-fp32]")]
    assert sorted(row.split()[1] for row in rows) == ["(0001_first)", "(NOW)"]
    assert "no baseline" not in same.stdout.str()
    monkeypatch.setenv(SPIN_MS_ENV, "3.0")  # +50%
    slower = repo.runpytest_subprocess(*ARGS, "--benchmark-compare=0001",
                                       "--benchmark-compare-fail=median:5%")
    assert slower.ret != 0
    assert "Performance has regressed" in output(slower)
    assert not (repo.path / "baselines").exists()


def test_compare_fail_against_the_baseline_is_refused_with_the_equivalent(repo):
    repo.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    result = repo.runpytest_subprocess(*ARGS, "--benchmark-compare",
                                       "--benchmark-compare-fail=median:5%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--benchmark-compare-fail=median:5%: perfsuite gates*"
                                 "max_increase = 0.05 in ?tool.perfsuite.gate?*"])
    assert "Traceback" not in output(result)


@pytest.mark.parametrize(("option", "instead"), [
    ("--benchmark-min-rounds=3", "--perf-rounds N"),
    ("--benchmark-max-time=0.5", "--perf-rounds N"),
    ("--benchmark-min-time=0.001", "leave it out"),
    ("--benchmark-warmup-iterations=5", "warmup_seconds"),
])
def test_timing_options_perfsuite_cannot_honour_are_refused(repo, option, instead):
    result = repo.runpytest_subprocess(*ARGS, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}*{instead}*"])


def test_timing_options_are_pytest_benchmarks_when_no_perf_test_runs(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile("def test_own(benchmark):\n    benchmark(sum, [1, 2])\n")
    result = pytester.runpytest_subprocess("--benchmark-min-rounds=7")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_own*"])  # pytest-benchmark's own table


def test_bare_compare_without_perf_tests_is_pytest_benchmarks(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile("def test_own(benchmark):\n    benchmark(sum, [1, 2])\n")
    pytester.runpytest_subprocess("--benchmark-autosave").assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--benchmark-compare")
    result.assert_outcomes(passed=1)
    rows = [line.split()[1] for line in result.stdout.lines if line.startswith("test_own ")]
    assert len(rows) == 2 and "(NOW)" in rows and any(r.startswith("(0001_") for r in rows), rows
    assert "perfsuite" not in result.stdout.str().replace("perfsuite-", "")


def test_one_table_unless_asked_for_pytest_benchmarks(repo):
    result = repo.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*perfsuite results: tiny*"])
    assert "benchmark 'tiny'" not in result.stdout.str()
    both = repo.runpytest_subprocess(*ARGS, "--perf-benchmark-table")
    both.stdout.fnmatch_lines(["*benchmark 'tiny'*", "*test_latency*"])  # (its place among the
    both.stdout.fnmatch_lines(["*perfsuite results: tiny*"])  # summaries is pytest-benchmark's)


def test_disable_with_recording_is_refused_and_alone_skips_with_reason(repo):
    refused = repo.runpytest_subprocess(*ARGS, "--benchmark-disable", "--perf-save-baseline")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert not (repo.path / "baselines").exists()
    alone = repo.runpytest_subprocess(*ARGS, "--benchmark-disable")
    alone.assert_outcomes(passed=1, skipped=1)
    alone.stdout.fnmatch_lines(["SKIPPED*tiny-torch-fp32: latency not timed (--benchmark-disable)*"])


def test_under_xdist_latency_skips_with_the_reason(repo):
    pytest.importorskip("xdist", reason="pytest-xdist is in the test extra")
    result = repo.runpytest_subprocess(*ARGS, "-n", "2")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*tiny-torch-fp32: latency not timed under xdist (-n): "
                                 "parallel workers disturb each other's timings*"])
    gated = repo.runpytest_subprocess(*ARGS, "-n", "2", "--benchmark-compare")
    assert gated.ret == pytest.ExitCode.USAGE_ERROR
    gated.stderr.fnmatch_lines(["*pytest-xdist (-n, --dist) turns pytest-benchmark off*"])


def test_skips_name_the_test_not_perfsuite(repo):
    result = repo.runpytest_subprocess(*ARGS[:-2], "-k", "test_latency",
                                       "--perf-backends=torch,tensorrt")
    result.assert_outcomes(passed=1, skipped=1)
    skips = [line for line in result.stdout.lines if line.startswith("SKIPPED")]
    assert skips and all("test_latency.py" in line and "plugin.py" not in line for line in skips)
