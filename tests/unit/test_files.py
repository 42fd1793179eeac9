"""Files perfsuite writes keep the permissions the user would expect (mkstemp makes 0600 files
and mkdtemp 0700 folders); leftovers and locks of killed runs do not get in the next run's way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from perfsuite.files import atomic_write_text
from perfsuite.models.artifacts import ArtifactCache


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_file_gets_the_umask_default_and_a_rewrite_keeps_the_old_mode(tmp_path, umask_022):
    path = tmp_path / "baseline.json"
    atomic_write_text(path, "one")
    assert path.stat().st_mode & 0o777 == 0o644 and path.read_text() == "one"
    os.chmod(path, 0o640)
    atomic_write_text(path, "two")
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_writing_through_a_symbolic_link_keeps_the_link(tmp_path):
    target = tmp_path / "elsewhere" / "report.md"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "report.md"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_cache_entries_are_ordinary_folders(tmp_path, umask_022):
    entry = ArtifactCache(tmp_path / "cache").get_or_build(
        "onnx", "m", {"k": "v"}, lambda folder: (folder / "model.onnx").write_bytes(b"x"))
    assert entry.path.stat().st_mode & 0o777 == 0o755


def test_leftovers_of_a_killed_run_are_removed_by_the_next_writer(tmp_path):
    from perfsuite.files import STALE_SECONDS

    path = tmp_path / "baseline.json"
    old_file = tmp_path / ".baseline.json.perfsuite-tmp-k1ll3d"
    fresh_file = tmp_path / ".baseline.json.perfsuite-tmp-l1ve"
    users = tmp_path / ".baseline.json.swp"  # an editor's swap file: never perfsuite's to remove
    for made in (old_file, fresh_file, users):
        made.write_text("")
    long_ago = old_file.stat().st_mtime - STALE_SECONDS - 60
    os.utime(old_file, (long_ago, long_ago))
    os.utime(users, (long_ago, long_ago))
    atomic_write_text(path, "x")
    assert not old_file.exists() and fresh_file.exists(), "only what is old enough is removed"
    assert users.exists(), "only perfsuite's own temporary files are removed"

    cache = ArtifactCache(tmp_path / "cache")
    entry_dir = cache.entry_path("onnx", "m", {"k": "v"})
    entry_dir.parent.mkdir(parents=True)
    staging = entry_dir.parent / f".{entry_dir.name}.abc123"
    (staging / "sub").mkdir(parents=True)  # fresh: the entry's lock shows its builder is gone
    cache.get_or_build("onnx", "m", {"k": "v"}, lambda f: (f / "model.onnx").write_bytes(b"x"))
    assert not staging.exists()
    (staging / "sub").mkdir(parents=True)
    cache.get_or_build("onnx", "m", {"k": "v"}, lambda f: None)
    assert not staging.exists(), "removed when the entry is served from the cache too"


def test_a_killed_builders_lock_does_not_block_the_next_run(tmp_path):
    """flock locks die with their process: SIGKILL while building leaves no stale lock."""
    cache = ArtifactCache(tmp_path / "cache")
    lock = cache.entry_path("onnx", "m", {"k": "v"})
    lock = lock.with_name(lock.name + ".lock")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from perfsuite.models.artifacts import file_lock\n"
        f"with file_lock(Path({str(lock)!r})):\n"
        "    print('locked', flush=True); time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        holder.kill()
    built = []
    done = threading.Event()

    def build() -> None:
        cache.get_or_build("onnx", "m", {"k": "v"},
                           lambda f: built.append((f / "model.onnx").write_bytes(b"x")))
        done.set()

    threading.Thread(target=build, daemon=True).start()
    assert done.wait(timeout=60), "the next run waited on a dead process's lock"
    assert built == [1] and lock.exists(), "built once; the lock file stays, unlocked, for reuse"


def test_a_concurrent_runs_live_staging_folder_is_left_alone(tmp_path):
    """Two runs want one entry: the second waits for the first's lock, then uses its entry;
    the first's staging folder is never touched while it builds."""
    cache = ArtifactCache(tmp_path / "cache")
    started, release, calls, seen = threading.Event(), threading.Event(), [], []

    def slow_build(folder):
        calls.append(folder)
        started.set()
        assert release.wait(timeout=60)
        seen.append(folder.is_dir())
        (folder / "model.onnx").write_bytes(b"x")

    first = threading.Thread(target=cache.get_or_build, args=("onnx", "m", {"k": "v"}, slow_build))
    first.start()
    assert started.wait(timeout=60)
    reused = []
    second = threading.Thread(target=lambda: reused.append(
        cache.get_or_build("onnx", "m", {"k": "v"}, slow_build)))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive(), "the second run waits for the first's lock"
    release.set()
    first.join(timeout=60)
    second.join(timeout=60)
    assert len(calls) == 1 and seen == [True], "built once; the staging folder stayed while live"
    assert [entry.hit for entry in reused] == [True], "the second run got the first's build"


@pytest.mark.parametrize("name", ["m" * 250, "模型" * 45])
def test_long_or_non_ascii_model_names_make_short_cache_folders(tmp_path, name):
    cache = ArtifactCache(tmp_path / "cache")
    entry = cache.get_or_build("onnx", f"{name}-fp32", {"model": name},
                               lambda f: (f / "model.onnx").write_bytes(b"x"))
    assert entry.hit is False and len(entry.path.name.encode()) <= 101
    other = cache.entry_path("onnx", f"{name}-fp16", {"model": name, "precision": "fp16"})
    assert other != entry.path, "the digest keeps truncated names apart"


def test_a_read_only_cache_serves_complete_entries_and_names_missing_ones(tmp_path, monkeypatch):
    import errno

    import perfsuite.models.artifacts
    from perfsuite.errors import CacheError

    cache = ArtifactCache(tmp_path / "cache")
    built = cache.get_or_build("onnx", "m", {"k": "v"},
                               lambda f: (f / "model.onnx").write_bytes(b"x"))

    def read_only(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(perfsuite.models.artifacts, "file_lock", read_only)
    again = cache.get_or_build("onnx", "m", {"k": "v"}, lambda f: pytest.fail("no rebuild"))
    assert again.hit and again.path == built.path
    with pytest.raises(CacheError, match=r"(?s)cannot be written .Read-only file system. and holds "
                                         r"no usable .*Remedy: set PERFSUITE_CACHE_DIR"):
        cache.get_or_build("onnx", "other", {"k": "w"}, lambda f: None)
