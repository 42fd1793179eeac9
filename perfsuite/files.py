"""Writing the user's files safely: whole or not at all, with the permissions they would have
had (mkstemp and mkdtemp make 0600 files and 0700 folders)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def default_mode(directory: bool = False) -> int:
    """What a plain open() or mkdir() would give under this process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over `path`: an
    interrupted write leaves the old file whole. Keeps the old file's mode (or the default)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else default_mode()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
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
