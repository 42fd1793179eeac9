"""Which limits a benchmark is judged at: the configuration's defaults and per-benchmark
overrides, then the test item's perf_gate marker, then the pytest_perfsuite_gate_policy hook.
Both gates ask here; `perfsuite history` asks policy_for for its pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.config.parts import GateConfig

GATED_DRIFT = ("rel_l2", "max_abs")  # the drift metrics both gates judge


def policy_for(settings: GateConfig, benchmark: str,
               marker: Mapping[str, float] | None = None) -> GatePolicy:
    """The defaults, then the config override for this benchmark, then the perf_gate marker."""
    changes = {**settings.overrides.get(benchmark, {}), **(marker or {})}
    return replace(settings.policy, **changes) if changes else settings.policy


def chosen_policy(config: pytest.Config, settings: GateConfig, benchmark: str,
                  marker: Mapping[str, float] | None) -> GatePolicy:
    """The limits for `benchmark`: configuration and marker, then the policy hook's say."""
    policy = policy_for(settings, benchmark, marker)
    chosen = config.hook.pytest_perfsuite_gate_policy(config=config, benchmark=benchmark,
                                                      policy=policy)
    return chosen if chosen is not None else policy
