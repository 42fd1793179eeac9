"""Settling a bisection step the A/B gate alone would get wrong, by the level of its ratios:
BAD's (step 0's median pair ratio, per benchmark and statistic) or GOOD's (1), on a log scale.

- A step not clear at its bound (neither slower nor clearly within) is slower when its ratio
  is nearer BAD's level for any benchmark bisected.
- A step slower at the gate but nearer GOOD's level for every benchmark bisected is doubtful
  (a false alarm looks like this; a commit with part of the slowdown can too): the command
  measures it once more and the second answer stands.
"""

from __future__ import annotations

import dataclasses
import math

from perfsuite.bisect.step import StepResult

DOUBT = "slower at the gate, but nearer GOOD's level: measured again"


def unclear(step: StepResult) -> bool:
    """Measured, not slower, and not clearly within the limits: the bound came first."""
    return step.outcome == "same" and not step.clear


def nearer_bad(step: StepResult, reference: StepResult) -> list[str]:
    """The comparisons ('<case id> <statistic>') of the benchmarks bisected whose ratio is at
    least half way (geometrically) from GOOD's level to BAD's."""
    return [key for key, bad in reference.levels
            if key.split(" ")[0] in reference.regressed and bad > 1
            and (level := step.level(key)) is not None
            and math.log(level) >= math.log(bad) / 2 - 1e-9]


def by_level(step: StepResult, reference: StepResult) -> StepResult:
    """A step not clear at its bound, settled by the level it is nearer; others unchanged."""
    if not unclear(step):
        return step
    nearer = nearer_bad(step, reference)
    said = ", ".join(f"{key} x{level:.3f} (BAD x{reference.level(key) or math.nan:.3f})"
                     for key, level in step.levels
                     if key.split(" ")[0] in reference.regressed)
    return dataclasses.replace(
        step, outcome="slower" if nearer else "same",
        regressed=tuple(sorted({key.split(" ")[0] for key in nearer})),
        note=f"not clear at its bound; nearer {'BAD' if nearer else 'GOOD'}: {said}")


def doubtful(step: StepResult, reference: StepResult) -> bool:
    """Slower at the gate, yet nearer GOOD's level for every benchmark bisected."""
    return step.outcome == "slower" and not step.note and not nearer_bad(step, reference)
