from __future__ import annotations

import sys

import pytest
import torch
from tiny_models import tiny_batch

from perfsuite.config.settings import load_config
from perfsuite.errors import ConfigError, ModelError
from perfsuite.models.torch_model import LOGIT_STD, ModelSpec, build_model, weights_digest

TINY = ModelSpec(name="tiny", factory="tiny_models:tiny_cnn", input_shape=(1, 3, 16, 16))


def test_same_spec_same_weights():
    assert weights_digest(build_model(TINY)) == weights_digest(build_model(TINY))


def test_seed_changes_weights():
    other = ModelSpec(**{**TINY.__dict__, "seed": 1})
    assert weights_digest(build_model(TINY)) != weights_digest(build_model(other))


def test_synthetic_weights_give_realistic_logits():
    model = build_model(TINY)
    with torch.no_grad():
        logits = model(tiny_batch(32) * 4.7 - 2.1)
    assert 0.5 * LOGIT_STD < float(logits.std()) < 2 * LOGIT_STD
    # fp16 keeps the logits: nothing underflows to zero as with default initialisation
    with torch.no_grad():
        half = build_model(TINY).half()(tiny_batch(4).half()).float()
    assert float(half.abs().max()) > 0.1


def test_default_mobilenet_logits_are_not_vanishing():
    spec = ModelSpec(name="m", torchvision="mobilenet_v3_small", input_shape=(1, 3, 224, 224))
    model = build_model(spec)
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(3)))
    assert float(logits.std()) > 0.5, "a random-init torchvision model gives logits near 1e-10"


def test_weights_file_round_trip(tmp_path):
    source = build_model(TINY)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    spec = ModelSpec(**{**TINY.__dict__, "weights": path, "seed": 5})
    assert weights_digest(build_model(spec)) == weights_digest(source)


def test_missing_weights_file_names_path(tmp_path):
    spec = ModelSpec(**{**TINY.__dict__, "weights": tmp_path / "nope.pt"})
    with pytest.raises(ModelError, match=r"weights file .*nope.pt' does not exist"):
        build_model(spec)


def test_mismatched_weights_list_keys(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    spec = ModelSpec(**{**TINY.__dict__, "weights": path})
    with pytest.raises(ModelError, match=r"missing keys \[0.weight.*unexpected keys \[fc.weight\]"):
        build_model(spec)


def test_pickled_module_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(build_model(TINY), path)  # a whole pickled module, not a state_dict
    spec = ModelSpec(**{**TINY.__dict__, "weights": path})
    with pytest.raises(ModelError, match="cannot be read as a state_dict"):
        build_model(spec)


@pytest.mark.parametrize(
    ("factory", "needle"),
    [
        ("no_such_module:f", "cannot be resolved"),
        ("tiny_models:missing", "cannot be resolved"),
        ("tiny_models:not_a_module", "expected a torch.nn.Module"),
    ],
)
def test_bad_factories(factory, needle):
    with pytest.raises(ModelError, match=needle):
        build_model(ModelSpec(name="bad", factory=factory, input_shape=(1, 3, 16, 16)))


def test_factory_imports_from_its_search_path_and_leaves_sys_path(tmp_path):
    (tmp_path / "user_models_search.py").write_text(
        "from torch import nn\ndef build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(48, 4))\n")
    before = list(sys.path)
    spec = ModelSpec(name="mine", factory="user_models_search:build", input_shape=(1, 3, 4, 4),
                     search_path=(tmp_path,))
    assert build_model(spec)(torch.zeros(1, 3, 4, 4)).shape == (1, 4)
    assert sys.path == before
    missing = ModelSpec(name="gone", factory="no_such_user_module:build", input_shape=(1, 3, 4, 4),
                        search_path=(tmp_path,))
    with pytest.raises(ModelError, match=f"Remedy: put the module in {tmp_path}"):
        build_model(missing)


class _TextClassifier(torch.nn.Module):
    """Token ids in, logits out: the kind of model perfsuite refuses for now."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(100, 16)
        self.head = torch.nn.Linear(16, 4)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(1))


class _TwoHeads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(8, 2), torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.a(x), self.b(x)


def text_classifier():
    return _TextClassifier()


def two_heads():
    return _TwoHeads()


@pytest.mark.parametrize(("factory", "shape", "found"), [
    ("text_classifier", (1, 12), "a forward pass on one float32 input of shape (1, 12) failed: "
                                 "RuntimeError: Expected tensor for argument #1 'indices'"),
    ("two_heads", (1, 8), "forward returns tuple of 2"),
])
def test_models_beyond_one_float_tensor_in_and_out_are_refused(factory, shape, found):
    spec = ModelSpec(name="m", input_shape=shape, factory=f"{__name__}:{factory}")
    with pytest.raises(ModelError) as refused:
        build_model(spec)
    message = str(refused.value)
    assert found in message and "integer inputs (token ids) are not supported yet" in message
    assert "Remedy" in message


def test_several_input_shapes_are_refused_at_configuration(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.perfsuite]\n[[tool.perfsuite.models]]\nname = "bert"\nfactory = "m:f"\n'
        "input_shape = [[1, 128], [1, 128]]\n")
    with pytest.raises(ConfigError, match=r"'input_shape' lists 2 inputs; perfsuite runs models "
                                          r"with one float32 input tensor"):
        load_config(tmp_path, ["torch"], environ={})


def test_a_factory_module_with_a_syntax_error_is_named(tmp_path):
    (tmp_path / "typo_models.py").write_text("def build(:\n    pass\n")
    spec = ModelSpec(name="m", input_shape=(1, 3, 8, 8), factory="typo_models:build",
                     search_path=(tmp_path,))
    with pytest.raises(ModelError, match="factory 'typo_models:build' cannot be resolved: "
                                         "invalid syntax"):
        build_model(spec)


def test_weights_of_the_wrong_shape_are_named(tmp_path):
    from tiny_models import tiny_cnn

    state = tiny_cnn().state_dict()
    state["0.weight"] = torch.zeros(4, 3, 3, 3)  # the first conv has 8 filters
    torch.save(state, tmp_path / "w.pt")
    spec = ModelSpec(name="m", input_shape=(1, 3, 16, 16), factory="tiny_models:tiny_cnn",
                     weights=tmp_path / "w.pt")
    with pytest.raises(ModelError, match="does not fit the model: .*size mismatch"):
        build_model(spec)


def test_a_huge_input_shape_is_refused_at_configuration(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.perfsuite]\n[[tool.perfsuite.models]]\nname = "m"\ntorchvision = "resnet18"\n'
        "input_shape = [65536, 3, 4096, 4096]\n")
    with pytest.raises(ConfigError, match="holds 3,298,534,883,328 values"):
        load_config(tmp_path, ["torch"], environ={})


def test_the_onnx_cache_key_follows_the_factorys_code_not_its_tests(tmp_path, monkeypatch):
    """A change to a forward() in a helper module (weights unchanged) must miss the ONNX cache,
    else ONNX Runtime and TensorRT would keep running the old code; a test file must not."""
    (tmp_path / "src/blocks").mkdir(parents=True)
    (tmp_path / "src/blocks/__init__.py").write_text("SCALE = 1.0\n")
    (tmp_path / "tiny_factory.py").write_text(
        "import torch\nimport blocks\n\nclass Scaled(torch.nn.Module):\n"
        "    def forward(self, x):\n        return x * blocks.SCALE\n\n"
        "def build():\n    return torch.nn.Sequential(torch.nn.Linear(4, 2), Scaled())\n")
    (tmp_path / "test_something.py").write_text("X = 1\n")
    from perfsuite.models.torch_model import code_digest, import_folders

    spec = ModelSpec(name="t", input_shape=(1, 4), factory="tiny_factory:build",
                     search_path=import_folders((tmp_path,)))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("tiny_factory", "blocks", "test_something"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import test_something  # noqa: F401  (loaded, as pytest loads test modules)

    build_model(spec)
    before = code_digest(spec)
    (tmp_path / "test_something.py").write_text("X = 2\n")
    assert code_digest(spec) == before, "a test file is not the model's code"
    (tmp_path / "src/blocks/__init__.py").write_text("SCALE = 2.0\n")
    assert code_digest(spec) != before, "the library under src/ is the model's code"
    assert code_digest(ModelSpec(name="m", input_shape=(1, 3, 8, 8),
                                 torchvision="mobilenet_v3_small")).startswith("torchvision ")
