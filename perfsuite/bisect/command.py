"""`perfsuite bisect GOOD BAD [pytest options]`: step 0 runs BAD against GOOD for every
benchmark (again, up to STEP0_TRIES times, while its answer is neither slower nor clearly
within); the ones that regressed are then bisected, one A/B run of a commit against GOOD per
step, until one commit is left (or only commits that could not be measured beside it). How an
unclear or doubtful step is settled: perfsuite.bisect.settle."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from perfsuite.bisect.outcome import BisectReport, short_subjects, step_line
from perfsuite.bisect.search import Bisection
from perfsuite.bisect.settle import DOUBT, by_level, doubtful, unclear
from perfsuite.bisect.step import StepResult, run_step
from perfsuite.errors import CliError
from perfsuite.git import GitError, git

REFUSED = ("-k", "--perf-ab", "--benchmark-json")
STEP0_TRIES = 3


def run_bisect(args: argparse.Namespace, root: Path) -> BisectReport:
    """Bisect, printing each step as it ends; what it found."""
    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    for option in pytest_args:
        if option.split("=", 1)[0] in REFUSED:
            raise CliError(f"bisect {option} | perfsuite bisect sets it for each step.\n"
                           "Remedy: leave it out; narrow the benchmarks with --perf-models, "
                           "--perf-backends and --perf-precisions.")
    top = _toplevel(root)
    good, bad = _commit(top, args.good, "GOOD"), _commit(top, args.bad, "BAD")
    if good == bad or not _is_ancestor(top, good, bad):
        raise CliError(f"bisect {args.good} {args.bad} | GOOD must be an ancestor of BAD (and "
                       "not BAD itself).\nRemedy: name the older, fast commit first, e.g. "
                       "perfsuite bisect v1.2 main.")
    subjects = short_subjects(git(top, "log", "--format=%H %s", bad, "--not", f"{good}^@").splitlines())
    search = Bisection(top, bad, [good], first_parent=args.first_parent)
    between = len(search.candidates())
    print(f"perfsuite bisect: {between} commits after GOOD {subjects[good]}; step 0 measures "
          f"BAD {subjects[bad]} against it, every benchmark", flush=True)
    steps: list[StepResult] = []
    while not steps or (unclear(steps[-1]) and len(steps) < STEP0_TRIES):
        steps.append(run_step(top, root, bad, good, (), pytest_args))
        if unclear(steps[-1]):
            steps[-1] = dataclasses.replace(steps[-1], note="not clear at its bound")
        print(step_line(len(steps) - 1, steps[-1], subjects), flush=True)
    reference = steps[-1]
    if reference.outcome == "skipped":
        raise CliError(f"bisect BAD {subjects[bad]} | could not be measured against GOOD: "
                       + "; ".join(reference.lines) + "\nRemedy: run pytest --perf-ab="
                       f"{args.good} at BAD to see why.")
    benchmarks = reference.regressed
    while benchmarks and (commit := search.next_commit()) is not None:
        step = by_level(run_step(top, root, commit, good, benchmarks, pytest_args), reference)
        if doubtful(step, reference):  # measured once more; the second answer stands
            steps.append(dataclasses.replace(step, outcome="unsure", note=DOUBT))
            print(step_line(len(steps) - 1, steps[-1], subjects), flush=True)
            step = by_level(run_step(top, root, commit, good, benchmarks, pytest_args), reference)
        search.record(commit, step.outcome)
        steps.append(step)
        print(step_line(len(steps) - 1, step, subjects), flush=True)
    report = BisectReport(good, bad, benchmarks, tuple(steps),
                          tuple(search.answer()) if benchmarks else (), subjects)
    print(f"perfsuite bisect: {report.headline()}")
    return report


def _toplevel(root: Path) -> Path:
    try:
        return Path(git(root, "rev-parse", "--show-toplevel").strip())
    except GitError as exc:
        raise CliError(f"bisect | {root} is not in a git checkout ({exc}).\nRemedy: run it in "
                       "your repository's clone, or point --rootdir at it.") from exc


def _commit(top: Path, name: str, what: str) -> str:
    try:
        if name.startswith("-"):
            raise GitError("an option, not a revision")
        return git(top, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").strip()
    except GitError as exc:
        raise CliError(f"bisect {what} {name!r} | no such commit in {top}.\nRemedy: name a "
                       "branch, tag or commit (in CI, fetch enough history: git fetch "
                       "--unshallow).") from exc


def _is_ancestor(top: Path, good: str, bad: str) -> bool:
    try:
        git(top, "merge-base", "--is-ancestor", good, bad)
    except GitError:
        return False
    return True

