"""The regression gate end to end: pytest runs against a recorded baseline of a tiny model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_models import COPIES_ENV, SPIN_MS_ENV, TINY_CONFIG

REPO = Path(__file__).resolve().parents[2]
KEY = "test-machine"
# torch fp32 only: the spin that makes the model slower is eager Python work
ARGS = ("-p", "no:cacheprovider", "--perf-backends=torch", "--perf-precisions=fp32",
        f"--perf-machine-key={KEY}")


@pytest.fixture
def suite(pytester, tmp_path, monkeypatch):
    # confirmations shield the unchanged runs from a moment of contention on a shared CI machine
    config = TINY_CONFIG.replace("rounds = 5", "rounds = 30") + "\n[tool.perfsuite.gate]\nconfirm_runs = 2\n"
    pytester.makefile(".toml", pyproject=config)
    pytester.makeini("[pytest]\naddopts = -ra\n")
    for name in ("test_latency.py", "test_size.py"):
        shutil.copy(REPO / "tests" / "perf" / name, pytester.path / name)
    shutil.copy(REPO / "tests" / "unit" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(SPIN_MS_ENV, "2.0")  # latency dominated by an exact, stable spin
    return pytester


def baseline_file(pytester) -> Path:
    return pytester.path / "baselines" / KEY / "baseline.json"


def test_record_then_unchanged_runs_pass(suite):
    result = suite.runpytest_subprocess(*ARGS, "--perf-save-baseline")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"perfsuite: baseline written: *{KEY}/baseline.json*"])
    for _ in range(3):
        again = suite.runpytest_subprocess(*ARGS, "--benchmark-compare")
        again.assert_outcomes(passed=2)
        again.stdout.fnmatch_lines(["perfsuite gate: 5 checks against *, 0 regressed."])


def test_slower_model_fails_the_latency_test(suite, monkeypatch):
    suite.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    monkeypatch.setenv(SPIN_MS_ENV, "2.8")  # +40% of the spin, about +35% end to end
    result = suite.runpytest_subprocess(*ARGS, "--perf-report=report.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "perfsuite gate | tiny-torch-fp32 median latency REGRESSED: * ms vs baseline * ms "
        "(x1.*, fails above x1.150)*baseline.json]",
        "FAILED test_latency.py::test_latency[[]tiny-torch-fp32[]]*",
    ])
    assert str(baseline_file(suite)) in result.stdout.str()
    report = (suite.path / "report.md").read_text()
    assert "| tiny-torch-fp32 median latency |" in report and "REGRESSED" in report


def test_twice_the_size_fails_the_size_test(suite, monkeypatch):
    suite.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    monkeypatch.setenv(COPIES_ENV, "2")
    result = suite.runpytest_subprocess(*ARGS, "-k", "size")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["perfsuite gate | tiny parameter_bytes REGRESSED: 12,880 bytes "
                                 "vs baseline 6,440 bytes (x2.000, fails above x1.010)*",
                                 "FAILED test_size.py::test_size[[]tiny[]]*"])


def test_interrupted_recording_keeps_the_old_baseline(suite):
    suite.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    before = baseline_file(suite).read_bytes()
    suite.makepyfile(test_zz_interrupt="def test_interrupt():\n    raise KeyboardInterrupt\n")
    result = suite.runpytest_subprocess(*ARGS, "--perf-save-baseline")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert baseline_file(suite).read_bytes() == before
    assert [p.name for p in baseline_file(suite).parent.iterdir()] == ["baseline.json"]


def test_compare_without_baseline_is_a_usage_error(suite):
    result = suite.runpytest_subprocess(*ARGS, "--benchmark-compare")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--benchmark-compare needs a baseline for machine key "
                                 f"'{KEY}'*record one with `pytest --perf-save-baseline`*"])


def test_plain_run_without_baseline_is_a_notice(suite):
    result = suite.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["perfsuite: no baseline for this machine*nothing was gated*"])


def test_environment_change_fails_closed_unless_allowed(suite):
    suite.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    path = baseline_file(suite)
    path.write_text(path.read_text().replace('"perfsuite": "0.1.0"', '"perfsuite": "0.0.1"'))
    closed = suite.runpytest_subprocess(*ARGS)
    closed.assert_outcomes(failed=2)
    closed.stdout.fnmatch_lines([
        "perfsuite gate | environment changed since the baseline * was recorded "
        "(perfsuite: 0.0.1 -> 0.1.0).",
        "Remedy: re-record it with `pytest --perf-save-baseline`, or pass "
        "--perf-allow-env-change to compare anyway.",
    ])
    allowed = suite.runpytest_subprocess(*ARGS, "--perf-allow-env-change")
    allowed.assert_outcomes(passed=2)
    allowed.stdout.fnmatch_lines(["perfsuite gate: environment changed (allowed): perfsuite*"])


def test_new_and_missing_benchmarks_are_reported(suite):
    suite.runpytest_subprocess(*ARGS, "-k", "size", "--perf-save-baseline").assert_outcomes(passed=1)
    result = suite.runpytest_subprocess(*ARGS, "-k", "latency")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["perfsuite gate: new (not in the baseline, not gated): "
                                 "tiny-torch-fp32",
                                 "perfsuite gate: missing (in the baseline, not run): size:tiny"])


def test_marker_limits_override(suite, monkeypatch):
    suite.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    suite.makeconftest("""
        import pytest
        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.perf_gate(max_increase=1.0, tail_max_increase=1.0))
    """)
    monkeypatch.setenv(SPIN_MS_ENV, "2.8")
    suite.runpytest_subprocess(*ARGS).assert_outcomes(passed=2)


def test_machine_key_hook_names_the_baseline_folder(suite):
    suite.makeconftest("""
        def pytest_perfsuite_machine_key(config, fingerprint):
            return "from-hook-" + fingerprint.isa
    """)
    args = [a for a in ARGS if not a.startswith("--perf-machine-key")]
    result = suite.runpytest_subprocess(*args, "--perf-save-baseline")
    result.assert_outcomes(passed=2)
    assert list((suite.path / "baselines").glob("from-hook-*/baseline.json"))
    explicit = suite.runpytest_subprocess(*ARGS, "--perf-save-baseline")  # the option wins
    explicit.assert_outcomes(passed=2)
    assert baseline_file(suite).is_file()


def test_gate_policy_hook_overrides_limits(suite, monkeypatch):
    suite.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    suite.makeconftest("""
        import dataclasses
        def pytest_perfsuite_gate_policy(config, benchmark, policy):
            if benchmark == "tiny-torch-fp32":
                return dataclasses.replace(policy, max_increase=1.0, tail_max_increase=1.0)
    """)
    monkeypatch.setenv(SPIN_MS_ENV, "2.8")
    result = suite.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["perfsuite gate: 5 checks against *, 0 regressed."])
