"""A content-addressed artifact cache on disk (ONNX files now, TensorRT engines later).

Each entry is a directory `<root>/<kind>/<name>-<digest>/` holding the artifact's files and a
`perfsuite-entry.json` that records the key. Entries are built in a temporary directory and
renamed into place, so an interrupted build leaves no half-written entry; a per-entry file lock
keeps two processes from building the same entry at once. An entry that fails validation is
moved aside (never silently deleted) and rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from perfsuite.errors import CacheError
from perfsuite.files import default_mode, remove_stale

ENTRY_RECORD = "perfsuite-entry.json"
CACHE_SCHEMA = 1
NAME_CHARS = 80  # an entry folder's readable part; file systems allow 255 bytes a name
GITIGNORE = "# Created by perfsuite: the artifact cache is not for version control.\n*\n"


@dataclass(frozen=True)
class KindUsage:
    """What one kind of artifact (onnx, tensorrt) holds in the cache."""

    kind: str
    entries: int
    size_bytes: int
    set_aside: int  # corrupt entries moved aside, kept for inspection


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    key: Mapping[str, str]
    hit: bool

    def files(self) -> list[Path]:
        """The artifact's files (the entry record excluded)."""
        return sorted(p for p in self.path.iterdir() if p.is_file() and p.name != ENTRY_RECORD)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())


def cache_digest(key: Mapping[str, str]) -> str:
    canonical = json.dumps({"schema": CACHE_SCHEMA, **key}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


class ArtifactCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def entry_path(self, kind: str, name: str, key: Mapping[str, str]) -> Path:
        safe_name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_"
                            for c in name)[:NAME_CHARS]  # the digest keeps it unique
        return self.root / kind / f"{safe_name}-{cache_digest(key)}"

    def get_or_build(
        self,
        kind: str,
        name: str,
        key: Mapping[str, str],
        build: Callable[[Path], None],
        validate: Callable[[Path], None] = lambda path: None,
    ) -> CacheEntry:
        """The entry for `key`, calling `build(tmp_dir)` to fill a new one when it is missing.

        `validate(entry_dir)` raises on a corrupt entry; the entry is then moved aside to
        `<entry>.corrupt-<n>` and rebuilt, with a warning.
        """
        path = self.entry_path(kind, name, key)
        self._make_dirs(path.parent)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(path.with_name(path.name + ".lock")))
            except OSError as exc:  # a read-only cache: a complete entry is used as it is
                return self._read_only(path, key, validate, exc)
            return self._locked_get_or_build(path, key, build, validate)

    def _read_only(self, path: Path, key: Mapping[str, str], validate: Callable[[Path], None],
                   error: OSError) -> CacheEntry:
        try:
            _check_record(path, key)
            validate(path)
        except Exception as exc:  # missing or unusable, and it cannot be rebuilt here
            raise CacheError(
                f"artifact cache {self.root} | cannot be written ({error.strerror}) and holds no "
                f"usable {path.name} ({exc}).\nRemedy: set PERFSUITE_CACHE_DIR to a writable "
                "folder."
            ) from exc
        return CacheEntry(path, dict(key), hit=True)

    def _locked_get_or_build(self, path: Path, key: Mapping[str, str],
                             build: Callable[[Path], None],
                             validate: Callable[[Path], None]) -> CacheEntry:
        # Staging folders of this entry are made only under its lock, which we hold: any found
        # belong to a build that was killed (the kernel released its lock), whatever their age.
        remove_stale(path.parent, f".{path.name}.", min_age_s=0)
        if path.is_dir():
            try:
                _check_record(path, key)
                validate(path)
                return CacheEntry(path, dict(key), hit=True)
            except Exception as exc:  # any failure to read an entry means: rebuild it
                aside = _move_aside(path)
                warnings.warn(
                    f"perfsuite cache | entry {path} is unusable ({exc}); moved to {aside} "
                    "and rebuilding.",
                    stacklevel=3,
                )
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            build(staging)
            (staging / ENTRY_RECORD).write_text(json.dumps(dict(key), indent=2, sort_keys=True))
            validate(staging)
            os.chmod(staging, default_mode(directory=True))  # mkdtemp made it 0700
            os.replace(staging, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return CacheEntry(path, dict(key), hit=False)

    def usage(self) -> list[KindUsage]:
        """Per kind: entries, their bytes, and corrupt entries moved aside."""
        found = []
        for kind_dir in self._kind_dirs():
            entries = [d for d in kind_dir.iterdir() if _is_entry(d)]
            if not entries:
                continue  # not a folder of perfsuite's
            found.append(KindUsage(
                kind_dir.name, sum(not _set_aside(d) for d in entries),
                sum(_tree_bytes(d) for d in entries), sum(_set_aside(d) for d in entries),
            ))
        return found

    def clear(self) -> int:
        """Delete every entry perfsuite made (and its lock file); anything else in the folder is
        left as it is. Returns the bytes freed."""
        freed = 0
        for kind_dir in self._kind_dirs():
            for entry in [d for d in kind_dir.iterdir() if _is_entry(d)]:
                lock = entry.with_name(entry.name + ".lock")
                with file_lock(lock):  # not while another run builds it
                    freed += _tree_bytes(entry)
                    shutil.rmtree(entry)
                lock.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                kind_dir.rmdir()  # only when empty
        return freed

    def _kind_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))

    def _make_dirs(self, directory: Path) -> None:
        """Create `directory`; a cache root perfsuite creates ignores itself in git, as pytest's
        own cache does (a root that already existed is left as it is)."""
        try:
            try:
                self.root.mkdir(parents=True)
            except FileExistsError:
                pass  # there already, or another process created it first
            else:
                (self.root / ".gitignore").write_text(GITIGNORE)
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"artifact cache {self.root} | cannot create {directory}: {exc}.\n"
                "Remedy: set PERFSUITE_CACHE_DIR to a writable directory."
            ) from exc


def _is_entry(path: Path) -> bool:
    """An entry perfsuite made (or one it moved aside): a folder holding its entry record."""
    return path.is_dir() and (path / ENTRY_RECORD).is_file()


def _set_aside(path: Path) -> bool:
    return ".corrupt-" in path.name


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _check_record(path: Path, key: Mapping[str, str]) -> None:
    recorded = json.loads((path / ENTRY_RECORD).read_text())
    if recorded != dict(key):
        raise ValueError("its recorded key differs from the requested key")


def _move_aside(path: Path) -> Path:
    for n in range(1, 1000):
        aside = path.with_name(f"{path.name}.corrupt-{n}")
        if not aside.exists():
            os.replace(path, aside)
            return aside
    raise CacheError(f"artifact cache | too many corrupt copies of {path}; delete them.")


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `lock_path` (created if missing) for the block."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
