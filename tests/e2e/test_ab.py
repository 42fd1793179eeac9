"""--perf-ab=REF end to end in a git repository built by the test, and the paired statistics.

The model's cost is fixed by construction: a Spin layer advances a virtual clock (the
benchmark timer) by a set number of milliseconds, so verdicts do not depend on machine load."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perfsuite.measure.paired import PairedTrials, alternate, judge_pairs, order_statistic_bound

PYPROJECT = """
[tool.perfsuite]
backends = ["torch"]
precisions = ["fp32", "fp16"]
device = "cpu"

[tool.perfsuite.timing]
rounds = 10
trials = 2
warmup_seconds = 0.0
warmup_min_runs = 1

[tool.perfsuite.ab]
pairs = 20

[[tool.perfsuite.models]]
name = "tiny"
factory = "models:build"
input_shape = [1, 3, 8, 8]
"""
VCLOCK = """
_now = [0.0]


def clock():
    return _now[0]


def advance(seconds):
    _now[0] += seconds
"""
MODELS = """
from torch import nn

import vclock

SPIN_MS = {spin}


class Spin(nn.Module):
    def forward(self, x):
        vclock.advance(SPIN_MS / 1e3)
        return x


def build():
    {body}
    return nn.Sequential(Spin(), nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
"""
ARGS = ("-p", "no:cacheprovider", "--benchmark-timer=vclock.clock", "-k",
        "test_latency or test_size or test_drift")


def git(folder, *args):
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   cwd=folder, check=True, capture_output=True)


@pytest.fixture
def repo(pytester, tmp_path, monkeypatch):
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.makepyfile(vclock=VCLOCK, models=MODELS.format(spin=2.0, body="pass"))
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "base")
    return pytester


def test_unchanged_tree_passes(repo):
    result = repo.runpytest_subprocess(*ARGS, "--perf-ab=HEAD")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "torch*fp32*cpu*x1.000 ?1.000, 1.000? e2e ok*",
        "perfsuite A/B vs HEAD: 7 checks, 0 regressed (latency: 2 benchmarks in ABBA pairs, "
        "40 pairs used of up to 40).",
    ])


def test_slower_model_in_the_working_tree_fails_naming_benchmark_and_ref(repo):
    (repo.path / "models.py").write_text(MODELS.format(spin=3.0, body="pass"))
    result = repo.runpytest_subprocess(*ARGS, "--perf-ab=HEAD", "--perf-report=ab.md",
                                       "--perf-report=ab.html")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "perfsuite A/B | tiny-torch-fp32 end to end vs HEAD REGRESSED: x1.500 ?1.500, 1.500? "
        "(median ratio, 99.75% bounds over 20 ABBA pairs; 3.000 ms vs 2.000 ms)*",
    ])
    result.stdout.fnmatch_lines(["FAILED *test_latency?tiny-torch-fp16?*"])
    assert "| tiny-torch-fp32 (e2e, 20 ABBA pairs) | 2 ms | 3 ms | x1.500 |" in \
        (repo.path / "ab.md").read_text(), "both sides' times beside the ratio"
    page = (repo.path / "ab.html").read_text()
    assert "tiny: A/B trial medians per benchmark (HEAD vs this tree)" in page
    assert ('<td class="text">tiny-torch-fp32 (e2e, 20 ABBA pairs)</td><td>2 ms</td>'
            '<td>3 ms</td><td>x1.500</td><td>[1.500, 1.500]</td><td class="text bad"><strong>REGRESSED</strong></td>') in page
    assert page.count('<td class="text bad">HEAD 2.000 ms, x1.500 [1.500, 1.500] e2e REGRESSED') == 2


def test_end_to_end_fails_only_beyond_its_own_limit(repo):
    """End to end (host clock) has the higher limit (ab_e2e_min_increase, 3%): +2% passes,
    and fails where the repository lowers it."""
    (repo.path / "models.py").write_text(MODELS.format(spin=2.04, body="pass"))
    result = repo.runpytest_subprocess(*ARGS, "--perf-ab=HEAD")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["torch*fp32*cpu*x1.020 ?1.020, 1.020? e2e ok*"])
    with (repo.path / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.perfsuite.gate]\nab_e2e_min_increase = 0.01\n")
    result = repo.runpytest_subprocess(*ARGS, "--perf-ab=HEAD")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*tiny-torch-fp32 end to end vs HEAD REGRESSED: x1.020*"])


def test_base_side_failure_is_reported_and_the_current_side_measured(repo):
    (repo.path / "models.py").write_text(MODELS.format(spin=2.0, body="raise RuntimeError('x')"))
    git(repo.path, "commit", "-q", "-am", "broken")
    (repo.path / "models.py").write_text(MODELS.format(spin=2.0, body="pass"))
    result = repo.runpytest_subprocess(*ARGS, "--perf-ab=HEAD")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["perfsuite A/B: tiny-torch-fp32 not compared: HEAD's side "
                                 "failed: model 'tiny' | *RuntimeError*"])


@pytest.mark.parametrize(("ref", "setup", "message"), [
    ("no-such-ref", None, "*--perf-ab=no-such-ref | no such revision in *"),
    ("HEAD", "no-config", "*--perf-ab=HEAD | REF (*) has no perfsuite configuration*"),
    ("HEAD", "no-git", "*--perf-ab=HEAD | * is not in a git checkout*"),
])
def test_bad_ref_is_a_usage_error(repo, ref, setup, message):
    if setup == "no-config":
        (repo.path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
        git(repo.path, "commit", "-q", "-am", "no perfsuite")
        (repo.path / "pyproject.toml").write_text(PYPROJECT)
    if setup == "no-git":
        subprocess.run(["rm", "-rf", str(repo.path / ".git")], check=True)
    result = repo.runpytest_subprocess(*ARGS, f"--perf-ab={ref}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_ab_refuses_options_it_replaces(repo):
    result = repo.runpytest_subprocess(*ARGS, "--perf-ab=HEAD", "--perf-save-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--perf-ab * cannot be combined with "
                                 "--perf-save-baseline/--perf-add-recording*"])


def test_each_side_reads_perfsuite_config_from_its_own_tree(repo, monkeypatch):
    """PERFSUITE_CONFIG names a file of the repository: REF's copy configures REF's side. REF
    has fp32 only; the working tree adds fp16, which is listed as new, not compared."""
    config = PYPROJECT.replace('precisions = ["fp32", "fp16"]', 'precisions = ["fp32"]')
    (repo.path / "perf.toml").write_text(config)
    git(repo.path, "add", "perf.toml")
    git(repo.path, "commit", "-q", "-m", "perf.toml")
    (repo.path / "perf.toml").write_text(PYPROJECT)
    monkeypatch.setenv("PERFSUITE_CONFIG", str(repo.path / "perf.toml"))
    result = repo.runpytest_subprocess(*ARGS, "--perf-ab=HEAD")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "perfsuite A/B vs HEAD: * checks, 0 regressed (latency: 1 benchmarks in ABBA pairs, "
        "* pairs used of up to *).",
        "perfsuite A/B: new since HEAD (not compared): tiny-torch-fp16",
    ])


# -- the statistics ----------------------------------------------------------------------------

def test_median_bound_is_the_binomial_quantile():
    from math import comb

    for n in (20, 30, 150, 1500, 3000):
        k = order_statistic_bound(n, 0.99)
        below = sum(comb(n, j) for j in range(k + 1)) / 2**n
        above = sum(comb(n, j) for j in range(k + 2)) / 2**n
        assert below <= 0.01 < above


def test_order_alternates_abba():
    order: list[str] = []

    def side(name):
        def measure(rounds):
            order.append(name)
            return [0.001] * rounds
        return measure

    alternate(side("A"), side("B"), 4, 3, "e2e")
    assert "".join(order) == "ABBAABBA"


def test_aa_false_alarms_and_detection_on_simulated_pairs():
    """150 pairs of single calls with 6% lognormal noise each and, in one pair in ten, a burst of
    load tripling one side: an unchanged model is flagged in under 1% of comparisons, +10% in
    over 98%."""
    rng = np.random.default_rng(0)

    def trials(slowdown):
        base = np.exp(rng.normal(0, 0.06, 150))
        current = np.exp(rng.normal(0, 0.06, 150)) * slowdown
        burst = rng.random(150) < 0.1
        side = rng.random(150) < 0.5
        base = np.where(burst & side, base * 3, base)
        current = np.where(burst & ~side, current * 3, current)
        return PairedTrials("e2e", tuple(base), tuple(current))

    alarms = sum(judge_pairs("m", "ref", trials(1.0), 0.01).failed for _ in range(2000))
    caught = sum(judge_pairs("m", "ref", trials(1.10), 0.01).failed for _ in range(500))
    assert alarms / 2000 < 0.01 and caught / 500 > 0.98
    verdict = judge_pairs("m", "ref", trials(1.10), 0.01)
    assert verdict.low < verdict.ratio < verdict.high and math.isfinite(verdict.resolution)


@pytest.mark.skipif(not Path("/proc/self/personality").exists(), reason="reads /proc (Linux)")
def test_workers_start_with_a_fixed_address_layout():
    """Address-space randomisation off (ADDR_NO_RANDOMIZE, 0x0040000) where setarch works, so
    two workers place code and buffers alike; elsewhere the command is left as it was."""
    from perfsuite.run.ab.process import _setarch_prefix, fixed_layout

    command = [sys.executable, "-c", "print(open('/proc/self/personality').read())"]
    if not _setarch_prefix():
        assert fixed_layout(command) == command
        return
    done = subprocess.run(fixed_layout(command), capture_output=True, text=True, check=True)
    assert int(done.stdout, 16) & 0x0040000
    assert not int(subprocess.run(command, capture_output=True, text=True,
                                  check=True).stdout, 16) & 0x0040000
