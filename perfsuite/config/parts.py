"""The parts of SuiteConfig: one frozen dataclass per `[tool.perfsuite.*]` table (timing, ab,
onnx, agreement, tensorrt, gate), its defaults and limits, and the parser that validates it
(perfsuite.config.settings puts them together)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.config.validate import (
    check_bool,
    check_choice,
    check_int,
    check_keys,
    check_number,
    check_program,
)
from perfsuite.errors import ConfigError
from perfsuite.measure.agreement import Tolerance

PRECISIONS = ("fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
EXPORTERS = ("torchscript", "dynamo")
TOO_NOISY = ("advisory", "fail")
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
    # > 1: every latency benchmark's rounds spread over the run in this many passes over all
    # of them (perfsuite.measure.timing.interleaved_samples); 1: each benchmark's in one go
    passes: int = 1


@dataclass(frozen=True)
class AbConfig:
    """--perf-ab: how the base and the current side alternate."""

    pairs: int = 300  # ABBA pairs of trials per latency benchmark, at most
    min_pairs: int = 20  # the first look at whether the answer is clear (= pairs: no early stop)
    block_pairs: int = 10  # pairs between looks
    # per statistic: a look after this many seconds of pairs stops; 0: 2 s on a CPU (where
    # what keeps a comparison open is mostly between the two processes, which more pairs
    # cannot see), 6 s on CUDA (where more pairs narrow it)
    max_seconds: float = 0.0

    def pairs_seconds(self, device: str) -> float:
        """The time bound of one statistic's pairs on `device`."""
        return self.max_seconds or (6.0 if device == "cuda" else 2.0)
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


# Upper bounds (README, Configuration, limits): a typo of a few zeros is refused with the time it
# would take (CALL_S: a 10 ms call), instead of running for days and filling memory.
CALL_S = 0.01
MAX_ROUNDS = 100_000
MAX_TRIALS = 1000
MAX_PAIRS = 100_000
MAX_SECONDS = 3600.0
TIMING_KEYS = {"warmup_seconds", "warmup_min_runs", "rounds", "trials", "energy_trial_seconds",
               "passes"}
AB_KEYS = {"pairs", "min_pairs", "block_pairs", "max_seconds", "rounds_per_trial", "gpu_rounds_per_trial",
           "worker_timeout_s"}
TENSORRT_KEYS = {"workspace_mb", "cuda_graph", "host_buffers", "trtexec"}
TORCH_KEYS = {"python"}
ONNX_KEYS = {"exporter", "opset"}
AGREEMENT_KEYS = {"num_inputs", "seed", "property_examples", *PRECISIONS}
PRECISION_KEYS = {"atol", "rtol", "max_rel_l2", "property_rel_l2"}


def parse_timing(table: Any, where: str) -> TimingConfig:
    check_keys(table, TIMING_KEYS, where)
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
        passes=check_int(table.get("passes", base.passes), f"{where}passes", 1, MAX_ROUNDS),
    )
    if timing.passes > timing.rounds:
        raise ConfigError(f"{where}passes | {timing.passes} passes need at least as many rounds "
                          f"(got rounds = {timing.rounds}): each pass times every benchmark at "
                          "least once.\nRemedy: lower passes or raise rounds.")
    if timing.trials > timing.rounds:
        raise ConfigError(f"{where}trials | {timing.trials} trials need at least as many rounds "
                          f"(got rounds = {timing.rounds}).")
    return timing


def parse_ab(table: Any, where: str) -> AbConfig:
    check_keys(table, AB_KEYS, where)
    base = AbConfig()
    pairs = check_int(table.get("pairs", base.pairs), f"{where}pairs", 20, MAX_PAIRS, 4 * CALL_S)
    min_pairs = check_int(table.get("min_pairs", min(base.min_pairs, pairs)), f"{where}min_pairs",
                          20, MAX_PAIRS)
    if min_pairs > pairs:
        raise ConfigError(f"{where}min_pairs | {min_pairs} is more than pairs = {pairs}: the "
                          f"first look comes before the last pair; set min_pairs <= pairs "
                          f"(min_pairs = pairs turns early stopping off).")
    return AbConfig(
        pairs=pairs, min_pairs=min_pairs,
        block_pairs=check_int(table.get("block_pairs", base.block_pairs), f"{where}block_pairs",
                              1, MAX_PAIRS),
        max_seconds=check_number(table.get("max_seconds", base.max_seconds),
                                 f"{where}max_seconds", maximum=MAX_SECONDS),
        rounds_per_trial=check_int(table.get("rounds_per_trial", base.rounds_per_trial),
                                   f"{where}rounds_per_trial", 1, MAX_TRIALS),
        gpu_rounds_per_trial=check_int(table.get("gpu_rounds_per_trial",
                                                 base.gpu_rounds_per_trial),
                                       f"{where}gpu_rounds_per_trial", 1, MAX_TRIALS),
        worker_timeout_s=check_number(table.get("worker_timeout_s", base.worker_timeout_s),
                                      f"{where}worker_timeout_s", above_zero=True,
                                      maximum=86400.0),
    )


def parse_tensorrt(table: Any, where: str) -> TensorRTConfig:
    check_keys(table, TENSORRT_KEYS, where)
    return TensorRTConfig(
        workspace_mb=check_int(table.get("workspace_mb", 1024), f"{where}workspace_mb", 1),
        cuda_graph=check_bool(table.get("cuda_graph", False), f"{where}cuda_graph"),
        host_buffers=check_bool(table.get("host_buffers", False), f"{where}host_buffers"),
        trtexec=check_program(table.get("trtexec", ""), f"{where}trtexec", remedy=(
            "give the full path of trtexec (JetPack: /usr/src/tensorrt/bin/trtexec) or remove "
            "the key to search PATH.")),
    )


def parse_torch_python(table: Any, where: str) -> str:
    """The interpreter the torch backend runs its sessions in ("": this one)."""
    check_keys(table, TORCH_KEYS, where)
    return check_program(table.get("python", ""), f"{where}python", on_path=True, remedy=(
        "give the interpreter that has the torch to measure (JetPack 4.6: /usr/bin/python3.6), "
        "or remove the key to run torch in this process."))


def parse_onnx(table: Any, where: str) -> OnnxConfig:
    check_keys(table, ONNX_KEYS, where)
    return OnnxConfig(
        exporter=check_choice(table.get("exporter", "torchscript"), EXPORTERS, f"{where}exporter"),
        opset=check_int(table.get("opset", 17), f"{where}opset", 7),
    )


def parse_agreement(table: Any, where: str) -> AgreementConfig:
    check_keys(table, AGREEMENT_KEYS, where)
    tolerances = dict(DEFAULT_TOLERANCES)
    max_rel_l2 = dict(DEFAULT_MAX_REL_L2)
    property_rel_l2 = dict(DEFAULT_PROPERTY_REL_L2)
    for precision in PRECISIONS:
        sub = table.get(precision, {})
        check_keys(sub, PRECISION_KEYS, f"{where}{precision}.")
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


POLICY_KEYS = set(GatePolicy.__dataclass_fields__)
GATE_KEYS = POLICY_KEYS | {"overrides", "too_noisy"}


def policy_changes(table: Any, where: str) -> dict[str, float]:
    """Validated GatePolicy fields from a table (config override or perf_gate marker)."""
    check_keys(table, POLICY_KEYS, where)
    changes = {key: check_number(value, f"{where}{key}") for key, value in table.items()}
    tail = changes.get("tail_percentile", 0.0)
    if tail and not 50 <= tail < 100:
        raise ConfigError(f"{where}tail_percentile | {tail:g} is no tail percentile: use one "
                          f"from 50 to below 100 (99 gates p99), or 0 to gate none.")
    return changes


def parse_gate(table: Any, where: str) -> GateConfig:
    check_keys(table, GATE_KEYS, where)
    policy_table = {k: v for k, v in table.items() if k in POLICY_KEYS}
    overrides = table.get("overrides", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}overrides | expected a table of case id -> limits.")
    return GateConfig(
        policy=GatePolicy(**policy_changes(policy_table, where)),
        overrides={name: policy_changes(sub, f"{where}overrides.{name}.")
                   for name, sub in overrides.items()},
        too_noisy=check_choice(table.get("too_noisy", "advisory"), TOO_NOISY, f"{where}too_noisy"),
    )
