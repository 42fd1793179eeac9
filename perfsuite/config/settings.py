"""SuiteConfig: read, validate and merge the suite's settings.

Precedence: command line (--perf-*) > the file named by PERFSUITE_CONFIG > pyproject.toml's
[tool.perfsuite] > defaults. Every error names the setting, where it came from, what was expected
and the valid values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.config.model_table import MODEL_KEYS, parse_models
from perfsuite.config.preflight_policy import ON_FAILURE, PREFLIGHT_KEYS, PreflightConfig, parse_preflight
from perfsuite.config.validate import (
    check_bool,
    check_choice,
    check_choices,
    check_int,
    check_keys,
    check_number,
    check_program,
)
from perfsuite.errors import ConfigError
from perfsuite.measure.agreement import Tolerance
from perfsuite.models.torch_model import ModelSpec

PRECISIONS = ("fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
EXPORTERS = ("torchscript", "dynamo")
TOO_NOISY = ("advisory", "fail")
CONFIG_ENV = "PERFSUITE_CONFIG"
CACHE_ENV = "PERFSUITE_CACHE_DIR"
DEFAULT_MODEL = ModelSpec(
    name="mobilenet_v3_small", torchvision="mobilenet_v3_small", input_shape=(1, 3, 224, 224)
)
# Elementwise tolerances against torch fp32, chosen from measured drift (docs/benchmarks.md)
# with about 3x headroom; logits have a standard deviation of about 3.
DEFAULT_TOLERANCES = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-3),
    "fp16": Tolerance(atol=0.2, rtol=0.05),
    "bf16": Tolerance(atol=1.5, rtol=0.25),
}
DEFAULT_MAX_REL_L2 = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 6e-2}
# Per drawn input in the property test: out-of-distribution inputs (constant or gradient images)
# push logits to 10x their usual spread; measured worst cases were fp32 3.6e-5, fp16 2.0e-2,
# bf16 4.1e-2 (docs/benchmarks.md).
DEFAULT_PROPERTY_REL_L2 = {"fp32": 1e-4, "fp16": 5e-2, "bf16": 1.5e-1}


@dataclass(frozen=True)
class TimingConfig:
    warmup_seconds: float = 0.2
    warmup_min_runs: int = 10
    rounds: int = 100
    trials: int = 5
    energy_trial_seconds: float = 1.0  # per trial of the energy window; 0 turns energy off


@dataclass(frozen=True)
class AbConfig:
    """--perf-ab: how the base and the current side alternate."""

    pairs: int = 150  # ABBA pairs of trials per latency benchmark
    rounds_per_trial: int = 1  # timed calls per side per trial
    gpu_rounds_per_trial: int = 5  # GPU-compute trials: back-to-back calls, their median
    worker_timeout_s: float = 900.0  # a side's worker silent longer than this is stopped


@dataclass(frozen=True)
class OnnxConfig:
    exporter: str = "torchscript"
    opset: int = 17


@dataclass(frozen=True)
class AgreementConfig:
    num_inputs: int = 8
    seed: int = 0
    property_examples: int = 5
    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    max_rel_l2: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_REL_L2))
    property_rel_l2: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_PROPERTY_REL_L2)
    )


@dataclass(frozen=True)
class TensorRTConfig:
    workspace_mb: int = 1024
    cuda_graph: bool = False
    host_buffers: bool = False  # only for TensorRT emulators: real TensorRT needs CUDA buffers
    trtexec: str = ""  # the trtexec backend's program ("": PATH, then /usr/src/tensorrt/bin)


@dataclass(frozen=True)
class GateConfig:
    policy: GatePolicy = GatePolicy()
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    too_noisy: str = "advisory"  # or "fail": benchmarks too noisy to gate fail the run


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
# Upper bounds (README, Configuration, limits): a typo of a few zeros is refused with the time it
# would take (CALL_S: a 10 ms call), instead of running for days and filling memory.
CALL_S = 0.01
MAX_ROUNDS = 100_000
MAX_TRIALS = 1000
MAX_PAIRS = 100_000
MAX_SECONDS = 3600.0
_TIMING_KEYS = {"warmup_seconds", "warmup_min_runs", "rounds", "trials", "energy_trial_seconds"}
_AB_KEYS = {"pairs", "rounds_per_trial", "gpu_rounds_per_trial", "worker_timeout_s"}
_TENSORRT_KEYS = {"workspace_mb", "cuda_graph", "host_buffers", "trtexec"}
_TORCH_KEYS = {"python"}
_ONNX_KEYS = {"exporter", "opset"}
_AGREEMENT_KEYS = {"num_inputs", "seed", "property_examples", *PRECISIONS}
_PRECISION_KEYS = {"atol", "rtol", "max_rel_l2", "property_rel_l2"}


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
        timing=_timing(table.get("timing", {}), f"{where}timing."),
        ab=_ab(table.get("ab", {}), f"{where}ab."),
        onnx=_onnx(table.get("onnx", {}), f"{where}onnx."),
        agreement=_agreement(table.get("agreement", {}), f"{where}agreement."),
        gate=_gate(table.get("gate", {}), f"{where}gate."),
        tensorrt=_tensorrt(table.get("tensorrt", {}), f"{where}tensorrt."),
        torch_python=_torch_python(table.get("torch", {}), f"{where}torch."),
        preflight=parse_preflight(table.get("preflight", {}), f"{where}preflight."),
        source=where.strip(),
    )


def _timing(table: Any, where: str) -> TimingConfig:
    check_keys(table, _TIMING_KEYS, where)
    base = TimingConfig()
    timing = TimingConfig(
        warmup_seconds=check_number(table.get("warmup_seconds", base.warmup_seconds),
                                    f"{where}warmup_seconds", maximum=MAX_SECONDS),
        warmup_min_runs=check_int(table.get("warmup_min_runs", base.warmup_min_runs),
                                  f"{where}warmup_min_runs", 0, MAX_ROUNDS, CALL_S),
        rounds=check_int(table.get("rounds", base.rounds), f"{where}rounds", 1, MAX_ROUNDS,
                         CALL_S),
        trials=check_int(table.get("trials", base.trials), f"{where}trials", 1, MAX_TRIALS),
        energy_trial_seconds=check_number(table.get("energy_trial_seconds",
                                                    base.energy_trial_seconds),
                                          f"{where}energy_trial_seconds", maximum=MAX_SECONDS),
    )
    if timing.trials > timing.rounds:
        raise ConfigError(f"{where}trials | {timing.trials} trials need at least as many rounds "
                          f"(got rounds = {timing.rounds}).")
    return timing


def _ab(table: Any, where: str) -> AbConfig:
    check_keys(table, _AB_KEYS, where)
    base = AbConfig()
    return AbConfig(
        pairs=check_int(table.get("pairs", base.pairs), f"{where}pairs", 20, MAX_PAIRS,
                        4 * CALL_S),
        rounds_per_trial=check_int(table.get("rounds_per_trial", base.rounds_per_trial),
                                   f"{where}rounds_per_trial", 1, MAX_TRIALS),
        gpu_rounds_per_trial=check_int(table.get("gpu_rounds_per_trial",
                                                 base.gpu_rounds_per_trial),
                                       f"{where}gpu_rounds_per_trial", 1, MAX_TRIALS),
        worker_timeout_s=check_number(table.get("worker_timeout_s", base.worker_timeout_s),
                                      f"{where}worker_timeout_s", above_zero=True,
                                      maximum=86400.0),
    )


def _tensorrt(table: Any, where: str) -> TensorRTConfig:
    check_keys(table, _TENSORRT_KEYS, where)
    return TensorRTConfig(
        workspace_mb=check_int(table.get("workspace_mb", 1024), f"{where}workspace_mb", 1),
        cuda_graph=check_bool(table.get("cuda_graph", False), f"{where}cuda_graph"),
        host_buffers=check_bool(table.get("host_buffers", False), f"{where}host_buffers"),
        trtexec=check_program(table.get("trtexec", ""), f"{where}trtexec", remedy=(
            "give the full path of trtexec (JetPack: /usr/src/tensorrt/bin/trtexec) or remove "
            "the key to search PATH.")),
    )


def _torch_python(table: Any, where: str) -> str:
    """The interpreter the torch backend runs its sessions in ("": this one)."""
    check_keys(table, _TORCH_KEYS, where)
    return check_program(table.get("python", ""), f"{where}python", on_path=True, remedy=(
        "give the interpreter that has the torch to measure (JetPack 4.6: /usr/bin/python3.6), "
        "or remove the key to run torch in this process."))


def _onnx(table: Any, where: str) -> OnnxConfig:
    check_keys(table, _ONNX_KEYS, where)
    return OnnxConfig(
        exporter=check_choice(table.get("exporter", "torchscript"), EXPORTERS, f"{where}exporter"),
        opset=check_int(table.get("opset", 17), f"{where}opset", 7),
    )


def _agreement(table: Any, where: str) -> AgreementConfig:
    check_keys(table, _AGREEMENT_KEYS, where)
    tolerances = dict(DEFAULT_TOLERANCES)
    max_rel_l2 = dict(DEFAULT_MAX_REL_L2)
    property_rel_l2 = dict(DEFAULT_PROPERTY_REL_L2)
    for precision in PRECISIONS:
        sub = table.get(precision, {})
        check_keys(sub, _PRECISION_KEYS, f"{where}{precision}.")
        base = tolerances[precision]
        tolerances[precision] = Tolerance(
            atol=check_number(sub.get("atol", base.atol), f"{where}{precision}.atol"),
            rtol=check_number(sub.get("rtol", base.rtol), f"{where}{precision}.rtol"),
        )
        max_rel_l2[precision] = check_number(sub.get("max_rel_l2", max_rel_l2[precision]),
                                       f"{where}{precision}.max_rel_l2")
        property_rel_l2[precision] = check_number(
            sub.get("property_rel_l2", property_rel_l2[precision]),
            f"{where}{precision}.property_rel_l2",
        )
    return AgreementConfig(
        num_inputs=check_int(table.get("num_inputs", 8), f"{where}num_inputs", 1),
        seed=check_int(table.get("seed", 0), f"{where}seed", 0),
        property_examples=check_int(table.get("property_examples", 5),
                               f"{where}property_examples", 1),
        tolerances=tolerances,
        max_rel_l2=max_rel_l2,
        property_rel_l2=property_rel_l2,
    )


_POLICY_KEYS = set(GatePolicy.__dataclass_fields__)
_GATE_KEYS = _POLICY_KEYS | {"overrides", "too_noisy"}


def configuration_keys() -> dict[str, set[str]]:
    """Every key the configuration accepts, by table (the README's reference lists each)."""
    tables = {
        "tool.perfsuite": _TOP_KEYS,
        "tool.perfsuite.models": set(MODEL_KEYS),
        "tool.perfsuite.timing": _TIMING_KEYS,
        "tool.perfsuite.ab": _AB_KEYS,
        "tool.perfsuite.onnx": _ONNX_KEYS,
        "tool.perfsuite.agreement": _AGREEMENT_KEYS,
        "tool.perfsuite.gate": _GATE_KEYS,
        "tool.perfsuite.tensorrt": _TENSORRT_KEYS,
        "tool.perfsuite.torch": _TORCH_KEYS,
        "tool.perfsuite.preflight": PREFLIGHT_KEYS,
    }
    tables.update({f"tool.perfsuite.agreement.{p}": _PRECISION_KEYS for p in PRECISIONS})
    return {table: set(keys) for table, keys in tables.items()}


def policy_changes(table: Any, where: str) -> dict[str, float]:
    """Validated GatePolicy fields from a table (config override or perf_gate marker)."""
    check_keys(table, _POLICY_KEYS, where)
    return {key: check_number(value, f"{where}{key}") for key, value in table.items()}


def _gate(table: Any, where: str) -> GateConfig:
    check_keys(table, _GATE_KEYS, where)
    policy_table = {k: v for k, v in table.items() if k in _POLICY_KEYS}
    overrides = table.get("overrides", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}overrides | expected a table of case id -> limits.")
    return GateConfig(
        policy=GatePolicy(**policy_changes(policy_table, where)),
        overrides={name: policy_changes(sub, f"{where}overrides.{name}.")
                   for name, sub in overrides.items()},
        too_noisy=check_choice(table.get("too_noisy", "advisory"), TOO_NOISY, f"{where}too_noisy"),
    )


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
