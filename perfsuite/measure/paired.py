"""A/B timing: the base and the current runner measured in alternating trials, judged on the
paired ratios of their trial medians.

Order ABBA ABBA ...: each pair swaps which side goes first, so a drift of the machine's state
within a run (clocks, caches, another process) lands on both sides alike. With one call per
trial (the default) a burst of load longer than a call hits both calls of a pair. Each pair
gives one ratio current/base; the verdict is on the median of their logarithms, with the
distribution-free confidence interval of a median (order statistics, the sign test's binomial
law): bursts that make single pairs wild move it little, and no noise model is assumed. A change
fails when the lower bound of the ratio lies above 1 + the statistic's practical limit
(`ab_min_increase` for GPU compute, `ab_e2e_min_increase` for end to end). Where both are timed
(CUDA), each gates at its share of the benchmark's confidence (GatePolicy.ab_confidence): a
slowdown near end to end's higher limit is still caught by GPU compute's, and a GPU compute
interval widened by launch jitter does not hide one that end to end sees.

Sequential: pairs are taken in blocks (`Sequential`), and after each block from `min_pairs` on
the comparison stops once the answer is clear: the ratio's lower bound at the stricter
`look_confidence` above 1 + the limit (clearly slower), or its upper bound at
`within_confidence` below it (clearly within the limit). Otherwise it runs to `pairs`, where it
is judged at `confidence` as before. An interval at the stricter confidence holds the final
one, so an early "slower" never contradicts the verdict; those looks cost at most `looks x (1 -
look_confidence)` in false alarms, which the A/B gate splits from the run's budget. Stopping
"within" can cause no false alarm, only a missed slowdown, and only of one near the limit (a
slowdown of twice the limit lies below 1 + the limit in under 1% of looks): it takes the
plainer 99%.
"""

from __future__ import annotations

import math
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Clock = typing.Callable[[], float]  # typing's: subscriptable at run time on Python 3.8
_Z95, _Z99 = 1.6448536, 2.3263479


def order_statistic_bound(pairs: int, confidence: float) -> int:
    """The largest k with P(Binomial(pairs, 1/2) <= k) <= 1 - confidence: the (k+1)-th smallest
    of `pairs` values lies below their population median with probability >= `confidence`."""
    below, k, whole = 0, -1, 2**pairs  # exact integers: 2.0 ** pairs overflows from 1024
    for j in range(pairs + 1):
        below += math.comb(pairs, j)
        if below / whole > 1 - confidence:
            break
        k = j
    return k


@dataclass(frozen=True)
class PairedTrials:
    """Trial medians (ms) per side, pair by pair; `statistic` is 'gpu' or 'e2e'."""

    statistic: str
    base_ms: tuple[float, ...]
    current_ms: tuple[float, ...]
    base_samples_ms: tuple[float, ...] = ()  # every timed call, for the tables
    current_samples_ms: tuple[float, ...] = ()
    stopped: str = ""  # why it stopped before its bound ('' when it ran every pair)
    bound: int = 0  # the most pairs it could have taken (0: as many as it took)
    calls_per_trial: int = 1  # timed calls in each trial (its median is the trial's)


@dataclass(frozen=True)
class Sequential:
    """When a comparison may stop early: looks every `block` pairs from `min_pairs` on, each at
    `look_confidence`, against the statistic's practical `limit` (a fraction)."""

    limit: float
    min_pairs: int = 20
    block: int = 10
    look_confidence: float = 0.999  # for "clearly slower": what a false alarm costs
    within_confidence: float = 0.95  # for "clearly within": a stop that fails nothing


def clear_answer(base_ms: Sequence[float], current_ms: Sequence[float], rule: Sequential) -> str:
    """Why the pairs so far already decide at `rule.look_confidence` ('' when they do not)."""
    if len(base_ms) < rule.min_pairs:
        return ""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.asarray(current_ms) / np.asarray(base_ms)
    if not np.all(np.isfinite(ratios) & (ratios > 0)):
        return "a timing was not finite"
    logs = np.sort(np.log(ratios))
    slower = order_statistic_bound(logs.size, rule.look_confidence)
    if slower >= 0 and math.exp(logs[slower]) > 1 + rule.limit:
        return f"clearly slower than +{rule.limit:.0%}"
    within = order_statistic_bound(logs.size, rule.within_confidence)
    if within >= 0 and math.exp(logs[logs.size - 1 - within]) < 1 + rule.limit:
        return f"clearly within +{rule.limit:.0%}"
    return ""


def alternate(base: Callable[[int], Sequence[float]], current: Callable[[int], Sequence[float]],
              pairs: int, rounds_per_trial: int, statistic: str,
              rule: Sequential | None = None, max_seconds: float = math.inf,
              clock: Clock = time.perf_counter) -> PairedTrials:
    """Run up to `pairs` pairs of trials, ABBA order; each callable times `rounds_per_trial`
    calls and returns their durations in seconds. With a `rule`, stop at the first look (every
    `rule.block` pairs from `rule.min_pairs`) whose answer is clear, or at the first look after
    `max_seconds` of pairs (`clock`): the cost of a slow benchmark's comparison is bounded, and
    its verdict's resolution says what the pairs taken can tell."""
    started = clock()
    base_ms: list[float] = []
    current_ms: list[float] = []
    all_base: list[float] = []
    all_current: list[float] = []
    stopped = ""
    for pair in range(pairs):
        sides = ((base, base_ms, all_base), (current, current_ms, all_current))
        for measure, medians, every in sides if pair % 2 == 0 else sides[::-1]:
            samples = [s * 1e3 for s in measure(rounds_per_trial)]
            medians.append(float(np.median(samples)))
            every.extend(samples)
        taken = pair + 1
        if (rule is not None and taken < pairs and taken >= rule.min_pairs
                and (taken - rule.min_pairs) % rule.block == 0):
            stopped = clear_answer(base_ms, current_ms, rule)
            if not stopped and clock() - started > max_seconds:
                stopped = f"its {max_seconds:g} s of pairs spent"
            if stopped:
                break
    return PairedTrials(statistic, tuple(base_ms), tuple(current_ms), tuple(all_base),
                        tuple(all_current), stopped, pairs if rule is not None else 0,
                        rounds_per_trial)


def host_timed(call: Callable[[], object], clock: Clock) -> Callable[[int], list[float]]:
    """Times `rounds` calls of `call` one by one with `clock` (seconds)."""

    def measure(rounds: int) -> list[float]:
        durations = []
        for _ in range(rounds):
            started = clock()
            call()
            durations.append(clock() - started)
        return durations

    return measure


@dataclass(frozen=True)
class PairedVerdict:
    """How the current side compares with the base: ratio current/base and its interval."""

    name: str
    ref: str
    statistic: str
    ratio: float  # the median of the pairs' ratios
    low: float  # lower confidence bound of the ratio
    high: float
    pairs: int
    base_median_ms: float
    current_median_ms: float
    resolution: float  # the smallest slowdown caught 95% of the time at this noise
    status: str  # "pass" | "regression"
    confidence: float
    stopped: str = ""  # why the pairs stopped before their bound ('' when all were taken)
    bound: int = 0  # the most pairs the comparison could take

    @property
    def pairs_used(self) -> str:
        """'40 of 150 ABBA pairs, clearly within +3%', or '150 ABBA pairs'."""
        if self.bound > self.pairs:
            return f"{self.pairs} of {self.bound} ABBA pairs, {self.stopped}"
        return f"{self.pairs} ABBA pairs"

    @property
    def failed(self) -> bool:
        """A regression, or a timing that is not finite."""
        return self.status in ("regression", "not finite")

    @property
    def width(self) -> float:
        """The interval's width in log units: what `decide` compares."""
        return math.log(self.high / self.low) if self.low > 0 else math.inf

    def describe(self) -> str:
        what = "GPU compute" if self.statistic == "gpu" else "end to end"
        verb = {"regression": "REGRESSED", "not finite": "NOT FINITE (a timing was NaN, "
                "infinite or not above 0)"}.get(self.status, "ok")
        return (f"{self.name} {what} vs {self.ref} {verb}: x{self.ratio:.3f} "
                f"[{self.low:.3f}, {self.high:.3f}] (median ratio, {self.confidence * 100:.4g}% bounds "
                f"over {self.pairs_used}; {self.current_median_ms:.3f} ms vs "
                f"{self.base_median_ms:.3f} ms); resolves +{self.resolution:.1%}")


def judge_pairs(name: str, ref: str, trials: PairedTrials, min_increase: float,
                confidence: float = 0.99) -> PairedVerdict:
    """The verdict on paired trial medians: a regression when the lower `confidence` bound of
    the median ratio exceeds 1 + `min_increase`."""
    with np.errstate(divide="ignore", invalid="ignore"):  # refused just below
        ratios = np.asarray(trials.current_ms) / np.asarray(trials.base_ms)
    if ratios.size == 0 or not np.all(np.isfinite(ratios) & (ratios > 0)):
        return PairedVerdict(name, ref, trials.statistic, math.nan, math.nan, math.nan,
                             ratios.size, math.nan, math.nan, math.inf, "not finite", confidence)
    logs = np.sort(np.log(ratios))
    n = logs.size
    k = order_statistic_bound(n, confidence)
    median = float(np.median(logs))
    low, high = (math.exp(logs[k]), math.exp(logs[n - 1 - k])) if k >= 0 else (0.0, math.inf)
    # the interval's half-width in noise widths is z99; catching a change 95% of the time
    # takes z99 + z95 of them above the limit
    half = (math.log(high) - math.log(low)) / 2 if k >= 0 else math.inf
    resolution = math.expm1(math.log1p(min_increase) + half * (1 + _Z95 / _Z99))
    regressed = low > 1 + min_increase
    return PairedVerdict(name, ref, trials.statistic, math.exp(median), low, high, n,
                         float(np.median(trials.base_ms)), float(np.median(trials.current_ms)),
                         resolution, "regression" if regressed else "pass", confidence,
                         stopped=trials.stopped, bound=trials.bound)


def headline(verdicts: Sequence[PairedVerdict]) -> PairedVerdict:
    """The verdict a comparison is shown by (table cell, history): the first that failed, else
    the statistic with the finest resolution."""
    return next((v for v in verdicts if v.failed), None) or min(verdicts,
                                                               key=lambda v: v.resolution)
