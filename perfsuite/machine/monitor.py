"""RunMonitor: one run's telemetry and pre-flight verdicts, opened when first needed.

The pre-flight checks run once before the first latency benchmark (`before_timing`, which
applies the run's failure action) and once at the end (`after_run`). Their verdicts, the
telemetry's identity facts and its notice go to the summary and pytest-benchmark's JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perfsuite.errors import PreflightFailed, PreflightSkip
from perfsuite.machine.cpu_load import sample_cpu_check
from perfsuite.machine.preflight import PreflightCheck, PreflightConfig, failed, failure_message
from perfsuite.machine.sysroot import SystemFiles, system_files
from perfsuite.machine.telemetry import GpuState, Telemetry, open_telemetry
from perfsuite.measure.energy import Clock, EnergyMeter


class RunMonitor:
    def __init__(self, config: PreflightConfig, action: str, device: Callable[[], str],
                 files: Callable[[], SystemFiles] = system_files,
                 threads: Callable[[], int] = lambda: 0,
                 cpu_check: Callable[[SystemFiles, int, float], PreflightCheck] = sample_cpu_check
                 ) -> None:
        self.config, self.action = config, action  # action: "warn" | "skip" | "fail"
        self._device, self._files, self._threads = device, files, threads
        self._cpu_check = cpu_check
        self._telemetry: Telemetry | None = None
        self.before: tuple[PreflightCheck, ...] | None = None
        self.after: tuple[PreflightCheck, ...] | None = None
        self.after_failure: str | None = None

    @property
    def telemetry(self) -> Telemetry:
        if self._telemetry is None:
            self._telemetry = open_telemetry(self._files(), self._device())
        return self._telemetry

    def before_timing(self) -> tuple[str, ...]:
        """Run the checks once; raise PreflightFailed/PreflightSkip by the failure action when
        one failed, else return warnings for the results (failures under 'warn')."""
        if self.before is None:
            self.before = (*self.telemetry.checks(self.config), self._cpu())
        problems = failed(self.before)
        if not problems:
            return ()
        if self.action == "fail":
            raise PreflightFailed(failure_message(self.before, "fail"))
        if self.action == "skip":
            raise PreflightSkip(failure_message(self.before, "skip"))
        return tuple(f"pre-flight: {c.describe()}" for c in problems)

    def after_run(self) -> str | None:
        """The end-of-run checks, once (only when timing happened); a message when one failed
        after passing before timing and the action is not 'warn': the run must not pass on
        numbers taken in that state. (A check that failed before timing already failed or
        skipped the benchmarks.)"""
        if self.before is not None and self.after is None:
            self.after = (*self.telemetry.checks(self.config, after=True), self._cpu())
            problems = failed(self.after)
            if problems and not failed(self.before) and self.action != "warn":
                self.after_failure = ("perfsuite pre-flight (after the run): " +
                                      "; ".join(c.describe() for c in problems) +
                                      " The numbers may have been taken in that state; the run "
                                      "fails.")
        return self.after_failure

    def _cpu(self) -> PreflightCheck:
        """The CPU-load check, on every machine (0 threads: every core)."""
        return self._cpu_check(self._files(), self._threads(), self.config.max_other_cpu)

    def gpu_state(self) -> GpuState | None:
        return self.telemetry.gpu_state()

    def meter(self, clock: Clock) -> EnergyMeter | None:
        return self.telemetry.meter(clock)

    def summary_lines(self) -> list[str]:
        telemetry = self._telemetry
        if telemetry is None:
            return []
        lines = [f"perfsuite: {telemetry.notice}"] if telemetry.notice else []
        if telemetry.kind == "jetson":
            facts = telemetry.identity()
            lines.append("perfsuite: Jetson: " + ", ".join(
                f"{k.replace('_', ' ')} {v}" for k, v in facts.items() if v))
        for when, checks in (("before timing", self.before), ("after the run", self.after)):
            if checks:
                lines.append(f"perfsuite pre-flight ({when}; on failure: {self.action}):")
                lines += [f"  {c.describe()}" for c in checks]
        return lines

    def as_dict(self) -> dict[str, Any]:
        """For pytest-benchmark's machine_info."""
        telemetry = self.telemetry
        return {"telemetry": telemetry.kind, "notice": telemetry.notice,
                "identity": telemetry.identity(), "preflight_action": self.action,
                "preflight_before": [c.as_dict() for c in self.before or ()],
                "preflight_after": [c.as_dict() for c in self.after or ()]}
