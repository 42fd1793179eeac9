"""What a bisection found: the steps, the benchmarks bisected and the answer, and the lines
printed as it goes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perfsuite.bisect.step import StepResult


@dataclass(frozen=True)
class BisectReport:
    good: str
    bad: str
    benchmarks: tuple[str, ...]  # the benchmarks bisected (regressed between GOOD and BAD)
    steps: tuple[StepResult, ...]  # in the order run; the first compares BAD with GOOD
    answer: tuple[str, ...]  # the commits the first slower one is among (one when found)
    subjects: dict[str, str]  # commit -> 'abc1234 subject line'

    def headline(self) -> str:
        if not self.benchmarks:
            return (f"{self.short(self.bad)} is not slower than {self.short(self.good)} at the "
                    "A/B gate's limits: nothing to bisect.")
        if len(self.answer) == 1:
            return f"first slower commit: {self.subjects[self.answer[0]]}"
        return ("the first slower commit is one of (the others could not be measured): "
                + ", ".join(self.subjects[c] for c in self.answer))

    def short(self, commit: str) -> str:
        return self.subjects.get(commit, commit[:12]).split(" ", 1)[0]

    def rows(self) -> list[tuple[str, ...]]:
        said = {"slower": "REGRESSED", "same": "ok", "unsure": "REGRESSED, unsure"}
        return [(str(i), self.subjects.get(s.commit, s.commit[:12]),
                 said.get(s.outcome, s.outcome) + (f" ({s.note})" if s.note else ""),
                 ", ".join(s.regressed) or "-",
                 f"{s.seconds:.1f} s") for i, s in enumerate(self.steps)]

    def bullets(self) -> list[str]:
        total = sum(s.seconds for s in self.steps)
        skipped = [s for s in self.steps if s.outcome == "skipped"]
        lines = [f"GOOD `{self.short(self.good)}`, BAD `{self.short(self.bad)}`; benchmarks "
                 f"bisected: {', '.join(self.benchmarks) or 'none'}",
                 f"{len(self.steps)} A/B steps, {total:.0f} s"]
        lines += [f"skipped {self.subjects.get(s.commit, s.commit[:12])}: {s.lines[0]}"
                  for s in skipped]
        return lines


def step_line(index: int, step: StepResult, subjects: dict[str, str]) -> str:
    """The progress line printed after each step."""
    said = step.outcome if step.outcome != "skipped" else f"skipped ({step.lines[0]})"
    what = f": {', '.join(step.regressed)}" if step.regressed else ""
    note = f" [{step.note}]" if step.note else ""
    return (f"step {index}: {subjects.get(step.commit, step.commit[:12])}: {said}{what}{note} "
            f"({step.seconds:.0f} s)")


def short_subjects(lines: Sequence[str]) -> dict[str, str]:
    """'full-id subject' lines (git log --format='%H %s') -> commit -> 'abc1234 subject'."""
    found = {}
    for line in lines:
        commit, _, subject = line.partition(" ")
        if commit:
            found[commit] = f"{commit[:7]} {subject}".strip()
    return found
