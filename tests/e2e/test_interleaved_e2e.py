"""`passes` (timing): the run's latency benchmarks timed together, their rounds spread over the
run in passes, on pytest-benchmark's clock (a virtual one here: every call costs exactly its
spin), each benchmark's record as full as when it is timed in one go."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from tiny_models import SPIN_MS_ENV, TINY_CONFIG, VIRTUAL_CLOCK_ENV

REPO = Path(__file__).resolve().parents[2]
SECOND_MODEL = '''
[[tool.perfsuite.models]]
name = "tiny2"
factory = "tiny_models:tiny_cnn"
input_shape = [1, 3, 16, 16]
'''
ARGS = ("-p", "no:cacheprovider", "--perf-backends=torch", "--perf-precisions=fp32",
        "--benchmark-timer=tiny_models.virtual_clock", "-k", "test_latency")


@pytest.fixture
def repo(pytester, tmp_path, monkeypatch):
    config = TINY_CONFIG.replace("rounds = 5\n", "rounds = 8\npasses = 4\n") + SECOND_MODEL
    pytester.makefile(".toml", pyproject=config)
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(SPIN_MS_ENV, "2.0")
    monkeypatch.setenv(VIRTUAL_CLOCK_ENV, "1")
    return pytester


def test_passes_time_every_latency_benchmark_together_on_the_run_clock(repo):
    result = repo.runpytest_subprocess(*ARGS, "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    text = result.stdout.str() + result.stderr.str()
    assert text.count("interleaved timing: 8 rounds of each of 2 latency benchmarks in 4 "
                      "passes") >= 1, text
    assert re.search(r"perfsuite results: tiny \(threads \d, rounds interleaved in 4 passes\)",
                     text), text
    benchmarks = json.loads((repo.path / "out.json").read_text())["benchmarks"]
    assert sorted(b["extra_info"]["model"] for b in benchmarks) == ["tiny", "tiny2"]
    for bench in benchmarks:
        # the 8 rounds, each exactly one 2 ms spin on the virtual clock: the run's clock timed
        # them, and nothing else (no warm-up call) entered the record
        assert bench["stats"]["data"] == [pytest.approx(0.002)] * 8, bench["stats"]
        assert bench["extra_info"]["latency"]["median_ms"] == pytest.approx(2.0)
        assert bench["extra_info"]["passes"] == 4


def test_one_pass_times_each_benchmark_in_one_go(repo):
    (repo.path / "pyproject.toml").write_text(
        (repo.path / "pyproject.toml").read_text().replace("passes = 4\n", ""))
    result = repo.runpytest_subprocess(*ARGS, "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    text = result.stdout.str() + result.stderr.str()
    assert "interleaved timing" not in text and "interleaved in" not in text
    benchmarks = json.loads((repo.path / "out.json").read_text())["benchmarks"]
    assert all(b["stats"]["data"] == [pytest.approx(0.002)] * 8 for b in benchmarks)
    assert all(b["extra_info"]["passes"] == 1 for b in benchmarks)
