"""`perfsuite bisect` over a git history the test builds: 16 commits, the model's cost fixed by
construction (a Spin layer advances the virtual clock that times it), so which commit is slower
does not depend on machine load."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.e2e.test_ab import MODELS, VCLOCK
from tests.e2e.test_ab import PYPROJECT as AB_PYPROJECT

# test_ab's project with one precision, its virtual clock and its factory module
PYPROJECT = AB_PYPROJECT.replace('["fp32", "fp16"]', '["fp32"]')


def git(folder, *args):
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          cwd=folder, check=True, capture_output=True, text=True).stdout


def history(folder, slow=(), broken=()):
    """Commits c1..c16: each slow commit makes the model x1.5 slower from then on; a broken
    commit's factory raises (the next one is fixed)."""
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "vclock.py").write_text(VCLOCK)
    git(folder, "init", "-q")
    spin = 2.0
    for number in range(1, 17):
        spin *= 1.5 if number in slow else 1.0
        body = "raise RuntimeError('half-done refactoring')" if number in broken else "pass"
        (folder / "models.py").write_text(MODELS.format(spin=spin, body=body))
        (folder / "notes.txt").write_text(f"change {number}\n")
        git(folder, "add", "-A")
        git(folder, "commit", "-q", "-m", f"c{number}")
    return {line.split()[1]: line.split()[0] for line in
            git(folder, "log", "--format=%h %s").splitlines()}


def bisect(folder, tmp_path, *args):
    env = {"PERFSUITE_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "perfsuite", "bisect", "--out", "bisect.md",
                           *args, "-p", "no:cacheprovider", "--benchmark-timer=vclock.clock"],
                          cwd=folder, capture_output=True, text=True,
                          env={**__import__("os").environ, **env}, check=False)


def steps(output):
    return re.findall(r"^step (\d+): (\w+) (c\d+): (\w+)", output, re.MULTILINE)


@pytest.mark.parametrize(("slow", "broken", "first"), [
    ((11,), (), "c11"),
    ((6, 12), (), "c6"),  # two slow commits: the first is named
    ((12,), (8, 9), "c12"),  # git's first choices do not build: skipped, and said
])
def test_bisect_names_the_first_slower_commit_in_at_most_five_steps(tmp_path, slow, broken, first):
    folder = tmp_path / "repo"
    folder.mkdir()
    commits = history(folder, slow, broken)
    done = bisect(folder, tmp_path, "HEAD~15", "HEAD")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"perfsuite bisect: first slower commit: {commits[first]} {first}" in done.stdout
    taken = steps(done.stdout)
    assert taken[0] == ("0", commits["c16"], "c16", "slower"), "step 0: BAD against GOOD"
    measured = [s for s in taken if s[3] != "skipped"]
    assert len(measured) <= 5, done.stdout
    skipped = {s[2] for s in taken if s[3] == "skipped"}
    assert skipped <= {f"c{n}" for n in broken} and bool(skipped) == bool(broken)
    for name in skipped:
        assert f"{name}: skipped (pytest exited" in done.stdout
        assert f"skipped {commits[name]} {name}: pytest exited" in (folder / "bisect.md").read_text()
    for _, _, name, outcome in measured:
        number = int(name[1:])
        assert outcome == ("slower" if number >= min(slow) else "same"), done.stdout
    report = (folder / "bisect.md").read_text()
    assert report.startswith("## perfsuite bisect") and f"{commits[first]} {first}" in report
    assert "tiny-torch-fp32" in report
    assert not git(folder, "worktree", "list").strip().count("\n"), "worktrees removed"
