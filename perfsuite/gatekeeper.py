"""BaselineGate: applies the regression decision (gate.py) to a run against this machine's
baseline (baselines.py), and builds the baseline a recording run writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from perfsuite.baselines import Baseline, LatencyRecording, load_baseline
from perfsuite.config import GateConfig
from perfsuite.gate import GatePolicy, GateVerdict, judge_drift, judge_latency, judge_size
from perfsuite.session import CaseResult, ItemRecord, PerfSession
from perfsuite.timing import LatencyStats

GATED_DRIFT = ("rel_l2", "max_abs")


def policy_for(settings: GateConfig, benchmark: str,
               marker: Mapping[str, float] | None = None) -> GatePolicy:
    """The defaults, then the config override for this benchmark, then the perf_gate marker."""
    changes = {**settings.overrides.get(benchmark, {}), **(marker or {})}
    return replace(settings.policy, **changes) if changes else settings.policy


def recording_of(stats: LatencyStats, samples_ms: tuple[float, ...]) -> LatencyRecording:
    return LatencyRecording(stats.median_ms, stats.p90_ms, stats.p99_ms, stats.trial_medians_ms,
                            stats.trial_p90_ms, samples_ms)


class BaselineGate:
    def __init__(self, path: Path, settings: GateConfig, allow_env_change: bool) -> None:
        self.path = path
        self.settings = settings
        self.allow_env_change = allow_env_change
        self.baseline: Baseline | None = load_baseline(path)

    def env_changes(self, software: Mapping[str, str]) -> list[str]:
        """Software versions that differ from the baseline's, as 'name: old -> new'."""
        if self.baseline is None:
            return []
        old = self.baseline.software
        return [f"{name}: {old.get(name, 'absent')} -> {software.get(name, 'absent')}"
                for name in sorted(set(old) | set(software))
                if old.get(name) != software.get(name)]

    def env_failure(self, software: Mapping[str, str]) -> str | None:
        changes = self.env_changes(software)
        if not changes or self.allow_env_change:
            return None
        return (f"perfsuite gate | environment changed since the baseline {self.path} was recorded "
                f"({'; '.join(changes)}).\nRemedy: re-record it with `pytest --perf-save-baseline`"
                ", or pass --perf-allow-env-change to compare anyway.")

    def judge_latency(self, result: CaseResult, policy: GatePolicy,
                      remeasure: Callable[[], LatencyStats] | None) -> list[GateVerdict]:
        """Median and tail verdicts; a failing one is re-measured up to confirm_runs times and the
        best measurement decides (noise only ever slows a run down)."""
        recordings = self.baseline.latency.get(result.case.id) if self.baseline else None
        if not recordings or result.latency is None:
            return []
        measurements = [result.latency]
        verdicts = self._latency_verdicts(result.case.id, measurements[0], recordings, policy)
        while any(v.failed for v in verdicts) and remeasure and (
            len(measurements) <= self.settings.confirm_runs
        ):
            measurements.append(remeasure())
            best = min(measurements, key=lambda m: m.median_ms)
            verdicts = self._latency_verdicts(result.case.id, best, recordings, policy)
        if len(measurements) > 1:
            note = f"best of {len(measurements)} measurements (first median " \
                   f"{measurements[0].median_ms:.4g} ms)"
            verdicts = [replace(v, detail=f"{v.detail}; {note}") for v in verdicts]
        return verdicts

    @staticmethod
    def _latency_verdicts(name: str, stats: LatencyStats, recordings: tuple[LatencyRecording, ...],
                          policy: GatePolicy) -> list[GateVerdict]:
        return [
            judge_latency(f"{name} median latency", stats.trial_medians_ms,
                          [r.median_ms for r in recordings], policy.max_increase, policy),
            judge_latency(f"{name} p90 latency", stats.trial_p90_ms,
                          [r.p90_ms for r in recordings], policy.tail_max_increase, policy),
        ]

    def judge_sizes(self, model: str, sizes: Mapping[str, int], policy: GatePolicy) -> list[GateVerdict]:
        old = self.baseline.sizes.get(model, {}) if self.baseline else {}
        return [judge_size(f"{model} {name}", value, old[name], policy)
                for name, value in sorted(sizes.items()) if name in old]

    def judge_drift(self, case_id: str, drift: Mapping[str, float],
                    policy: GatePolicy) -> list[GateVerdict]:
        old = self.baseline.drift.get(case_id, {}) if self.baseline else {}
        return [judge_drift(f"{case_id} drift {name}", drift[name], old[name], policy)
                for name in GATED_DRIFT if name in old and name in drift]


def build_baseline(key: str, machine: dict[str, Any], software: dict[str, str],
                   results: list[CaseResult], samples: Mapping[str, tuple[float, ...]],
                   sizes: Mapping[str, Mapping[str, int]],
                   drifts: Mapping[str, Mapping[str, float]]) -> Baseline:
    latency: dict[str, tuple[LatencyRecording, ...]] = {
        r.case.id: (recording_of(r.latency, samples.get(r.case.id, ())),)
               for r in results if r.latency is not None}
    return Baseline(key, machine, dict(software), latency,
                    {m: dict(s) for m, s in sizes.items()},
                    {c: dict(d) for c, d in drifts.items()})


def item_failures(gate: BaselineGate, perf: PerfSession, records: list[ItemRecord],
                  software: Mapping[str, str], marker: Mapping[str, float] | None,
                  adjust: Callable[[str, GatePolicy], GatePolicy] = lambda name, policy: policy,
                  ) -> tuple[list[GateVerdict], list[str]]:
    """Verdicts for what one test item recorded, and the failure messages among them."""
    if gate.baseline is None or not records:
        return [], []
    env = gate.env_failure(software)
    if env:
        return [], [env]
    verdicts: list[GateVerdict] = []
    for record in records:
        policy = adjust(record.name, policy_for(gate.settings, record.name, marker))
        if record.kind == "latency" and record.case is not None:
            case = record.case
            remeasure: Callable[[], LatencyStats] = partial(perf.remeasure, case)
            verdicts += gate.judge_latency(perf.result(case), policy, remeasure)
        elif record.kind == "size":
            verdicts += gate.judge_sizes(record.name, perf.sizes[record.name], policy)
        elif record.kind == "drift":
            verdicts += gate.judge_drift(record.name, perf.drifts[record.name], policy)
    failures = [f"perfsuite gate | {v.describe()} [baseline {gate.path}]"
                for v in verdicts if v.failed]
    return verdicts, failures


def unmatched(gate: BaselineGate, perf: PerfSession) -> tuple[list[str], list[str]]:
    """(new, missing): benchmarks this run measured that the baseline lacks, and the reverse."""
    if gate.baseline is None:
        return [], []
    measured = {r.case.id for r in perf.results() if r.latency is not None}
    measured |= {f"size:{m}" for m in perf.sizes} | {f"drift:{c}" for c in perf.drifts}
    known = gate.baseline.benchmark_names()
    return sorted(measured - known), sorted(known - measured)
