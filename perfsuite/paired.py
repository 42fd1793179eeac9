"""A/B timing: the base and the current runner measured in alternating trials, judged on the
paired ratios of their trial medians.

Order ABBA ABBA ...: each pair swaps which side goes first, so a drift of the machine's state
within a run (clocks, caches, another process) lands on both sides alike. Each pair gives one
ratio current/base of trial medians; the verdict is a one-sided confidence bound on the mean of
their logarithms (Student's t over the pairs). A change fails when the lower bound of the ratio
lies above 1 + `ab_min_increase`: significant at `confidence` and at least that large.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Clock = Callable[[], float]
# One-sided normal quantiles used below; t quantiles come from Hill's expansion around them.
_Z = {0.95: 1.6448536, 0.99: 2.3263479}


def t_quantile(confidence: float, dof: int) -> float:
    """Student's t quantile (one-sided `confidence` of 0.95 or 0.99) for `dof` >= 1 degrees of
    freedom; Hill's (1970) expansion: within 0.1% of the exact value from 9 degrees up, 2% at
    3 (A/B runs use at least 6 pairs)."""
    z = _Z[confidence]
    v = float(dof)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


@dataclass(frozen=True)
class PairedTrials:
    """Trial medians (ms) per side, pair by pair; `statistic` is 'gpu' or 'e2e'."""

    statistic: str
    base_ms: tuple[float, ...]
    current_ms: tuple[float, ...]
    base_samples_ms: tuple[float, ...] = ()  # every timed call, for the tables
    current_samples_ms: tuple[float, ...] = ()


def alternate(base: Callable[[int], Sequence[float]], current: Callable[[int], Sequence[float]],
              pairs: int, rounds_per_trial: int, statistic: str) -> PairedTrials:
    """Run `pairs` pairs of trials, ABBA order; each callable times `rounds_per_trial` calls and
    returns their durations in seconds."""
    base_ms: list[float] = []
    current_ms: list[float] = []
    all_base: list[float] = []
    all_current: list[float] = []
    for pair in range(pairs):
        sides = ((base, base_ms, all_base), (current, current_ms, all_current))
        for measure, medians, every in sides if pair % 2 == 0 else sides[::-1]:
            samples = [s * 1e3 for s in measure(rounds_per_trial)]
            medians.append(float(np.median(samples)))
            every.extend(samples)
    return PairedTrials(statistic, tuple(base_ms), tuple(current_ms), tuple(all_base),
                        tuple(all_current))


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
    ratio: float
    low: float  # lower confidence bound of the ratio
    high: float
    pairs: int
    base_median_ms: float
    current_median_ms: float
    resolution: float  # the smallest slowdown caught 95% of the time at this noise
    status: str  # "pass" | "regression"
    confidence: float

    @property
    def failed(self) -> bool:
        return self.status == "regression"

    def describe(self) -> str:
        what = "GPU compute" if self.statistic == "gpu" else "end to end"
        verb = "REGRESSED" if self.failed else "ok"
        return (f"{self.name} {what} vs {self.ref} {verb}: x{self.ratio:.3f} "
                f"[{self.low:.3f}, {self.high:.3f}] ({self.confidence:.0%} bounds over "
                f"{self.pairs} ABBA pairs; {self.current_median_ms:.3f} ms vs "
                f"{self.base_median_ms:.3f} ms); resolves +{self.resolution:.1%}")


def judge_pairs(name: str, ref: str, trials: PairedTrials, min_increase: float,
                confidence: float = 0.99) -> PairedVerdict:
    """The verdict on paired trial medians: a regression when the ratio's lower bound exceeds
    1 + `min_increase`."""
    logs = np.log(np.asarray(trials.current_ms) / np.asarray(trials.base_ms))
    n = logs.size
    mean = float(logs.mean())
    spread = float(logs.std(ddof=1)) if n > 1 else math.inf
    t = t_quantile(confidence, max(n - 1, 1))
    error = spread / math.sqrt(n)
    low, high = math.exp(mean - t * error), math.exp(mean + t * error)
    detect = t + t_quantile(0.95, max(n - 1, 1))  # significant, and caught 95% of the time
    resolution = math.expm1(math.log1p(min_increase) + detect * error)
    regressed = low > 1 + min_increase
    return PairedVerdict(name, ref, trials.statistic, math.exp(mean), low, high, n,
                         float(np.median(trials.base_ms)), float(np.median(trials.current_ms)),
                         resolution, "regression" if regressed else "pass", confidence)
