"""Step changes in a benchmark's history of run medians (`perfsuite history`).

Binary segmentation on log values (a step is a ratio): in a stretch of n points the split that
maximises k (n - k) / n (mean after - mean before)^2 (the least-squares place of one step) is
tested with Student's two-sample t-test, its p-value multiplied by the number of splits it was
chosen among (Bonferroni: the best of many splits is not one test); accepted below `alpha`,
both sides are searched again. Then each change point is re-tested between its neighbours and
the weakest failing one dropped until all hold. Deterministic: no permutations. A side needs
`min_size` points; each standard deviation is floored at `min_sd` (log units) so that identical
values cannot give infinite confidence. Measured on synthetic histories in docs/bisect.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChangePoint:
    """A step in a history: `index` is the first point at the new level."""

    index: int
    ratio: float  # geometric mean after / before, over the neighbouring stretches
    confidence: float  # 1 - the corrected p-value of its re-test


def change_points(values: Sequence[float], alpha: float = 0.05, min_size: int = 3,
                  min_sd: float = 1e-4) -> list[ChangePoint]:
    """The change points of `values` (positive, oldest first), in order."""
    given = np.asarray(values, dtype=float)
    if given.ndim != 1 or not np.all(np.isfinite(given) & (given > 0)):
        raise ValueError("change_points needs a sequence of finite positive values")
    logs = np.log(given)
    found: list[int] = []
    _search(logs, 0, len(logs), alpha, min_size, min_sd, found)
    cuts = sorted(found)
    while cuts:
        bounds = [0, *cuts, len(logs)]
        p_values = [_split_p(logs[bounds[i - 1]:bounds[i + 1]], bounds[i] - bounds[i - 1],
                             min_size, min_sd) for i in range(1, len(bounds) - 1)]
        worst = int(np.argmax(p_values))
        if p_values[worst] < alpha:
            return [ChangePoint(cut, math.exp(float(logs[cut:bounds[i + 2]].mean()
                                                     - logs[bounds[i]:cut].mean())), 1.0 - p)
                    for i, (cut, p) in enumerate(zip(cuts, p_values))]
        del cuts[worst]
    return []


def _search(logs: np.ndarray, low: int, high: int, alpha: float, min_size: int, min_sd: float,
            found: list[int]) -> None:
    stretch = logs[low:high]
    split = _best_split(stretch, min_size)
    if split is not None and _split_p(stretch, split, min_size, min_sd) < alpha:
        found.append(low + split)
        _search(logs, low, low + split, alpha, min_size, min_sd, found)
        _search(logs, low + split, high, alpha, min_size, min_sd, found)


def _best_split(stretch: np.ndarray, min_size: int) -> int | None:
    """The least-squares place of one step, the earliest of ties; None when too short."""
    n = len(stretch)
    if n < 2 * min_size:
        return None
    sums = np.cumsum(stretch)
    k = np.arange(min_size, n - min_size + 1)
    before = sums[k - 1] / k
    after = (sums[-1] - sums[k - 1]) / (n - k)
    return int(k[int(np.argmax(k * (n - k) / n * (after - before) ** 2))])


def _split_p(stretch: np.ndarray, split: int, min_size: int, min_sd: float) -> float:
    """Student's t-test p-value of the split, times the splits it was chosen among."""
    choices = max(1, len(stretch) - 2 * min_size + 1)
    return min(1.0, choices * step_p_value(stretch, split, min_sd))


def step_p_value(logs: np.ndarray, split: int, min_sd: float = 1e-4) -> float:
    """Student's two-sided t-test p-value of one step in `logs` at `split`, uncorrected for
    how the split was chosen; each standard deviation floored at `min_sd`."""
    before, after = logs[:split], logs[split:]
    df = len(logs) - 2
    pooled = (((before - before.mean()) ** 2).sum() + ((after - after.mean()) ** 2).sum()) / df
    error = math.sqrt(max(float(pooled), min_sd ** 2) * (1 / len(before) + 1 / len(after)))
    return student_t_two_sided(float(after.mean() - before.mean()) / error, df)


def student_t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom (no scipy):
    the regularised incomplete beta I_{df / (df + t^2)}(df / 2, 1 / 2)."""
    if math.isinf(t):
        return 0.0
    return _incomplete_beta(df / 2, 0.5, df / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0 or x >= 1.0:
        return max(0.0, min(1.0, x))
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The incomplete beta's continued fraction (modified Lentz)."""
    tiny = 1e-300

    def guard(value: float) -> float:
        return tiny if abs(value) < tiny else value

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1))
    result = d
    for m in range(1, 400):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 / guard(1.0 + numerator * d)
            c = guard(1.0 + numerator / c)
            result *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return result
