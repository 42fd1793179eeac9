"""SuiteConfig: read, validate and merge the suite's settings.

Precedence: command line (--perf-*) > the file named by PERFSUITE_CONFIG > pyproject.toml's
[tool.perfsuite] > defaults. Every error names the setting, where it came from, what was expected
and the valid values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from perfsuite.config.model_table import MODEL_KEYS, parse_models
from perfsuite.config.parts import (
    AB_KEYS,
    AGREEMENT_KEYS,
    CALL_S,
    DEVICES,
    GATE_KEYS,
    MAX_ROUNDS,
    ONNX_KEYS,
    PRECISION_KEYS,
    PRECISIONS,
    TENSORRT_KEYS,
    TIMING_KEYS,
    TORCH_KEYS,
    AbConfig,
    AgreementConfig,
    GateConfig,
    OnnxConfig,
    TensorRTConfig,
    TimingConfig,
    parse_ab,
    parse_agreement,
    parse_gate,
    parse_onnx,
    parse_tensorrt,
    parse_timing,
    parse_torch_python,
)
from perfsuite.config.preflight_policy import ON_FAILURE, PREFLIGHT_KEYS, PreflightConfig, parse_preflight
from perfsuite.config.validate import (
    check_bool,
    check_choice,
    check_choices,
    check_int,
    check_keys,
)
from perfsuite.errors import ConfigError
from perfsuite.models.torch_model import ModelSpec

CONFIG_ENV = "PERFSUITE_CONFIG"
CACHE_ENV = "PERFSUITE_CACHE_DIR"
DEFAULT_MODEL = ModelSpec(
    name="mobilenet_v3_small", torchvision="mobilenet_v3_small", input_shape=(1, 3, 224, 224)
)
@dataclass(frozen=True)
class SuiteConfig:
    models: tuple[ModelSpec, ...] = (DEFAULT_MODEL,)
    backends: tuple[str, ...] = ()  # load_config: every registered backend (perfsuite.backends)
    precisions: tuple[str, ...] = PRECISIONS
    device: str = "auto"
    cpu_threads: int = 0  # 0: every core this process may use
    tf32: bool = False
    channels_last: bool = False
    cache_dir: Path = Path(".perfsuite-cache")
    timing: TimingConfig = TimingConfig()
    ab: AbConfig = AbConfig()
    onnx: OnnxConfig = OnnxConfig()
    agreement: AgreementConfig = AgreementConfig()
    gate: GateConfig = GateConfig()
    tensorrt: TensorRTConfig = TensorRTConfig()
    torch_python: str = ""  # [tool.perfsuite.torch] python: the torch backend's worker interpreter
    preflight: PreflightConfig = PreflightConfig()
    source: str = "defaults"
    configured: bool = False  # a [tool.perfsuite] table or PERFSUITE_CONFIG file was found

    def model(self, name: str) -> ModelSpec:
        for spec in self.models:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class CliOverrides:
    models: str | None = None
    backends: str | None = None
    precisions: str | None = None
    device: str | None = None
    rounds: int | None = None
    preflight: str | None = None  # --perf-preflight: the failure action


def load_config(
    rootdir: Path,
    known_backends: Sequence[str],
    cli: CliOverrides = CliOverrides(),
    environ: Mapping[str, str] = os.environ,
) -> SuiteConfig:
    """The suite's configuration for a run rooted at `rootdir`."""
    table, where, folder = _read_table(rootdir, environ)
    config = _from_table(table, where, rootdir, known_backends, folder)
    cache = environ.get(CACHE_ENV)
    config = replace(
        # a relative PERFSUITE_CACHE_DIR starts at the rootdir, as PERFSUITE_CONFIG does
        config, cache_dir=rootdir / Path(cache).expanduser() if cache else
        rootdir / ".perfsuite-cache",
        configured=table is not None,
    )
    return _apply_cli(config, cli, known_backends)


def _read_table(rootdir: Path, environ: Mapping[str, str]) -> tuple[dict[str, Any] | None, str, Path]:
    """The perfsuite table (None when the repository has none), where it came from (for
    messages) and the folder it lives in."""
    named = environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_absolute():
            path = rootdir / path
        if not path.is_file():
            raise ConfigError(
                f"{CONFIG_ENV}={named!r} | file not found ({path}).\n"
                f"Remedy: point {CONFIG_ENV} at a TOML file or unset it to use pyproject.toml."
            )
        document = _parse_toml(path)
        table = _tool_table(document, path, default=document)
        return table, f"{path} ", path.parent
    path = rootdir / "pyproject.toml"
    if not path.is_file():
        return None, "defaults ", rootdir
    table = _tool_table(_parse_toml(path), path, default=None)
    return table, f"{path.name} [tool.perfsuite] ", rootdir


def _tool_table(document: dict[str, Any], path: Path, default: Any) -> Any:
    """[tool.perfsuite] of `document` (`default` where absent); `tool` and `tool.perfsuite`
    must be tables."""
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path} | `tool` is {type(tool).__name__} {tool!r}, not a table.\n"
                          "Remedy: write tables under [tool.NAME], e.g. [tool.perfsuite].")
    table = tool.get("perfsuite", default)
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path} | `tool.perfsuite` is {type(table).__name__}, not a table."
                          "\nRemedy: write it as a [tool.perfsuite] table.")
    return table


def _parse_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):  # imported here: an A/B worker's interpreter may lack tomli
        import tomllib
    else:  # pragma: no cover - Python 3.10 (JetPack 6)
        import tomli as tomllib
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} | is not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path} | nests arrays or tables too deeply to read.\n"
                          "Remedy: flatten it (perfsuite's keys nest two levels).") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} | is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "TOML files are UTF-8.\nRemedy: save it as UTF-8.") from exc
    except OSError as exc:
        raise ConfigError(f"{path} | cannot be read: {exc.strerror}.") from exc


_TOP_KEYS = {
    "models", "backends", "precisions", "device", "cpu_threads", "tf32", "channels_last",
    "timing", "ab", "onnx", "agreement", "gate", "tensorrt", "preflight", "torch",
}
def _from_table(
    table: Mapping[str, Any] | None, where: str, rootdir: Path, known_backends: Sequence[str],
    folder: Path | None = None,
) -> SuiteConfig:
    table = {} if table is None else table
    check_keys(table, _TOP_KEYS, where)
    base = SuiteConfig(backends=tuple(known_backends))
    models = table.get("models")
    return SuiteConfig(
        models=parse_models(models, where, rootdir, folder or rootdir) if models is not None
        else base.models,
        backends=check_choices(table.get("backends", base.backends), known_backends, f"{where}backends"),
        precisions=check_choices(table.get("precisions", base.precisions), PRECISIONS,
                            f"{where}precisions"),
        device=check_choice(table.get("device", base.device), DEVICES, f"{where}device"),
        cpu_threads=check_int(table.get("cpu_threads", base.cpu_threads), f"{where}cpu_threads", 0),
        tf32=check_bool(table.get("tf32", base.tf32), f"{where}tf32"),
        channels_last=check_bool(table.get("channels_last", base.channels_last), f"{where}channels_last"),
        timing=parse_timing(table.get("timing", {}), f"{where}timing."),
        ab=parse_ab(table.get("ab", {}), f"{where}ab."),
        onnx=parse_onnx(table.get("onnx", {}), f"{where}onnx."),
        agreement=parse_agreement(table.get("agreement", {}), f"{where}agreement."),
        gate=parse_gate(table.get("gate", {}), f"{where}gate."),
        tensorrt=parse_tensorrt(table.get("tensorrt", {}), f"{where}tensorrt."),
        torch_python=parse_torch_python(table.get("torch", {}), f"{where}torch."),
        preflight=parse_preflight(table.get("preflight", {}), f"{where}preflight."),
        source=where.strip(),
    )


def configuration_keys() -> dict[str, set[str]]:
    """Every key the configuration accepts, by table (the README's reference lists each)."""
    tables = {
        "tool.perfsuite": _TOP_KEYS,
        "tool.perfsuite.models": set(MODEL_KEYS),
        "tool.perfsuite.timing": TIMING_KEYS,
        "tool.perfsuite.ab": AB_KEYS,
        "tool.perfsuite.onnx": ONNX_KEYS,
        "tool.perfsuite.agreement": AGREEMENT_KEYS,
        "tool.perfsuite.gate": GATE_KEYS,
        "tool.perfsuite.tensorrt": TENSORRT_KEYS,
        "tool.perfsuite.torch": TORCH_KEYS,
        "tool.perfsuite.preflight": PREFLIGHT_KEYS,
    }
    tables.update({f"tool.perfsuite.agreement.{p}": PRECISION_KEYS for p in PRECISIONS})
    return {table: set(keys) for table, keys in tables.items()}


def _apply_cli(config: SuiteConfig, cli: CliOverrides, known_backends: Sequence[str]) -> SuiteConfig:
    changes: dict[str, Any] = {}
    if cli.models is not None:
        valid = [spec.name for spec in config.models]
        names = check_choices(_split(cli.models), valid, "--perf-models", f" (configured in {config.source})")
        changes["models"] = tuple(config.model(name) for name in names)
    if cli.backends is not None:
        changes["backends"] = check_choices(_split(cli.backends), known_backends, "--perf-backends")
    if cli.precisions is not None:
        changes["precisions"] = check_choices(_split(cli.precisions), PRECISIONS, "--perf-precisions")
    if cli.device is not None:
        changes["device"] = check_choice(cli.device, DEVICES, "--perf-device")
    if cli.rounds is not None:
        rounds = check_int(cli.rounds, "--perf-rounds", 1, MAX_ROUNDS, CALL_S)
        changes["timing"] = replace(config.timing, rounds=rounds,
                                    trials=min(config.timing.trials, rounds))
    if cli.preflight is not None:
        changes["preflight"] = replace(config.preflight, on_failure=check_choice(
            cli.preflight, ON_FAILURE, "--perf-preflight"))
    return replace(config, **changes)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
