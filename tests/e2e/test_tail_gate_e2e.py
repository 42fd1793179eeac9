"""The tail gate (`tail_percentile`) end to end: a virtual clock makes every call's cost exact,
so a tail-only slowdown (the median unchanged) is the only change between the two runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_models import SPIN_MS_ENV, TAIL_ENV, TINY_CONFIG, VIRTUAL_CLOCK_ENV

REPO = Path(__file__).resolve().parents[2]
ARGS = ("-p", "no:cacheprovider", "--perf-backends=torch", "--perf-precisions=fp32",
        "--perf-machine-key=tail-machine", "--benchmark-timer=tiny_models.virtual_clock",
        "-k", "test_latency")


@pytest.fixture
def repo(pytester, tmp_path, monkeypatch):
    pytester.makefile(".toml", pyproject=TINY_CONFIG + "\n[tool.perfsuite.gate]\n"
                      "tail_percentile = 99\n")
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(SPIN_MS_ENV, "2.0")
    monkeypatch.setenv(VIRTUAL_CLOCK_ENV, "1")
    return pytester


def test_p99_gate_catches_a_tail_only_slowdown_the_median_gate_passes(repo, monkeypatch):
    rounds = "--perf-rounds=1000"
    repo.runpytest_subprocess(*ARGS, rounds, "--perf-save-baseline").assert_outcomes(passed=1)
    monkeypatch.setenv(TAIL_ENV, "40:20")  # 2.5% of calls take 20 ms: p99 x10, median the same
    result = repo.runpytest_subprocess(*ARGS, rounds, "--benchmark-compare")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "tiny-torch-fp32 p99 end to end REGRESSED" in text
    assert "tiny-torch-fp32 median end to end REGRESSED" not in text
    # the table shows p99 with its bound where 1000 calls support it
    assert any("(<=" in line for line in result.stdout.lines if line.startswith("torch"))


def test_too_few_calls_for_p99_says_so_instead_of_gating(repo, monkeypatch):
    rounds = "--perf-rounds=100"
    repo.runpytest_subprocess(*ARGS, rounds, "--perf-save-baseline").assert_outcomes(passed=1)
    monkeypatch.setenv(TAIL_ENV, "40:20")
    result = repo.runpytest_subprocess(*ARGS, rounds, "--benchmark-compare")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*tail not gated, too few calls for its bound: tiny-torch-fp32 p99 end to end*"])
    assert any("needs 459 calls" in line for line in result.stdout.lines
               if line.startswith("torch"))
