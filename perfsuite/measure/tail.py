"""Tail latency with honest bounds: a percentile of the timed calls and its distribution-free
confidence interval from order statistics (the count of calls below the true percentile is
binomial, whatever the latencies' distribution).

A one-sided 99% upper bound of p99 exists only from 459 calls on (the largest of n calls lies
above the true p99 with probability 1 - 0.99^n); p90 needs 44. Fewer calls cannot support the
percentile: the table and the gates say so instead of showing or judging a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
