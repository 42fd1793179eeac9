"""The records a run produces, and their one JSON codec.

A latency benchmark yields a CaseResult (its statistics, drift, session details, warnings, GPU
state, paired A/B trials and energy); each test item yields ItemRecords, the things it asked the
gate to judge. pytest-benchmark stores a CaseResult as the benchmark's extra_info
(encode_case_result) and reports read it back (decode_case_result): one codec, both directions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from perfsuite.measure.agreement import Drift
from perfsuite.measure.energy import EnergyStats
from perfsuite.measure.latency_stats import LatencyStats, positive
from perfsuite.measure.paired import PairedTrials


@dataclass(frozen=True)
class CaseSpec:
    """One measured combination; keys tables, results and (later) baselines."""

    model: str
    backend: str
    precision: str
    device: str

    @property
    def id(self) -> str:
        return f"{self.model}-{self.backend}-{self.precision}"


@dataclass(frozen=True)
class CaseResult:
    case: CaseSpec
    artifact_bytes: int
    latency: LatencyStats | None = None  # end to end, host clock
    gpu_latency: LatencyStats | None = None  # GPU compute, CUDA events
    enqueue_latency: LatencyStats | None = None  # host time to launch the GPU work
    drift: Drift | None = None
    details: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    gpu_state: dict[str, dict[str, float | None]] = field(default_factory=dict)
    paired: tuple[PairedTrials, ...] = ()  # --perf-ab: end to end, and GPU compute on CUDA
    energy: EnergyStats | None = None  # the energy window, where the machine has a meter
    passes: int = 1  # host-clock rounds taken in this many passes over the run's benchmarks


@dataclass(frozen=True)
class ItemRecord:
    """Something a test recorded for the gate: its kind ('latency', 'size', 'drift'), what it
    names (a case id, or a model for sizes), and all a gate needs to judge it: what makes it
    comparable (`identity`), the latency result and its raw samples, or the size or drift values."""

    kind: str
    name: str
    case: CaseSpec | None = None
    identity: Mapping[str, str] = field(default_factory=dict)
    result: CaseResult | None = None  # latency
    samples_ms: tuple[float, ...] = ()  # latency: pytest-benchmark's raw samples
    values: Mapping[str, float] = field(default_factory=dict)  # size bytes, or drift metrics


@dataclass(frozen=True)
class RunResults:
    """Everything one run recorded, as gates (at the end of the run) and reports see it: the
    latency results in the configuration's order, and the latest record of each benchmark."""

    results: tuple[CaseResult, ...]
    records: tuple[ItemRecord, ...]
    cpu_threads: int = 0
    case_params: tuple[tuple[str, str, str], ...] = ()  # (model, backend, precision) configured

    def of_kind(self, kind: str) -> dict[str, ItemRecord]:
        """Name -> the latest record of `kind`."""
        return {r.name: r for r in self.records if r.kind == kind}

    @property
    def samples_ms(self) -> dict[str, tuple[float, ...]]:
        return {r.name: r.samples_ms for r in self.records if r.kind == "latency"}

    @property
    def sizes(self) -> dict[str, dict[str, int]]:
        return {name: {k: int(v) for k, v in r.values.items()}
                for name, r in self.of_kind("size").items()}

    @property
    def drifts(self) -> dict[str, dict[str, float]]:
        return {name: dict(r.values) for name, r in self.of_kind("drift").items()}


def encode_case_result(result: CaseResult, cpu_threads: int) -> dict[str, Any]:
    """The JSON-safe record pytest-benchmark stores per benchmark as its extra_info (plain floats,
    ints, strings); decode_case_result reads it back."""
    info: dict[str, Any] = {
        "model": result.case.model,
        "backend": result.case.backend,
        "precision": result.case.precision,
        "device": result.case.device,
        "artifact_bytes": int(result.artifact_bytes),
        "cpu_threads": int(cpu_threads),
        "timer": "perf_counter around a synchronised Runner.run",
        "passes": int(result.passes),
        "session": dict(result.details),
        "warnings": list(result.warnings),
    }
    for name in ("latency", "gpu_latency", "enqueue_latency"):
        stats = getattr(result, name)
        if stats is not None:
            info[name] = stats.as_dict()
    if result.gpu_state:
        info["gpu_state"] = result.gpu_state
    if result.energy is not None:
        info["energy"] = result.energy.as_dict()
    if result.drift is not None:
        info.update(result.drift.as_dict())
    if result.paired:  # --perf-ab: the pairs the verdicts are made from
        info["paired"] = [{"statistic": trials.statistic,
                           "base_trial_medians_ms": list(trials.base_ms),
                           "current_trial_medians_ms": list(trials.current_ms),
                           "stopped": trials.stopped, "bound": trials.bound,
                           "calls_per_trial": trials.calls_per_trial}
                          for trials in result.paired]
    return info


def decode_case_result(info: Mapping[str, Any]) -> CaseResult:
    """A CaseResult from the extra_info encode_case_result wrote; KeyError, TypeError or
    ValueError where the record is corrupt (the caller names the file)."""
    case = CaseSpec(str(info["model"]), str(info["backend"]), str(info["precision"]),
                    str(info["device"]))
    stats = {name: LatencyStats.from_dict(info[name]) if info.get(name) else None
             for name in ("latency", "gpu_latency", "enqueue_latency")}
    drift = (Drift(_ranged(info, "rel_l2", 0.0, math.inf), _ranged(info, "max_abs", 0.0, math.inf),
                   _ranged(info, "cosine", -1.000001, 1.000001), _ranged(info, "top1_agreement", 0.0, 1.0))
             if "rel_l2" in info else None)
    paired = tuple(PairedTrials(str(p["statistic"]), tuple(map(float, p["base_trial_medians_ms"])),
                                tuple(map(float, p["current_trial_medians_ms"])), (), (),
                                str(p.get("stopped", "")), int(p.get("bound", 0)),
                                int(p.get("calls_per_trial", 1)))
                   for p in _list(info, "paired"))
    return CaseResult(
        case, int(info["artifact_bytes"]), stats["latency"], stats["gpu_latency"],
        stats["enqueue_latency"], drift, {str(k): str(v) for k, v in info.get("session", {}).items()},
        tuple(str(w) for w in _list(info, "warnings")), paired=paired,
        energy=EnergyStats.from_dict(info["energy"]) if info.get("energy") else None,
        passes=_passes(info))


def positive_ms(seconds: Any) -> float:
    return positive(float(seconds) * 1e3, "a latency sample (ms)")


def _list(info: Mapping[str, Any], key: str) -> list[Any]:
    value = info.get(key, [])
    if not isinstance(value, list):
        raise TypeError(f"{key} must be a list, got {type(value).__name__}")
    return value


def _passes(info: Mapping[str, Any]) -> int:
    """The passes a record was timed in: 1 for records from before the key existed."""
    value = info.get("passes", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"passes must be a whole number of at least 1, got {value!r}")
    return value


def _ranged(info: Mapping[str, Any], key: str, low: float, high: float) -> float:
    """A drift metric: a finite number in [low, high] (cosine -5 or agreement 7 is corrupt)."""
    value = float(info[key])
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{key} must be a finite number in [{low:g}, {high:g}], got {value!r}")
    return value
