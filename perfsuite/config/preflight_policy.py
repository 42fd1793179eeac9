"""The `[tool.perfsuite.preflight]` table: what the pre-flight checks demand and what a failure
does (perfsuite.machine.preflight runs the checks)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perfsuite.config.validate import check_choice, check_int, check_keys, check_number

ON_FAILURE = ("auto", "warn", "skip", "fail")
PREFLIGHT_KEYS = {"power_mode", "on_failure", "max_gpu_load", "max_other_cpu"}


@dataclass(frozen=True)
class PreflightConfig:
    power_mode: int | None = None  # the nvpmodel mode the runner must be in (None: any)
    on_failure: str = "auto"
    max_gpu_load: float = 10.0  # percent, before timing
    max_other_cpu: float = 0.5  # cores other processes may keep busy beyond the free ones


def parse_preflight(table: Any, where: str) -> PreflightConfig:
    check_keys(table, PREFLIGHT_KEYS, where)
    mode = table.get("power_mode")
    return PreflightConfig(
        power_mode=check_int(mode, f"{where}power_mode", 0) if mode is not None else None,
        on_failure=check_choice(table.get("on_failure", "auto"), ON_FAILURE, f"{where}on_failure"),
        max_gpu_load=check_number(table.get("max_gpu_load", 10.0), f"{where}max_gpu_load"),
        max_other_cpu=check_number(table.get("max_other_cpu", 0.5), f"{where}max_other_cpu"),
    )


def failure_action(on_failure: str, environ: Mapping[str, str] = os.environ) -> str:
    """'warn', 'skip' or 'fail'; 'auto' is strict in CI (CI=true, as GitHub Actions sets)."""
    if on_failure != "auto":
        return on_failure
    return "fail" if environ.get("CI", "").lower() in ("1", "true", "yes") else "warn"
