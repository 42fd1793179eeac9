"""GatePolicy: the limits a gate holds a run to (`[tool.perfsuite.gate]`, a perf_gate marker or
the pytest_perfsuite_gate_policy hook); perfsuite.gate.decide applies them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import NormalDist

CHECKS_PER_BENCHMARK = 4  # the latency statistics a benchmark can fail on: median and p90 of
# GPU compute and of end to end


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
    # a tail percentile of the end-to-end calls (90, 99, ...) gated by its distribution-free
    # bounds at tail_max_increase (perfsuite.measure.latency_stats); 0: not gated
    tail_percentile: float = 0.0
    # the share of unchanged whole runs allowed to flag anything: with many benchmarks each
    # check's bar is raised (Bonferroni over the run's checks; at_scale); 0: per check only
    run_false_alarms: float = 0.01

    def at_scale(self, benchmarks: int) -> GatePolicy:
        """This policy for a run of `benchmarks` latency benchmarks: `noise_k` raised so that
        the run's checks together flag an unchanged run at most `run_false_alarms` of the time
        (normal noise; never below the configured noise_k); with one benchmark, as configured."""
        if not self.run_false_alarms or benchmarks <= 1:
            return self
        per_check = self.run_false_alarms / (benchmarks * CHECKS_PER_BENCHMARK)
        return replace(self, noise_k=max(self.noise_k, NormalDist().inv_cdf(1 - per_check)))

    def ab_confidence(self, benchmarks: int, statistics: int = 1) -> float:
        """The confidence of one statistic's final A/B interval in a run of `benchmarks` latency
        benchmarks: 99% a benchmark, or more where the run's budget `run_false_alarms` asks
        (half the budget for the final looks, half for the early ones), shared among the
        `statistics` that gate each benchmark (GPU compute and end to end on CUDA)."""
        alarms = 0.01
        if self.run_false_alarms and benchmarks > 1:
            alarms = min(alarms, self.run_false_alarms / (2 * benchmarks))
        return 1 - alarms / max(1, statistics)

    def ab_limit(self, statistic: str) -> float:
        """The A/B practical limit of `statistic` ('gpu' or 'e2e')."""
        return self.ab_min_increase if statistic == "gpu" else self.ab_e2e_min_increase
