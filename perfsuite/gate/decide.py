"""The regression decision: pure functions over this run's numbers and a baseline's.

Latency. A benchmark has up to two timings (docs/gate.md): GPU compute from CUDA events and end
to end from the host clock; each gives two statistics, the median of the per-trial medians and
of the per-trial p90s. For each statistic:
- noise: the between-run spread of a run's statistic (a standard deviation of its logarithm,
  close to the coefficient of variation), estimated by pooling a prior for the session kind
  (worth `prior_weight` recordings) with the spread between the baseline's recordings, and
  never below this run's own spread between trials. Where fresh processes run the same code at
  speeds of their own (every statistic but the GPU compute of a GPU-bound session: CPU
  backends, kernel launches, the host clock), a few recordings that agree may share one speed,
  so the prior stays a floor there (`prior_weight = 0` trusts the recordings alone);
- threshold: a change must be significant (above `noise_k` noise widths of the difference
  between a run and the baseline's median, as a ratio) and, where the noise allows, as large as
  the practical limit less what keeps a slowdown of that size caught 95% of the time;
- resolution: the smallest slowdown caught 95% of the time (threshold + 1.645 noise widths).
The statistic with the finest resolution decides: on CUDA that is GPU compute wherever the GPU,
not the host's launches, sets the pace. A benchmark whose deciding statistic's noise (one
standard deviation of the difference) is wider than its practical limit is "too noisy to gate"
at that limit: it is still gated at the threshold its noise supports (`noise_k` widths), so a
change the noise cannot explain fails; a change inside the noise is advisory (or fails, with
`too_noisy = "fail"`), never a coin flip.
Energy per inference (where a meter measured it) is gated the same way on its own: the median
of its per-trial figures, noise pooled from a prior for the session kind, the recordings and
this run's trials, and its own practical limit (`energy_max_increase`).
Size and drift are deterministic for fixed software: they get tight limits and no statistics.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.gate.store import LatencyRecording
from perfsuite.measure.latency_stats import samples_needed, tail_bound

Z_DETECT = 1.645  # one-sided 95%: the resolution is the slowdown caught 95% of the time
ENQUEUE_BOUND_RATIO = 0.8  # trtexec's rule: host launch time above 0.8x GPU time

# Between-run CV of a run's median, by what is timed and how the session runs, measured on an
# H100 and the 2-core CI machine (docs/gate.md). GPU-bound: the GPU sets the pace (CUDA-graph
# replay, engines): events 0.26-0.32%; its host-clock timing moved 1.7-4.7% with a heavy tail
# (+20% single runs), hence 8%. Launch-bound: the host's kernel launches set the pace (eager
# batch 1) and both timings move 16-30% (a zoo of 25 on an H100: log spread 0.12-0.30). CPU: the
# shared 2-vCPU CI machine's processes run at two or three speeds up to 3.3x apart (a zoo of
# 30: log spread torch 0.06-0.26, ONNX Runtime 0.28-0.42; docs/gate.md).
PRIOR_NOISE = {
    ("gpu", "gpu-bound"): 0.003,
    ("gpu", "launch-bound"): 0.20,
    ("e2e", "gpu-bound"): 0.08,
    ("e2e", "launch-bound"): 0.20,
    ("e2e", "cuda"): 0.08,  # no CUDA-event timing to tell which
    ("e2e", "cpu"): 0.30,
}
# The statistics whose processes agree: each fresh process of a CUDA graph or an engine meets
# the same GPU (H100 zoo: GPU compute 0.00-0.2% between processes, energy 0.1-1.0%). Every other
# statistic's prior is a floor that recordings may raise but not lower (estimate_noise).
ONE_SPEED = {("gpu", "gpu-bound"), ("energy", "gpu-bound")}
# Energy per inference between runs from NVML's counter, measured on an H100 (5 windows of 1 s
# aligned to the counter's 100 ms steps; docs/benchmarks.md): CUDA-graph replay spread 0.1-1.0%
# between processes, eager batch 1 about 20%. Other meters (Jetson INA3221 rails), not measured
# yet, take the end-to-end latency prior of the session kind until recordings say otherwise.
NVML_ENERGY_PRIOR_NOISE = {"gpu-bound": 0.01, "launch-bound": 0.20, "cuda": 0.20, "cpu": 0.25}
STATISTICS = {"gpu": "GPU compute", "e2e": "end to end", "energy": "energy per inference"}
HOW_TO_QUIETEN = ("compare it A/B (--perf-ab=REF: paired trials in one run see neither side's "
                  "process speed), time it as a CUDA graph (backend torch-cudagraph or "
                  "tensorrt), lock the clocks, or raise max_increase for it")


@dataclass(frozen=True)
class Noise:
    """The between-run noise of one statistic and where the estimate came from."""

    cv: float
    prior: float
    kind: str
    between: float | None  # the sample CV between the baseline's recordings (None with one)
    within: float  # this run's CV between trials
    recordings: int
    evidence_agrees: bool = False  # recordings and trials both below the prior: log pooling

    def describe(self) -> str:
        spread = (f"{self.recordings} recordings spread {self.between:.2%}"
                  if self.between is not None else "1 recording")
        agrees = "; both below the prior, so they outweigh it" if self.evidence_agrees else ""
        return (f"noise CV {self.cv:.2%} (prior {self.prior:.2%} for {self.kind}, {spread}, "
                f"this run's trials {self.within:.2%}{agrees})")


@dataclass(frozen=True)
class GateVerdict:
    subject: str  # e.g. "mobilenet_v3_small-torch-fp32 median GPU compute"
    status: str  # "pass" | "regression" | "too noisy" | "not comparable"
    current: float
    baseline: float
    threshold: float  # the ratio above which it fails
    unit: str
    detail: str = ""
    failed: bool = False
    resolution: float | None = None  # smallest slowdown caught 95% of the time (a fraction)
    decides: bool = False  # the benchmark's deciding statistic
    statistic: str = ""  # latency verdicts: "gpu" (CUDA events) or "e2e" (host clock)
    against: str = "baseline"  # what `baseline` is: the stored baseline, or A/B's REF

    @property
    def ratio(self) -> float:
        return self.current / self.baseline if self.baseline else float("inf")

    def value(self, number: float) -> str:
        text = f"{number:,.0f}" if self.unit == "bytes" else f"{number:.4g}"
        return f"{text} {self.unit}".strip()

    def describe(self) -> str:
        if self.status == "not comparable":
            return f"{self.subject} NOT COMPARABLE: {self.detail}"
        verb = {"pass": "ok", "regression": "REGRESSED"}.get(self.status, self.status.upper())
        return (f"{self.subject} {verb}: {self.value(self.current)} vs {self.against} "
                f"{self.value(self.baseline)} (x{self.ratio:.3f}, fails above "
                f"x{self.threshold:.3f}){'; ' + self.detail if self.detail else ''}")


def sample_cv(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else 0.0


def estimate_noise(recorded: Sequence[float], current_trials: Sequence[float], prior: float,
                   kind: str, prior_weight: float, one_speed: bool = True) -> Noise:
    """Pool the prior (as `prior_weight` degrees of freedom) with the recordings' spread (n - 1);
    never less than this run's spread between trials, which widens under contention.

    When the measured evidence agrees that this runner is quieter than its kind's prior (the
    recordings' spread and this run's trials both below it), the two are pooled as logarithms:
    a geometric mean, in which the recordings outweigh the prior as they accumulate (3
    recordings at 0.1% against a 0.3% GPU prior: 0.17%; the variances' mean would stay at 0.25%,
    dominated by the prior's square). Evidence of more noise than the prior is pooled as
    variances, which keeps the wider figure: the estimate is only lowered on agreement, and
    only where processes run at `one_speed`; elsewhere recordings that agree may share one of
    the process speeds, and the prior is a floor (unless `prior_weight` is 0)."""
    freedom = len(recorded) - 1
    between = sample_cv(recorded) if freedom > 0 else None
    within = sample_cv(current_trials)
    weights = prior_weight + freedom
    agrees = (between is not None and 0 < between < prior and within < prior and weights > 0
              and (one_speed or not prior_weight))
    if agrees:
        pooled = math.exp((prior_weight * math.log(prior) + freedom * math.log(between or 1.0))
                          / weights)
    else:
        pooled = math.sqrt((prior_weight * prior**2 + freedom * (between or 0.0) ** 2)
                           / max(weights, 1e-12))
        if not one_speed and prior_weight:
            pooled = max(pooled, prior)
    return Noise(max(pooled, within), prior, kind, between, within, len(recorded), agrees)


@dataclass(frozen=True)
class StatisticCheck:
    """One statistic of one benchmark against the baseline: numbers and limits as fractions."""

    subject: str
    statistic: str  # "gpu" | "e2e"
    which: str  # "median" | "p90"
    current: float
    baseline: float
    noise: Noise
    limit: float  # the practical limit
    width: float  # the noise of a run-vs-baseline difference (one standard deviation)
    significance: float  # noise_k widths, as a fraction of the baseline
    threshold: float  # fails above baseline * (1 + threshold)
    resolution: float

    @property
    def gateable(self) -> bool:
        """The noise is narrower than the practical limit."""
        return self.width <= math.log1p(self.limit)

    def exceeded(self, floor_ms: float) -> bool:
        return (self.current > self.baseline * (1 + self.threshold)
                and self.current - self.baseline > floor_ms)


def check_statistic(subject: str, statistic: str, which: str, current_trials: Sequence[float],
                    recorded: Sequence[float], limit: float, prior: float, kind: str,
                    policy: GatePolicy, one_speed: bool = True) -> StatisticCheck:
    """This run's median trial statistic against the median of the recordings' run statistics;
    the widths add as logarithms of the ratio (a spread of x2 either way is +100% or -50%)."""
    noise = estimate_noise(recorded, current_trials, prior, kind, policy.prior_weight, one_speed)
    width = noise.cv * math.sqrt(1 + 1 / len(recorded))
    significant = policy.noise_k * width
    threshold = max(significant, math.log1p(limit) - Z_DETECT * width)
    return StatisticCheck(subject, statistic, which, statistics.median(current_trials),
                          statistics.median(recorded), noise, limit, width,
                          math.expm1(significant), math.expm1(threshold),
                          math.expm1(threshold + Z_DETECT * width))


def session_kind(device: str, current: LatencyRecording, recordings: Sequence[LatencyRecording]) -> str:
    """'cpu', 'gpu-bound', 'launch-bound', or 'cuda' when no CUDA-event timing tells which."""
    if device != "cuda":
        return "cpu"
    if current.gpu is None or current.enqueue_ms is None:
        return "cuda"
    launch_bound = any(r.enqueue_ms is not None and r.gpu is not None
                       and r.enqueue_ms > ENQUEUE_BOUND_RATIO * r.gpu.median_ms
                       for r in (current, *recordings))
    return "launch-bound" if launch_bound else "gpu-bound"


def latency_checks(name: str, current: LatencyRecording, recordings: Sequence[LatencyRecording],
                   device: str, policy: GatePolicy) -> list[StatisticCheck]:
    """Median and p90 checks for each timing both sides have; GPU compute first."""
    kind = session_kind(device, current, recordings)
    checks = []
    for statistic in ("gpu", "e2e"):
        now = current.stats(statistic)
        before = [r.stats(statistic) for r in recordings]
        if now is None or any(b is None for b in before):
            continue
        prior = PRIOR_NOISE.get((statistic, kind), PRIOR_NOISE[("e2e", "cuda")])
        label = f"{STATISTICS[statistic]} ({kind})"
        for which, limit in (("median", policy.max_increase), ("p90", policy.tail_max_increase)):
            trials = now.trial_medians_ms if which == "median" else now.trial_p90_ms
            recorded = [statistics.median(b.trial_medians_ms if which == "median"
                                          else b.trial_p90_ms) for b in before if b]
            checks.append(check_statistic(f"{name} {which} {STATISTICS[statistic]}", statistic,
                                          which, trials, recorded, limit, prior, label, policy,
                                          (statistic, kind) in ONE_SPEED))
    return checks


def judge_latency(name: str, current: LatencyRecording, recordings: Sequence[LatencyRecording],
                  device: str, policy: GatePolicy, too_noisy_fails: bool = False) -> list[GateVerdict]:
    """Verdicts for every statistic; the median statistic with the finest resolution decides
    whether the benchmark is gated (each statistic then at its own threshold) or too noisy."""
    broken = _non_finite(current)
    if broken:
        return [GateVerdict(f"{name} latency", "regression", math.nan, 0.0, 0.0, "ms",
                            f"this run's {broken} is not a finite number: the timer or the "
                            "backend misbehaved; nothing can pass on it", failed=True,
                            decides=True)]
    checks = latency_checks(name, current, recordings, device, policy)
    medians = [c for c in checks if c.which == "median"]
    if not medians:
        return []
    decider = min(medians, key=lambda c: c.resolution)
    others = [c for c in medians if c is not decider]
    why = (f"decided by {STATISTICS[decider.statistic]}, the steadiest statistic"
           + "".join(f" (noise {decider.noise.cv:.2%} vs {STATISTICS[o.statistic]} "
                     f"{o.noise.cv:.2%})" for o in others))
    moved = {c.statistic for c in medians
             if c.current - c.baseline > c.significance * c.baseline}
    return [_verdict(check, check is decider, decider, why, policy, too_noisy_fails,
                     corroborated=check.which == "median" or check.statistic in moved)
            for check in checks]


def judge_energy(name: str, current: LatencyRecording, recordings: Sequence[LatencyRecording],
                 device: str, policy: GatePolicy, too_noisy_fails: bool = False) -> list[GateVerdict]:
    """Energy per inference against the recordings that have it ([] when either side has none);
    a different meter or workload is 'not comparable'."""
    energy = current.energy
    before = [r.energy for r in recordings if r.energy is not None]
    if energy is None or not before:
        return []
    subject = f"{name} energy per inference"
    how = {(b.source, b.workload) for b in before}
    if how != {(energy.source, energy.workload)}:
        detail = (f"measured by {', '.join(f'{s} over {w}' for s, w in sorted(how))} in the "
                  f"baseline, {energy.source} over {energy.workload} now")
        return [GateVerdict(subject, "not comparable", 0.0, 0.0, 0.0, "", detail)]
    kind = session_kind(device, current, recordings)
    nvml = energy.source.startswith("NVML")
    prior = NVML_ENERGY_PRIOR_NOISE[kind] if nvml else PRIOR_NOISE[("e2e", kind)]
    check = check_statistic(subject, "energy", "median", energy.trial_mj,
                            [statistics.median(b.trial_mj) for b in before],
                            policy.energy_max_increase, prior, f"energy ({kind})", policy,
                            nvml and ("energy", kind) in ONE_SPEED)
    return [_verdict(check, True, check, "energy is gated on its own", policy, too_noisy_fails,
                     unit="mJ", floor=0.0)]


def _non_finite(recording: LatencyRecording) -> str:
    """The first statistic of `recording` that is NaN or infinite ('' when all are finite)."""
    for statistic in ("gpu", "e2e"):
        stats = recording.stats(statistic)
        if stats is None:
            continue
        for label, values in (("trial medians", stats.trial_medians_ms),
                              ("trial p90s", stats.trial_p90_ms),
                              ("median", (stats.median_ms,))):
            if not all(map(math.isfinite, values)):
                return f"{STATISTICS[statistic]} {label}"
    return ""


def _verdict(check: StatisticCheck, decides: bool, decider: StatisticCheck, why: str,
             policy: GatePolicy, too_noisy_fails: bool, unit: str = "ms",
             floor: float | None = None, corroborated: bool = True) -> GateVerdict:
    detail = (f"resolves +{check.resolution:.1%}; {check.noise.describe()}, "
              f"k={policy.noise_k:.3g}, practical limit +{check.limit:.0%}; {why}")
    regressed = check.exceeded(policy.floor_ms if floor is None else floor)
    if regressed and not corroborated:  # a p90 that moved while its median held: a burst
        # within the run, not a slower benchmark (tail_percentile gates the tail on its own)
        regressed = False
        detail = (f"beyond its threshold, but its median did not move beyond its noise: not "
                  f"failed (a tail-only change; gate it with tail_percentile); {detail}")
    if decider.gateable or regressed:
        status = "regression" if regressed else "pass"
        failed = regressed
    else:
        status, failed = "too noisy", decides and too_noisy_fails
    if not decider.gateable:  # gated at what its noise supports; inside the noise: advisory
        verdict = ("a change beyond its noise fails" if regressed else
                   f"advisory{', fails: too_noisy = fail' if failed else ''}")
        detail = (f"too noisy to gate at +{decider.limit:.0%}, gated at +{check.threshold:.1%} "
                  f"({verdict}; {'resolves' if decides else 'its benchmark resolves'} "
                  f"+{decider.resolution:.1%}; to gate it at +{decider.limit:.0%}: "
                  f"{HOW_TO_QUIETEN}); {detail}")
    return GateVerdict(check.subject, status, check.current, check.baseline,
                       1 + check.threshold, unit, detail, failed, check.resolution, decides,
                       check.statistic)


def judge_tail(name: str, current_ms: Sequence[float], baseline_ms: Sequence[float],
               policy: GatePolicy, against: str = "baseline") -> GateVerdict | None:
    """The gated tail percentile of the end-to-end calls (None when none is gated): fails when
    this run's lower bound lies above `against`'s upper bound by more than the tail limit, so
    a change inside what the calls can tell never fails; too few calls on either side to bound
    it: 'too few samples', not gated."""
    percentile = policy.tail_percentile
    if not percentile:
        return None
    now, before = tail_bound(current_ms, percentile), tail_bound(baseline_ms, percentile)
    subject = f"{name} {now.label} end to end"
    if not (now.supported and before.supported):
        needed = samples_needed(percentile, now.confidence)
        short = " and ".join(f"{side} has {bound.samples}" for side, bound
                             in (("this run", now), (against, before)) if not bound.supported)
        return GateVerdict(
            subject, "too few samples", now.estimate_ms, before.estimate_ms, 0.0, "ms",
            f"a {now.confidence:.0%} bound of {now.label} needs {needed} calls, {short}: not "
            f"gated; to gate it, time at least {needed} calls (--perf-rounds, [tool.perfsuite"
            f".timing] rounds, or A/B pairs)", statistic="e2e", against=against)
    assert now.low_ms is not None and before.high_ms is not None  # supported
    limit = before.high_ms * (1 + policy.tail_max_increase)
    regressed = now.low_ms > limit and now.low_ms - before.high_ms > policy.floor_ms
    detail = (f"this run {now.describe()}; {against} {before.describe()}; fails when this run's "
              f"lower bound is above {against}'s upper bound by more than "
              f"+{policy.tail_max_increase:.0%}")
    return GateVerdict(subject, "regression" if regressed else "pass", now.estimate_ms,
                       before.estimate_ms, limit / before.estimate_ms, "ms", detail, regressed,
                       statistic="e2e", against=against)


def judge_identity(name: str, stored: Mapping[str, str], current: Mapping[str, str],
                   fails: bool) -> GateVerdict | None:
    """'not comparable' when anything that makes two numbers incomparable differs."""
    changes = [f"{key}: {stored.get(key, 'absent')} -> {current.get(key, 'absent')}"
               for key in sorted(set(stored) | set(current)) if stored.get(key) != current.get(key)]
    if not changes:
        return None
    detail = (f"{'; '.join(changes)} (baseline -> this run); not gated. Fix: run with the "
              f"baseline's settings, or re-record it: pytest --perf-save-baseline")
    return GateVerdict(name, "not comparable", 0.0, 0.0, 0.0, "", detail, fails)


def judge_size(subject: str, current: int, baseline: int, policy: GatePolicy) -> GateVerdict:
    threshold = 1.0 + policy.size_tolerance
    regressed = not 0 <= current <= baseline * threshold  # a negative size is no pass either
    return GateVerdict(subject, "regression" if regressed else "pass", float(current),
                       float(baseline), threshold, "bytes", failed=regressed)


def judge_drift(subject: str, current: float, baseline: float, policy: GatePolicy) -> GateVerdict:
    """Drift metrics where larger is worse (rel_l2, max_abs)."""
    limit = baseline * (1.0 + policy.drift_growth) + policy.drift_floor
    regressed = not 0 <= current <= limit  # NaN fails (outputs with NaN never pass), and a
    # negative drift is no measurement
    threshold = limit / baseline if baseline else float("inf")
    return GateVerdict(subject, "regression" if regressed else "pass", current, baseline,
                       threshold, "", f"limit {limit:.3e}", failed=regressed)
