"""The one root every read of sysfs, procfs and /etc goes through.

`PERFSUITE_SYSFS_ROOT` (default `/`) names it, so a fake tree (tests/fakes/sysfs/) or a container's
mount of the host's /sys and /proc can stand in for the machine. Reads never raise: a missing or
unreadable file reads as None, and `problem()` says which it was, for the verdict's message.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from perfsuite.errors import ConfigError

SYSFS_ROOT_ENV = "PERFSUITE_SYSFS_ROOT"


class SystemFiles:
    """Read-only access to the files under one root; paths are given relative to it."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def path(self, relative: str) -> Path:
        return self.root / relative.lstrip("/")

    def shown(self, relative: str) -> str:
        """The path as a user would look for it (`/sys/...`, or under the fake root)."""
        return str(self.path(relative))

    def missing(self, relative: str) -> bool:
        """True when nothing is at `relative` (an unreadable file is not missing)."""
        try:
            self.path(relative).lstat()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return False

    def text(self, relative: str) -> str | None:
        try:
            return (self.path(relative).read_bytes().decode("utf-8", errors="replace")
                    .replace("\x00", "").strip())
        except OSError:
            return None

    def number(self, relative: str) -> float | None:
        """The file's first word as a finite number; None when missing, unreadable, not a
        number, NaN or infinite (a driver's garbage never reads as a value)."""
        text = self.text(relative)
        try:
            value = float(text.split()[0]) if text else None
        except (ValueError, OverflowError):
            return None
        return value if value is not None and math.isfinite(value) else None

    def problem(self, relative: str) -> str:
        """Why `relative` cannot be read: 'missing' or the operating system's reason."""
        try:
            self.path(relative).read_bytes()
        except FileNotFoundError:
            return f"{self.shown(relative)} is missing"
        except OSError as exc:
            return f"{self.shown(relative)} cannot be read ({exc.strerror})"
        return f"{self.shown(relative)} does not hold a number"

    def exists(self, relative: str) -> bool:
        return self.path(relative).exists()

    def glob(self, pattern: str) -> list[str]:
        """Relative paths matching `pattern`, sorted; nothing when a folder cannot be listed."""
        try:
            found = sorted(self.root.glob(pattern.lstrip("/")))
        except OSError:
            return []
        return [str(p.relative_to(self.root)) for p in found]


def system_files(environ: Mapping[str, str] = os.environ) -> SystemFiles:
    """The machine's files, or the tree `PERFSUITE_SYSFS_ROOT` names (checked to be a folder)."""
    named = environ.get(SYSFS_ROOT_ENV, "")
    if not named:
        return SystemFiles(Path("/"))
    root = Path(named)
    if not root.is_dir():
        raise ConfigError(f"{SYSFS_ROOT_ENV}={named!r} | no such folder.\nRemedy: point it at a "
                          "tree holding sys/, proc/ and etc/ (a container's mount of the host's), "
                          "or unset it to read this machine's.")
    return SystemFiles(root)
