from __future__ import annotations

from pathlib import Path

import pytest

from perfsuite.backends import BACKEND_TYPES
from perfsuite.config.settings import CliOverrides, SuiteConfig, load_config
from perfsuite.errors import ConfigError
from perfsuite.measure.agreement import Tolerance

BACKENDS = list(BACKEND_TYPES)


def write_pyproject(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(body)
    return tmp_path


def test_defaults_without_pyproject(tmp_path):
    config = load_config(tmp_path, BACKENDS, environ={})
    assert [m.name for m in config.models] == ["mobilenet_v3_small"]
    assert config.models[0].input_shape == (1, 3, 224, 224)
    assert config.precisions == ("fp32", "fp16", "bf16")
    assert config.backends == ("torch", "torch-cudagraph", "onnxruntime", "tensorrt",
                               "tensorrt-pycuda", "trtexec", "tensorrt-rtx"), "every registered backend"
    assert config.cache_dir == tmp_path / ".perfsuite-cache"
    assert config.onnx.opset == 17 and config.onnx.exporter == "torchscript"


def test_repository_pyproject_is_valid():
    root = Path(__file__).resolve().parents[3]
    config = load_config(root, BACKENDS, environ={})
    assert config.models[0].torchvision == "mobilenet_v3_small"


def test_model_table_and_nested_settings(tmp_path):
    write_pyproject(tmp_path, """
[tool.perfsuite]
precisions = ["fp32"]
[tool.perfsuite.timing]
rounds = 7
trials = 7
[tool.perfsuite.agreement.fp16]
atol = 0.5
[[tool.perfsuite.models]]
name = "r18"
torchvision = "resnet18"
input_shape = [2, 3, 64, 64]
weights = "w/r18.pt"
""")
    config = load_config(tmp_path, BACKENDS, environ={})
    (model,) = config.models
    assert model.torchvision == "resnet18" and model.input_shape == (2, 3, 64, 64)
    assert model.weights == tmp_path / "w" / "r18.pt"
    assert config.timing.rounds == 7
    assert config.agreement.tolerances["fp16"] == Tolerance(atol=0.5, rtol=0.05)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('[tool.perfsuite]\nbogus = 1\n', "unknown key 'bogus'"),
        ('[tool.perfsuite]\nbackends = ["tensorflow"]\n', "unknown value 'tensorflow'"),
        ('[tool.perfsuite]\nprecisions = ["int8"]\n', "Valid values: fp32, fp16, bf16"),
        ('[tool.perfsuite]\ndevice = "tpu"\n', "Valid values: auto, cpu, cuda"),
        ('[tool.perfsuite.timing]\nrounds = 0\n', "rounds | expected an integer >= 1"),
        ('[tool.perfsuite.onnx]\nexporter = "tf2onnx"\n', "Valid values: torchscript, dynamo"),
        ('[[tool.perfsuite.models]]\nname = "m"\ninput_shape = [1]\n', "exactly one of"),
        ('[[tool.perfsuite.models]]\nname = "m"\ntorchvision = "resnet18"\ninput_shape = [1, -3]\n',
         "positive integers"),
        ('[[tool.perfsuite.models]]\nname = "m"\nfactory = "nocolon"\ninput_shape = [1]\n',
         "module:callable"),
        ('[[tool.perfsuite.models]]\nname = "m"\ntorchvision = "a"\ninput_shape = [1]\n'
         '[[tool.perfsuite.models]]\nname = "m"\ntorchvision = "b"\ninput_shape = [1]\n',
         "used twice"),
        ("[tool.perfsuite\n", "not valid TOML"),
        ("[tool.perfsuite.gate]\nmax_increase = nan\n",
         "max_increase | expected a finite number >= 0, got nan"),
        ("[tool.perfsuite.timing]\nwarmup_seconds = inf\n",
         "warmup_seconds | expected a finite number >= 0, got inf"),
        ("[tool.perfsuite.agreement.fp16]\natol = -inf\n", "atol | expected a finite number"),
        ("[tool.perfsuite.ab]\nworker_timeout_s = 0\n",
         "worker_timeout_s | expected a finite number > 0, got 0"),
        ("[tool.perfsuite.timing]\npasses = 0\n", "passes | expected an integer >= 1, got 0"),
        ("[tool.perfsuite.timing]\nrounds = 10\npasses = 20\n",
         "passes | 20 passes need at least as many rounds (got rounds = 10)"),
    ],
)
def test_bad_settings_name_the_problem(tmp_path, body, needle):
    write_pyproject(tmp_path, body)
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")) as raised:
        load_config(tmp_path, BACKENDS, environ={})
    assert "pyproject.toml" in str(raised.value)


def test_cli_overrides_win_and_are_validated(tmp_path):
    config = load_config(tmp_path, BACKENDS, CliOverrides(precisions="fp16, fp32", device="cpu",
                                                          rounds=3), environ={})
    assert config.precisions == ("fp16", "fp32")
    assert config.device == "cpu" and config.timing.rounds == 3 and config.timing.trials == 3
    with pytest.raises(ConfigError, match=r"--perf-models \| unknown value 'resnet'.*"
                                          r"mobilenet_v3_small"):
        load_config(tmp_path, BACKENDS, CliOverrides(models="resnet"), environ={})
    with pytest.raises(ConfigError, match="--perf-backends .*tensorflow.*torch, torch-cudagraph, onnxruntime, tensorrt"):
        load_config(tmp_path, BACKENDS, CliOverrides(backends="tensorflow"), environ={})


def test_config_file_from_environment(tmp_path):
    named = tmp_path / "suite.toml"
    named.write_text('precisions = ["bf16"]\n')
    write_pyproject(tmp_path, '[tool.perfsuite]\nprecisions = ["fp16"]\n')
    env = {"PERFSUITE_CONFIG": str(named), "PERFSUITE_CACHE_DIR": str(tmp_path / "c")}
    config = load_config(tmp_path, BACKENDS, environ=env)
    assert config.precisions == ("bf16",) and config.cache_dir == tmp_path / "c"
    with pytest.raises(ConfigError, match="PERFSUITE_CONFIG='missing.toml' | file not found"):
        load_config(tmp_path, BACKENDS, environ={"PERFSUITE_CONFIG": "missing.toml"})


def test_suite_config_is_immutable():
    with pytest.raises(AttributeError):
        SuiteConfig().device = "cuda"  # type: ignore[misc]


def test_a_config_file_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "pyproject.toml").write_bytes(b'[tool.perfsuite]\ndevice = "cpu" # \xff\xfe\n')
    with pytest.raises(ConfigError, match="pyproject.toml | is not UTF-8 text") as raised:
        load_config(tmp_path, BACKENDS, environ={})
    assert "Remedy: save it as UTF-8" in str(raised.value)
