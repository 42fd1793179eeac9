"""One bisection step: a commit checked out in a temporary git worktree and run under
`pytest --perf-ab=GOOD` for the benchmarks being bisected; its verdict read from the run's
result file (which benchmarks were compared) and its failure lines (which regressed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perfsuite.git import GitError, git

# the A/B gate's latency failure line: "perfsuite A/B | <case id> <statistic> vs <ref> REGRESSED"
_REGRESSED = re.compile(r"perfsuite A/B \| (\S+) (?:GPU compute|end to end) vs \S+ REGRESSED")


@dataclass(frozen=True)
class StepResult:
    """What one commit's A/B run said about the benchmarks asked."""

    commit: str
    outcome: str  # 'slower' | 'same' | 'skipped'
    regressed: tuple[str, ...]  # benchmarks whose latency regressed against GOOD
    lines: tuple[str, ...]  # the verdict lines, or why the commit could not be measured
    seconds: float  # the step's wall time, checkout included
    levels: tuple[tuple[str, float], ...] = ()  # ('<case id> <statistic>', median pair ratio)
    clear: bool = True  # every comparison stopped with a clear answer (slower, or within)
    note: str = ""  # how an unclear answer was settled

    def level(self, key: str) -> float | None:
        return dict(self.levels).get(key)


def selection(benchmarks: Sequence[str]) -> str:
    """pytest's -k expression for the latency tests of `benchmarks` (case ids), all if none."""
    if not benchmarks:
        return "test_latency"
    return "test_latency and (" + " or ".join(benchmarks) + ")"


def run_step(top: Path, rootdir: Path, commit: str, good: str, benchmarks: Sequence[str],
             pytest_args: Sequence[str]) -> StepResult:
    """`commit` checked out beside the repository and measured against `good` (A/B)."""
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="perfsuite-bisect-"))
    tree = scratch / commit[:12]
    try:
        try:
            git(top, "worktree", "add", "--detach", str(tree), commit)
        except GitError as exc:
            return StepResult(commit, "skipped", (), (f"cannot be checked out: {exc}",),
                              time.perf_counter() - started)
        result_file = scratch / "result.json"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                   f"--perf-ab={good}", f"--benchmark-json={result_file}", *pytest_args,
                   "-k", selection(benchmarks)]
        done = subprocess.run(command, cwd=tree / rootdir.relative_to(top),
                              env={**os.environ, "COLUMNS": "400"},  # summary lines whole
                              capture_output=True, text=True, check=False)
        return _verdict(commit, done, result_file, benchmarks, time.perf_counter() - started)
    finally:
        try:
            git(top, "worktree", "remove", "--force", str(tree))
        except GitError:
            pass  # never added, or already gone
        shutil.rmtree(scratch, ignore_errors=True)


def _verdict(commit: str, done: subprocess.CompletedProcess[str], result_file: Path,
             benchmarks: Sequence[str], seconds: float) -> StepResult:
    output = done.stdout.splitlines()
    compared, levels, clear = _compared(result_file)
    asked = set(benchmarks) or compared
    regressed = tuple(sorted({m.group(1) for line in output
                              if (m := _REGRESSED.search(line)) and m.group(1) in asked}))
    lines = tuple(line for line in output if line.startswith("perfsuite A/B"))
    if done.returncode not in (0, 1) or not (asked & compared):
        every = [line for line in output + done.stderr.splitlines() if line.strip()]
        errors = [line for line in every if line.startswith(("ERROR ", "FAILED "))]
        why = f"pytest exited {done.returncode}, no benchmark compared"
        if errors:
            why += f" ({errors[0]})"
        return StepResult(commit, "skipped", (), (why, *(errors[1:] or every[-6:])), seconds)
    return StepResult(commit, "slower" if regressed else "same", regressed, lines, seconds,
                      tuple(sorted(levels.items())), bool(regressed) or clear)


def _compared(result_file: Path) -> tuple[set[str], dict[str, float], bool]:
    """From pytest-benchmark's result file: the case ids with A/B pairs, each comparison's
    median pair ratio ('<case id> <statistic>'), and whether every comparison stopped clearly
    (nothing if the file is missing)."""
    try:
        benchmarks = json.loads(result_file.read_text())["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError):
        return set(), {}, False
    found, levels, clear = set(), {}, True
    for bench in benchmarks:
        info = bench.get("extra_info", {}) if isinstance(bench, dict) else {}
        if not info.get("paired"):
            continue
        case = f"{info['model']}-{info['backend']}-{info['precision']}"
        found.add(case)
        for paired in info["paired"]:
            ratios = [c / b for b, c in zip(paired["base_trial_medians_ms"],
                                            paired["current_trial_medians_ms"]) if b > 0]
            if ratios:
                levels[f"{case} {paired['statistic']}"] = statistics.median(ratios)
            clear = clear and str(paired.get("stopped", "")).startswith("clearly")
    return found, levels, clear
