"""Writing the user's files safely: whole or not at all, with the permissions they would have
had (mkstemp and mkdtemp make 0600 files and 0700 folders)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from perfsuite.errors import PerfsuiteError

# Temporary files and folders older than this are leftovers of a killed run (a live write takes
# milliseconds, an artifact build minutes), removed by the next writer.
STALE_SECONDS = 3600
TEMPORARY_MARK = "perfsuite-tmp-"  # in the names of atomic_write_text's temporary files


class FileRefused(PerfsuiteError):
    """A path perfsuite was asked to write names something it must not replace."""


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def replaceable(path: Path, ours: Callable[[Path], bool], what: str) -> Path:
    """The real path (symbolic links resolved) that writing `path` would replace. Refused with
    FileRefused: a link loop, anything but a regular file (a device, folder, FIFO), and a
    non-empty file that `ours` does not recognise as one perfsuite wrote (the user's)."""
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None  # a new file (or a link to one): written where the link points
    except OSError as exc:
        problem = ("is a loop of symbolic links" if exc.errno == errno.ELOOP
                   else f"cannot be read ({exc.strerror or exc})")
        raise FileRefused(f"{what}{path} | {problem}.\nRemedy: name a file that does not "
                          "exist yet, in a folder you can write.") from exc
    real = Path(os.path.realpath(path))
    if mode is None:
        return real
    named = f"{what}{path}" if real == path.absolute() else f"{what}{path} (really {real})"
    for test, kind in _KINDS:
        if test(mode):
            raise FileRefused(f"{named} | is {kind}; perfsuite writes regular files "
                              "only, and replaces none it did not write.\n"
                              "Remedy: name a file that does not exist yet.")
    if real.stat().st_size > 0 and not ours(real):
        raise FileRefused(f"{named} | exists and was not written by perfsuite; left as "
                          "it is.\nRemedy: name a new file, or move that one away.")
    return real


def default_mode(directory: bool = False) -> int:
    """What a plain open() or mkdir() would give under this process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over `path`: an
    interrupted write leaves the old file whole. Keeps the old file's mode (or the default). A
    symbolic link is followed (its target is written, the link kept). Only this function's own
    leftovers (`.NAME.perfsuite-tmp-*`) are ever removed, never the user's `.NAME.swp`."""
    path = path.resolve() if path.is_symlink() else path
    mode = path.stat().st_mode & 0o777 if path.exists() else default_mode()
    prefix = f".{path.name}.{TEMPORARY_MARK}"
    remove_stale(path.parent, prefix)
    handle, temporary = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_stale(folder: Path, prefix: str, min_age_s: float = STALE_SECONDS) -> None:
    """Delete files and folders in `folder` named `prefix...` and untouched for `min_age_s`:
    what a killed run's atomic write or build left behind. The age keeps a concurrent run's live
    file; a caller holding the lock every writer of these names takes may pass 0."""
    now = time.time()
    for leftover in folder.glob(f"{prefix}*"):
        try:
            if now - leftover.stat().st_mtime < min_age_s:
                continue
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        except OSError:
            continue  # gone already, or not ours to remove
