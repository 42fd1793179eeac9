"""Running git: the one place perfsuite calls it (A/B's base tree, a baseline's history, the
commit a report names)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from perfsuite.errors import PerfsuiteError


class GitError(PerfsuiteError):
    """git is not installed, or a git command failed (the message is git's own)."""


def git(folder: Path, *args: str, timeout: float | None = None) -> str:
    """`git -C folder args...`'s standard output; GitError with git's message otherwise."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitError(f"git {args[0]} cannot run ({exc})") from exc
    if done.returncode != 0:
        raise GitError(done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return done.stdout.decode(errors="replace")
