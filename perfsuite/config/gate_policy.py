"""GatePolicy: the limits a gate holds a run to (`[tool.perfsuite.gate]`, a perf_gate marker or
the pytest_perfsuite_gate_policy hook); perfsuite.gate.decide applies them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GatePolicy:
    max_increase: float = 0.03  # the slowdown of the median that must be caught
    tail_max_increase: float = 0.05  # same for the tail (p90)
    floor_ms: float = 0.002  # changes smaller than this never fail
    noise_k: float = 3.0  # how many noise widths a change must exceed to be significant
    prior_weight: float = 2.0  # how many recordings the session kind's prior noise counts as
    size_tolerance: float = 0.01  # sizes may grow by 1%
    drift_growth: float = 0.25  # drift may grow by 25% of the baseline's (plus drift_floor)
    drift_floor: float = 1e-6
    ab_min_increase: float = 0.01  # A/B, GPU compute: fails when the ratio's lower bound is above
    # A/B, end to end (host clock): the same, higher: each worker process runs host code at a
    # speed of its own (memory placement; sd 1-2% between processes of the same code, measured
    # on a CPU), which the pairs of one run cannot see
    ab_e2e_min_increase: float = 0.03
    energy_max_increase: float = 0.05  # the rise of energy per inference that must be caught

    def ab_limit(self, statistic: str) -> float:
        """The A/B practical limit of `statistic` ('gpu' or 'e2e')."""
        return self.ab_min_increase if statistic == "gpu" else self.ab_e2e_min_increase
