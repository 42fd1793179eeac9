"""Step changes in a benchmark's history of run medians (`perfsuite history`).

Binary segmentation on log values (a step is a ratio): in a stretch of n points the split with
the largest Student's t (two samples, pooled variance) is the candidate step, and its
significance is that of the largest |t| over every split of n independent normal points: the
null distribution of the maximum, drawn once per length from a seeded generator (so results are
deterministic) instead of a Bonferroni bound, which treats the neighbouring splits' t values as
if they were independent and costs power (docs/bisect.md measures both). Accepted below `alpha`,
both sides are searched again. Then each change point is re-tested between its neighbours and
the weakest failing one dropped until all hold. A side needs `min_size` points; each variance
is floored at `min_sd` (log units) so that identical values cannot give infinite confidence.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NULL_DRAWS = 4000  # simulated histories per length: p-values resolved to 1 / 4001


@dataclass(frozen=True)
class ChangePoint:
    """A step in a history: `index` is the first point at the new level."""

    index: int
    ratio: float  # geometric mean after / before, over the neighbouring stretches
    confidence: float  # 1 - the p-value of its re-test between its neighbours


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
    if len(stretch) < 2 * min_size:
        return
    t = split_t(stretch[np.newaxis, :], min_size, min_sd)[0]
    split = min_size + int(np.argmax(np.abs(t)))
    if _split_p(stretch, split, min_size, min_sd) < alpha:
        found.append(low + split)
        _search(logs, low, low + split, alpha, min_size, min_sd, found)
        _search(logs, low + split, high, alpha, min_size, min_sd, found)


def split_t(rows: np.ndarray, min_size: int, min_sd: float = 1e-4) -> np.ndarray:
    """Student's t of a step at each split min_size..n - min_size of every row (after minus
    before, pooled variance floored at min_sd squared)."""
    n = rows.shape[1]
    k = np.arange(min_size, n - min_size + 1)
    sums, squares = np.cumsum(rows, axis=1), np.cumsum(rows * rows, axis=1)
    total, total_squares = sums[:, -1:], squares[:, -1:]
    before_sum, before_squares = sums[:, k - 1], squares[:, k - 1]
    before, after = before_sum / k, (total - before_sum) / (n - k)
    spread = (before_squares - k * before ** 2) + (total_squares - before_squares
                                                    - (n - k) * after ** 2)
    pooled = np.maximum(spread / (n - 2), min_sd ** 2)
    return (after - before) / np.sqrt(pooled * (1 / k + 1 / (n - k)))


def _split_p(stretch: np.ndarray, split: int, min_size: int, min_sd: float) -> float:
    """The p-value of a step at `split`: how often n independent normal points give some
    split a |t| at least as large."""
    t = abs(float(split_t(stretch[np.newaxis, :], min_size, min_sd)[0, split - min_size]))
    maxima = _null_maxima(len(stretch), min_size)
    beyond = len(maxima) - int(np.searchsorted(maxima, t, side="left"))
    return (beyond + 1) / (len(maxima) + 1)


@functools.lru_cache(maxsize=256)
def _null_maxima(n: int, min_size: int) -> np.ndarray:
    """The sorted largest |t| over the splits of NULL_DRAWS seeded normal histories of n."""
    generator = np.random.default_rng([n, min_size])
    maxima = [np.abs(split_t(generator.standard_normal((500, n)), min_size, 0.0)).max(axis=1)
              for _ in range(NULL_DRAWS // 500)]
    return np.sort(np.concatenate(maxima))


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
