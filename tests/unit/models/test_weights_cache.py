"""Realistic weights from the artifact cache: the same tensors as calibrating, once per key."""

from __future__ import annotations

from functools import partial

import pytest

from perfsuite.errors import CacheError
from perfsuite.models import weights_cache
from perfsuite.models.artifacts import ArtifactCache
from perfsuite.models.torch_model import ModelSpec, build_model
from perfsuite.models.weights_cache import WEIGHTS_FILE, cached_realistic_weights

torch = pytest.importorskip("torch")

TINY = ModelSpec(name="tiny", factory="tiny_models:tiny_cnn", input_shape=(1, 3, 16, 16))


def same_weights(a, b) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def entries(cache: ArtifactCache) -> list:
    return sorted(p for p in (cache.root / "weights").iterdir() if p.is_dir())


def test_a_cached_model_has_the_calibrated_weights_bit_for_bit(tmp_path, monkeypatch):
    cache = ArtifactCache(tmp_path)
    calibrated = build_model(TINY)
    first = build_model(TINY, partial(cached_realistic_weights, cache=cache))
    calls: list = []
    monkeypatch.setattr(weights_cache, "make_weights_realistic",
                        lambda *args: calls.append(args))
    second = build_model(TINY, partial(cached_realistic_weights, cache=cache))
    assert same_weights(first, calibrated) and same_weights(second, calibrated)
    assert calls == [], "the second build read the cache instead of calibrating"
    assert len(entries(cache)) == 1
    other_seed = ModelSpec(**{**TINY.__dict__, "seed": 3})
    monkeypatch.undo()
    build_model(other_seed, partial(cached_realistic_weights, cache=cache))
    assert len(entries(cache)) == 2, "another seed is another entry"


def test_an_unreadable_entry_is_set_aside_and_rebuilt(tmp_path):
    cache = ArtifactCache(tmp_path)
    build_model(TINY, partial(cached_realistic_weights, cache=cache))
    (entry,) = entries(cache)
    (entry / WEIGHTS_FILE).write_bytes(b"not an archive")
    with pytest.warns(UserWarning, match="is unusable"):
        rebuilt = build_model(TINY, partial(cached_realistic_weights, cache=cache))
    assert same_weights(rebuilt, build_model(TINY))
    assert list(entry.parent.glob(f"{entry.name}.corrupt-*"))


def test_a_read_only_cache_without_the_entry_still_builds_the_model(tmp_path, monkeypatch):
    cache = ArtifactCache(tmp_path)

    def read_only(*args, **kwargs):  # what get_or_build raises there
        raise CacheError(f"artifact cache {tmp_path} | cannot be written (Read-only file system)")

    monkeypatch.setattr(cache, "get_or_build", read_only)
    model = build_model(TINY, partial(cached_realistic_weights, cache=cache))
    assert same_weights(model, build_model(TINY))


def test_a_model_whose_loader_needs_its_version_is_read_from_the_cache(tmp_path):
    pytest.importorskip("torchvision")
    mnasnet = ModelSpec(name="mnasnet", torchvision="mnasnet0_5", input_shape=(1, 3, 32, 32))
    cache = ArtifactCache(tmp_path)
    first = build_model(mnasnet, partial(cached_realistic_weights, cache=cache))
    second = build_model(mnasnet, partial(cached_realistic_weights, cache=cache))  # a cache hit
    assert len(entries(cache)) == 1 and same_weights(first, second)
