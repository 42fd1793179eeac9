"""The bisection's state: the commits known as fast as GOOD, the first known slower, the ones
that could not be measured; which commit to measure next and what the answer is. git chooses
as `git bisect` does (`git rev-list --bisect-all`: the commit that halves what is left, merges
and side branches included, or only first parents)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from perfsuite.git import git


@dataclass
class Bisection:
    """Where the slowdown can still be: reachable from `bad`, not from any of `goods`."""

    top: Path  # the repository's top level
    bad: str  # the oldest commit known slower than GOOD (full id)
    goods: list[str]  # commits known as fast as GOOD, GOOD first
    first_parent: bool = False
    skipped: set[str] = field(default_factory=set)  # could not be built or measured

    def _rev_list(self, *args: str) -> list[str]:
        first = ["--first-parent"] if self.first_parent else []
        out = git(self.top, "rev-list", *first, *args, self.bad, "--not", *self.goods)
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def candidates(self) -> list[str]:
        """Every commit that may be the first slower one, newest first (`bad` among them)."""
        return self._rev_list()

    def next_commit(self) -> str | None:
        """The commit to measure next, or None when the answer is known: the one that halves
        the candidates best, skipped ones passed over (git's `--bisect-all` order)."""
        for commit in self._rev_list("--bisect-all"):
            if commit != self.bad and commit not in self.skipped:
                return commit
        return None

    def record(self, commit: str, outcome: str) -> None:
        """A step's outcome: 'slower', 'same' or 'skipped'."""
        if outcome == "slower":
            self.bad = commit
        elif outcome == "same":
            self.goods.append(commit)
        else:
            self.skipped.add(commit)

    def answer(self) -> list[str]:
        """The commits the first slower one is among, oldest first: only `bad` when every
        other candidate was measured; the skipped ones beside it otherwise."""
        return [c for c in reversed(self.candidates()) if c == self.bad or c in self.skipped]
