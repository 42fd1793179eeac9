"""The regression decision: pure functions over this run's numbers and a baseline's.

Latency: the statistic is the median of per-trial medians (and, separately, of per-trial p90s).
A regression must be practically large (above a per-benchmark percentage and an absolute floor
in ms) and significant: above `noise_k` times the noise, where the noise is the between-run
coefficient of variation of the baseline's recordings (each `--perf-save-baseline` /
`--perf-add-recording` run is one recording), or an assumed value while the baseline has a
single recording, and never less than this run's own spread between trials.
Size and drift are deterministic for fixed software: they get tight limits and no statistics.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GatePolicy:
    max_increase: float = 0.03  # median may grow by this fraction before it can fail
    tail_max_increase: float = 0.05  # same for the tail (p90)
    floor_ms: float = 0.01  # changes smaller than this never fail
    noise_k: float = 3.0  # how many noise CVs a change must exceed
    single_recording_noise: float = 0.05  # assumed between-run CV with one recording
    size_tolerance: float = 0.01  # sizes may grow by 1%
    drift_growth: float = 0.25  # drift may grow by 25% of the baseline's (plus drift_floor)
    drift_floor: float = 1e-6


@dataclass(frozen=True)
class GateVerdict:
    subject: str  # e.g. "mobilenet_v3_small-torch-fp32 median latency"
    status: str  # "pass" | "regression"
    current: float
    baseline: float
    threshold: float  # the ratio above which it fails
    unit: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "regression"

    @property
    def ratio(self) -> float:
        return self.current / self.baseline if self.baseline else float("inf")

    def value(self, number: float) -> str:
        text = f"{number:,.0f}" if self.unit == "bytes" else f"{number:.4g}"
        return f"{text} {self.unit}".strip()

    def describe(self) -> str:
        verb = "REGRESSED" if self.failed else "ok"
        return (f"{self.subject} {verb}: {self.value(self.current)} vs baseline "
                f"{self.value(self.baseline)} (x{self.ratio:.3f}, fails above "
                f"x{self.threshold:.3f}){'; ' + self.detail if self.detail else ''}")


def between_run_noise(values: Sequence[float], assumed: float) -> float:
    """Coefficient of variation between recordings; `assumed` when there is only one."""
    if len(values) < 2:
        return assumed
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else 0.0


def within_run_noise(trials: Sequence[float]) -> float:
    if len(trials) < 2:
        return 0.0
    mean = statistics.fmean(trials)
    return statistics.stdev(trials) / mean if mean > 0 else 0.0


def judge_latency(
    subject: str,
    current_trials: Sequence[float],
    baseline_recordings: Sequence[float],
    max_increase: float,
    policy: GatePolicy,
) -> GateVerdict:
    """Compare the median of this run's trial statistics with the baseline's recordings."""
    current = statistics.median(current_trials)
    baseline = statistics.median(baseline_recordings)
    between = between_run_noise(baseline_recordings, policy.single_recording_noise)
    noise = max(between, within_run_noise(current_trials))
    threshold = 1.0 + max(max_increase, policy.noise_k * noise)
    regressed = current > baseline * threshold and current - baseline > policy.floor_ms
    detail = (f"noise CV {noise:.2%} from {len(baseline_recordings)} recording(s), "
              f"k={policy.noise_k:g}, practical limit +{max_increase:.0%}, "
              f"floor {policy.floor_ms:g} ms")
    return GateVerdict(subject, "regression" if regressed else "pass", current, baseline,
                       threshold, "ms", detail)


def judge_size(subject: str, current: int, baseline: int, policy: GatePolicy) -> GateVerdict:
    threshold = 1.0 + policy.size_tolerance
    regressed = current > baseline * threshold
    return GateVerdict(subject, "regression" if regressed else "pass", float(current),
                       float(baseline), threshold, "bytes")


def judge_drift(subject: str, current: float, baseline: float, policy: GatePolicy) -> GateVerdict:
    """Drift metrics where larger is worse (rel_l2, max_abs)."""
    limit = baseline * (1.0 + policy.drift_growth) + policy.drift_floor
    regressed = current > limit
    threshold = limit / baseline if baseline else float("inf")
    return GateVerdict(subject, "regression" if regressed else "pass", current, baseline,
                       threshold, "", f"limit {limit:.3e}")
