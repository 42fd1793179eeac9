"""Writing the user's files safely: whole or not at all, with the permissions they would have
had (mkstemp and mkdtemp make 0600 files and 0700 folders)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

# Temporary files and folders older than this are leftovers of a killed run (a live write takes
# milliseconds, an artifact build minutes), removed by the next writer.
STALE_SECONDS = 3600
TEMPORARY_MARK = "perfsuite-tmp-"  # in the names of atomic_write_text's temporary files


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
