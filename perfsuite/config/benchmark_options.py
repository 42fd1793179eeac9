"""pytest-benchmark's options as its users expect them when perfsuite's benchmarks run.

- `--benchmark-compare` (bare) gates against perfsuite's baseline, and pytest-benchmark's own
  comparison (with its "Can't compare" warning) stays quiet; given back when no perf test runs.
- `--benchmark-compare=NUM` compares with pytest-benchmark's store, as pytest-benchmark does;
  perfsuite's baseline gate stays off for that run.
- Options whose meaning perfsuite's fixed-round timing cannot honour are refused, naming the
  perfsuite equivalent.
- pytest-benchmark's own table leaves out perfsuite's benchmarks (perfsuite prints one table).

This module reaches into pytest-benchmark's session object (`config._benchmarksession`); the
supported versions are pinned in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

# pytest-benchmark options perfsuite's timing cannot honour: (option dest, its default,
# flag, what to use instead). Defaults are pytest-benchmark 4-5's after its type conversion
# (times stay strings).
_TIMING_OPTIONS = (
    ("benchmark_min_rounds", 5, "--benchmark-min-rounds",
     "perfsuite times a fixed number of rounds: use --perf-rounds N "
     "(or [tool.perfsuite.timing] rounds)"),
    ("benchmark_max_time", "1.0", "--benchmark-max-time",
     "perfsuite times a fixed number of rounds, not a time budget: use --perf-rounds N"),
    ("benchmark_min_time", "0.000005", "--benchmark-min-time",
     "perfsuite times one call per round: leave it out"),
    ("benchmark_calibration_precision", 10, "--benchmark-calibration-precision",
     "perfsuite times one call per round, uncalibrated: leave it out"),
    ("benchmark_precision", None, "--benchmark-precision",
     "perfsuite times a fixed number of rounds: use --perf-rounds N"),
    ("benchmark_warmup_iterations", 100000, "--benchmark-warmup-iterations",
     "perfsuite warms up by time: set [tool.perfsuite.timing] warmup_seconds and "
     "warmup_min_runs"),
)


@dataclass(frozen=True)
class CompareRequest:
    """What `--benchmark-compare` asked for: nothing, perfsuite's baseline (bare), or a run of
    pytest-benchmark's store (`=NUM`)."""

    baseline: bool = False  # bare --benchmark-compare: perfsuite's baseline decides
    stored_run: str | None = None  # --benchmark-compare=NUM: pytest-benchmark compares

    @property
    def note(self) -> str | None:
        if self.stored_run is None:
            return None
        return (f"perfsuite: --benchmark-compare={self.stored_run} compares with pytest-benchmark's "
                "store; perfsuite's baseline gate is off for this run (bare --benchmark-compare "
                "turns it on).")


def take_compare(config: pytest.Config) -> CompareRequest:
    """Read `--benchmark-compare` before pytest-benchmark does (its configure hook runs last) and,
    when it is bare, keep pytest-benchmark from comparing against its own store as well."""
    value = config.getoption("benchmark_compare", default=None)
    if value is True:
        config.option.benchmark_compare = []
        return CompareRequest(baseline=True)
    if isinstance(value, str) and value:
        return CompareRequest(stored_run=value)
    return CompareRequest()


def give_back_compare(config: pytest.Config) -> None:
    """No perf test runs: a bare `--benchmark-compare` is pytest-benchmark's again."""
    config.option.benchmark_compare = True
    session = getattr(config, "_benchmarksession", None)
    if session is not None:
        session.compare = True
        session.handle_loading()


def refusals(config: pytest.Config, compare: CompareRequest) -> list[str]:
    """pytest-benchmark options given for this run that perfsuite's benchmarks cannot honour."""
    found = []
    for dest, default, flag, instead in _TIMING_OPTIONS:
        value = config.getoption(dest, default=default)
        if value != default:
            found.append(f"{flag}={value}: {instead}.")
    checks = config.getoption("benchmark_compare_fail", default=None)
    if checks and compare.stored_run is None:
        found.append(
            f"--benchmark-compare-fail={' '.join(map(_expression, checks))}: perfsuite gates "
            "against its own baseline with a noise-aware rule; set the limit with "
            f"{_equivalent(checks)} in [tool.perfsuite.gate] (or a perf_gate marker). To gate "
            "on pytest-benchmark's store instead, name a saved run: --benchmark-compare=NUM."
        )
    return found


def _is_percentage(check: Any) -> bool:
    return type(check).__name__.startswith("Percentage")


def _expression(check: Any) -> str:
    unit = "%" if _is_percentage(check) else ""
    return f"{getattr(check, 'field', '?')}:{getattr(check, 'threshold', '?'):g}{unit}"


def _equivalent(checks: Iterable[Any]) -> str:
    percentages = [check.threshold for check in checks if _is_percentage(check)]
    if percentages:
        return f"max_increase = {min(percentages) / 100:g}"
    return "max_increase (a fraction: 0.05 for +5%)"


def hide_from_table(config: pytest.Config, nodeids: set[str]) -> None:
    """Leave perfsuite's benchmarks (by test node id) out of pytest-benchmark's table; its JSON
    files (--benchmark-json, --benchmark-save) keep them."""
    session = getattr(config, "_benchmarksession", None)
    groups = getattr(session, "groups", None)
    if session is None or not groups or not nodeids:
        return
    kept = []
    for name, benchmarks in groups:
        others = [bench for bench in benchmarks if bench.get("fullname") not in nodeids]
        if others:
            kept.append((name, others))
    session.groups = kept
