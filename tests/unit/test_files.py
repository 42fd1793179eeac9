"""Files perfsuite writes keep the permissions the user would expect (mkstemp makes 0600 files
and mkdtemp 0700 folders)."""

from __future__ import annotations

import os

import pytest

from perfsuite.artifacts import ArtifactCache
from perfsuite.files import atomic_write_text


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


def test_cache_entries_are_ordinary_folders(tmp_path, umask_022):
    entry = ArtifactCache(tmp_path / "cache").get_or_build(
        "onnx", "m", {"k": "v"}, lambda folder: (folder / "model.onnx").write_bytes(b"x"))
    assert entry.path.stat().st_mode & 0o777 == 0o755


def test_leftovers_of_a_killed_run_are_removed_by_the_next_writer(tmp_path):
    from perfsuite.files import STALE_SECONDS

    path = tmp_path / "baseline.json"
    old_file, fresh_file = tmp_path / ".baseline.json.k1ll3d", tmp_path / ".baseline.json.l1ve"
    old_file.write_text("")
    fresh_file.write_text("")
    long_ago = old_file.stat().st_mtime - STALE_SECONDS - 60
    os.utime(old_file, (long_ago, long_ago))
    atomic_write_text(path, "x")
    assert not old_file.exists() and fresh_file.exists(), "only what is old enough is removed"

    cache = ArtifactCache(tmp_path / "cache")
    entry_dir = cache.entry_path("onnx", "m", {"k": "v"})
    entry_dir.parent.mkdir(parents=True)
    staging = entry_dir.parent / f".{entry_dir.name}.abc123"
    (staging / "sub").mkdir(parents=True)
    os.utime(staging, (long_ago, long_ago))
    cache.get_or_build("onnx", "m", {"k": "v"}, lambda f: (f / "model.onnx").write_bytes(b"x"))
    assert not staging.exists()


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

    import perfsuite.artifacts
    from perfsuite.errors import CacheError

    cache = ArtifactCache(tmp_path / "cache")
    built = cache.get_or_build("onnx", "m", {"k": "v"},
                               lambda f: (f / "model.onnx").write_bytes(b"x"))

    def read_only(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(perfsuite.artifacts, "file_lock", read_only)
    again = cache.get_or_build("onnx", "m", {"k": "v"}, lambda f: pytest.fail("no rebuild"))
    assert again.hit and again.path == built.path
    with pytest.raises(CacheError, match=r"(?s)cannot be written .Read-only file system. and holds "
                                         r"no usable .*Remedy: set PERFSUITE_CACHE_DIR"):
        cache.get_or_build("onnx", "other", {"k": "w"}, lambda f: None)
