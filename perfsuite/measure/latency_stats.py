"""Latency statistics: pure functions of the samples, and the warnings that say how far the
numbers can be trusted (trtexec's two: unstable timing, enqueue-bound inference).

The median and p90 a benchmark reports are the medians of its trials' medians and p90s, the
statistics the gate compares.

Tail latency with honest bounds: a percentile of the timed calls and its distribution-free
confidence interval from order statistics (the count of calls below the true percentile is
binomial, whatever the latencies' distribution). A one-sided 99% upper bound of p99 exists only
from 459 calls on (the largest of n calls lies above the true p99 with probability 1 - 0.99^n);
p90 needs 44. Fewer calls cannot support the percentile: the table and the gates say so instead
of showing or judging a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TAIL_CONFIDENCE = 0.99  # each bound's, one-sided


def samples_needed(percentile: float, confidence: float = TAIL_CONFIDENCE) -> int:
    """The fewest calls whose largest is an upper `confidence` bound of `percentile` (0-100)."""
    q = percentile / 100
    return math.ceil(math.log(1 - confidence) / math.log(q))


def _binomial_cdf(n: int, q: float) -> list[float]:
    """P(Binomial(n, q) <= j) for j = 0..n, summed in log space (n up to 10^5 and beyond)."""
    log_q, log_p = math.log(q), math.log1p(-q)
    log_n = math.lgamma(n + 1)
    total, cdf = 0.0, []
    for j in range(n + 1):
        total += math.exp(log_n - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                          + j * log_q + (n - j) * log_p)
        cdf.append(min(total, 1.0))
    return cdf


@dataclass(frozen=True)
class TailBound:
    """The `percentile` of `samples` calls: its estimate and one-sided `confidence` bounds
    (None where the calls are too few to bound it)."""

    percentile: float
    samples: int
    estimate_ms: float
    low_ms: float | None
    high_ms: float | None
    confidence: float = TAIL_CONFIDENCE

    @property
    def supported(self) -> bool:
        return self.high_ms is not None and self.low_ms is not None

    @property
    def label(self) -> str:
        return f"p{self.percentile:g}"

    def describe(self) -> str:
        if not self.supported:
            return (f"{self.label} unsupported: {self.samples} calls, a {self.confidence:.0%} "
                    f"bound needs {samples_needed(self.percentile, self.confidence)}")
        return (f"{self.label} {self.estimate_ms:.4g} ms, {self.confidence:.0%} bounds "
                f"[{self.low_ms:.4g}, {self.high_ms:.4g}] over {self.samples} calls")


def tail_bound(samples_ms: Sequence[float], percentile: float,
               confidence: float = TAIL_CONFIDENCE) -> TailBound:
    """The `percentile` (0-100) of `samples_ms` with its distribution-free bounds: the upper is
    the smallest order statistic at or above the true percentile with probability
    >= `confidence`, the lower the largest at or below it."""
    ordered = sorted(samples_ms)
    n = len(ordered)
    if n == 0:
        return TailBound(percentile, 0, math.nan, None, None, confidence)
    q = percentile / 100
    estimate = ordered[min(n - 1, max(0, math.ceil(q * n) - 1))]
    cdf = _binomial_cdf(n, q)
    # X_(u) >= the true percentile when at most u - 1 calls fall below it: P = cdf[u - 1]
    high = next((ordered[u - 1] for u in range(1, n + 1) if cdf[u - 1] >= confidence), None)
    # X_(l) <= it when at least l calls fall below it: P = 1 - cdf[l - 1]
    low = next((ordered[k - 1] for k in range(n, 0, -1) if 1 - cdf[k - 1] >= confidence),
               None)
    return TailBound(percentile, n, estimate, low, high, confidence)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-call latencies, in milliseconds."""

    samples: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    cv: float  # standard deviation over mean
    trial_medians_ms: tuple[float, ...]
    trial_p90_ms: tuple[float, ...] = ()
    # p99's distribution-free 99% bounds (perfsuite.measure.latency_stats); None: too few calls
    p99_low_ms: float | None = None
    p99_high_ms: float | None = None

    @property
    def throughput_per_s(self) -> float:
        return 1000.0 / self.median_ms if self.median_ms > 0 else float("inf")

    def as_dict(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "median_ms": self.median_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "cv": self.cv,
            "trial_medians_ms": list(self.trial_medians_ms),
            "trial_p90_ms": list(self.trial_p90_ms),
            **({"p99_low_ms": self.p99_low_ms, "p99_high_ms": self.p99_high_ms}
               if self.p99_high_ms is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyStats:
        """The inverse of as_dict; ValueError, KeyError or TypeError when a number is missing,
        not finite, or not positive where a latency must be."""
        medians = tuple(positive(v, "trial_medians_ms") for v in data["trial_medians_ms"])
        if not medians:
            raise ValueError("trial_medians_ms is empty")
        return cls(
            samples=int(data["samples"]),
            median_ms=positive(data["median_ms"], "median_ms"),
            p90_ms=positive(data["p90_ms"], "p90_ms"),
            p99_ms=positive(data["p99_ms"], "p99_ms"),
            mean_ms=positive(data["mean_ms"], "mean_ms"),
            min_ms=positive(data["min_ms"], "min_ms"),
            cv=float(data["cv"]),
            trial_medians_ms=medians,
            trial_p90_ms=tuple(positive(v, "trial_p90_ms") for v in data["trial_p90_ms"]),
            p99_low_ms=(positive(data["p99_low_ms"], "p99_low_ms")
                        if data.get("p99_low_ms") is not None else None),
            p99_high_ms=(positive(data["p99_high_ms"], "p99_high_ms")
                         if data.get("p99_high_ms") is not None else None),
        )


def positive(value: Any, name: str) -> float:
    """`value` as a float; ValueError unless it is a finite number above zero."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
    return number


def summarize(samples_s: Sequence[float], trials: int = 1) -> LatencyStats:
    """Statistics of per-call seconds; `trials` consecutive equal chunks give per-trial medians.

    The median and p90 are the medians of the trials' medians and p90s: the statistics the
    gate compares, so the table, the reports, the baseline and `perfsuite history` all show the
    number that was judged (a bimodal CPU benchmark's median of all calls can differ from it)."""
    if not samples_s:
        raise ValueError("no latency samples to summarize")
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    chunks = np.array_split(ms, max(1, min(trials, ms.size)))
    medians = tuple(float(np.median(chunk)) for chunk in chunks)
    p90s = tuple(float(np.percentile(chunk, 90)) for chunk in chunks)
    mean = float(ms.mean())
    p99 = tail_bound(ms.tolist(), 99)
    return LatencyStats(
        samples=int(ms.size),
        median_ms=float(np.median(medians)),
        p90_ms=float(np.median(p90s)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=mean,
        min_ms=float(ms.min()),
        cv=float(ms.std() / mean) if mean > 0 else 0.0,
        trial_medians_ms=medians,
        trial_p90_ms=p90s,
        p99_low_ms=p99.low_ms if p99.supported else None,
        p99_high_ms=p99.high_ms if p99.supported else None,
    )


def p99_cell(stats: LatencyStats | None) -> str:
    """The results table's p99: the percentile with its upper bound, or the calls it needs."""
    if stats is None:
        return "n/a"
    if stats.p99_high_ms is None:
        return f"needs {samples_needed(99, TAIL_CONFIDENCE)} calls"
    return f"{stats.p99_ms:.3f} (<={stats.p99_high_ms:.3f})"


def trials_cv(stats: LatencyStats) -> float:
    """The coefficient of variation of the trials' medians (0 with one trial)."""
    medians = np.asarray(stats.trial_medians_ms, dtype=np.float64)
    if medians.size < 2 or medians.mean() <= 0:
        return 0.0
    return float(medians.std(ddof=1) / medians.mean())


# trtexec's two warnings: unstable timing and enqueue-bound inference.
UNSTABLE_CV = 0.025
ENQUEUE_BOUND_RATIO = 0.8
WARNING_LABELS = ("unstable", "enqueue-bound")  # the words the results table's notes show


def timing_warnings(host: LatencyStats | None, gpu: LatencyStats | None,
                    enqueue: LatencyStats | None) -> tuple[str, ...]:
    """Human-readable warnings about how far the numbers can be trusted."""
    found = []
    judged, label = (gpu, "GPU compute") if gpu is not None else (host, "end-to-end")
    if judged is not None:
        # Between trials where there are several: per-call jitter (every CPU benchmark's) is
        # what the median is for; trials that disagree mean the machine changed during the run.
        cv, what = (trials_cv(judged), "trials' medians") if len(judged.trial_medians_ms) > 1 \
            else (judged.cv, "calls")
        if cv > UNSTABLE_CV:
            found.append(f"{WARNING_LABELS[0]}: {label} {what} vary by CV {cv:.1%} > "
                         f"{UNSTABLE_CV:.1%}")
    if gpu is not None and enqueue is not None and (
        enqueue.median_ms > ENQUEUE_BOUND_RATIO * gpu.median_ms
    ):
        found.append(f"{WARNING_LABELS[1]}: host launch {enqueue.median_ms:.3f} ms vs GPU compute "
                     f"{gpu.median_ms:.3f} ms (> {ENQUEUE_BOUND_RATIO:g}x)")
    return tuple(found)
