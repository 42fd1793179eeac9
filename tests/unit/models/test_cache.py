from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from tiny_models import TINY_CONFIG

from perfsuite.backends import BACKEND_TYPES
from perfsuite.config.settings import load_config
from perfsuite.models.artifacts import ArtifactCache
from perfsuite.models.export import ONNX_FILE
from perfsuite.run.workshop import PerfRun

KEY = {"model": "m", "opset": "17"}


def write_file(directory: Path) -> None:
    (directory / "a.bin").write_bytes(b"x" * 10)


def test_miss_then_hit_does_not_rebuild(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []
    first = cache.get_or_build("onnx", "m", KEY, lambda d: (calls.append(d), write_file(d)))
    second = cache.get_or_build("onnx", "m", KEY, lambda d: calls.append(d))
    assert (first.hit, second.hit) == (False, True)
    assert len(calls) == 1 and first.path == second.path
    assert second.size_bytes() == 10


def test_new_cache_root_ignores_itself_in_git(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    cache.get_or_build("onnx", "m", KEY, write_file)
    assert (tmp_path / "cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    ArtifactCache(tmp_path).get_or_build("onnx", "m", KEY, write_file)
    assert not (tmp_path / ".gitignore").exists(), "a folder that existed is left as it was"


def test_changed_key_is_a_miss(tmp_path):
    cache = ArtifactCache(tmp_path)
    a = cache.get_or_build("onnx", "m", KEY, write_file)
    b = cache.get_or_build("onnx", "m", {**KEY, "opset": "18"}, write_file)
    assert a.path != b.path and not b.hit


def test_failed_build_leaves_no_entry_and_keeps_others(tmp_path):
    cache = ArtifactCache(tmp_path)
    kept = cache.get_or_build("onnx", "m", KEY, write_file)
    before = (kept.path / "a.bin").read_bytes()

    def broken(directory: Path) -> None:
        (directory / "half.bin").write_bytes(b"partial")
        raise KeyboardInterrupt  # an interrupted export

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build("onnx", "m", {**KEY, "opset": "19"}, broken)
    assert not cache.entry_path("onnx", "m", {**KEY, "opset": "19"}).exists()
    assert (kept.path / "a.bin").read_bytes() == before
    assert not [p for p in (tmp_path / "onnx").iterdir() if p.name.startswith(".")]


def test_corrupt_entry_is_moved_aside_and_rebuilt(tmp_path):
    cache = ArtifactCache(tmp_path)
    entry = cache.get_or_build("onnx", "m", KEY, write_file)
    (entry.path / "a.bin").write_bytes(b"garbage")

    def validate(directory: Path) -> None:
        if (directory / "a.bin").read_bytes() != b"x" * 10:
            raise ValueError("bad bytes")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = cache.get_or_build("onnx", "m", KEY, write_file, validate)
    assert not rebuilt.hit and (rebuilt.path / "a.bin").read_bytes() == b"x" * 10
    assert any("unusable (bad bytes)" in str(w.message) for w in caught)
    aside = entry.path.with_name(entry.path.name + ".corrupt-1")
    assert (aside / "a.bin").read_bytes() == b"garbage", "the old entry is kept, not deleted"


def test_unwritable_cache_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(Exception, match="PERFSUITE_CACHE_DIR"):
        ArtifactCache(blocker / "cache").get_or_build("onnx", "m", KEY, write_file)


def tiny_session(root: Path, cache: Path) -> PerfRun:
    (root / "pyproject.toml").write_text(TINY_CONFIG)
    env = {"PERFSUITE_CACHE_DIR": str(cache)}
    return PerfRun(load_config(root, list(BACKEND_TYPES), environ=env))


def test_second_session_reuses_cached_onnx(tmp_path):
    cache = tmp_path / "cache"
    first = tiny_session(tmp_path, cache).artifacts("tiny").onnx("fp32")
    stamp = os.stat(first.path).st_mtime_ns
    second = tiny_session(tmp_path, cache).artifacts("tiny").onnx("fp32")
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.path == first.path and os.stat(second.path).st_mtime_ns == stamp
    assert second.path.name == ONNX_FILE and second.opset == 17
    assert second.size_bytes == first.size_bytes > 0
