"""GateRun: one pytest run's dealings with this machine's baseline (key, gate, recording,
summary, markdown report). Lives in config.stash; the plugin only forwards hooks to it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from perfsuite.baselines import RECORD_HINT, baseline_path, write_baseline
from perfsuite.config import SuiteConfig
from perfsuite.gate import GatePolicy, GateVerdict
from perfsuite.gatekeeper import BaselineGate, build_baseline, item_failures, unmatched
from perfsuite.machine import MACHINE_KEY_ENV, MachineFingerprint, fingerprint, machine_key
from perfsuite.report import markdown_report
from perfsuite.session import ItemRecord, PerfSession

GATE_KEY = pytest.StashKey["GateRun"]()


class GateRun:
    def __init__(self, config: pytest.Config, suite: SuiteConfig) -> None:
        self.config = config
        self.suite = suite
        self.save = bool(config.getoption("perf_save_baseline"))
        self.add = bool(config.getoption("perf_add_recording"))
        self.allow_env_change = bool(config.getoption("perf_allow_env_change"))
        self.report_path = config.getoption("perf_report")
        self._key: str | None = config.getoption("perf_machine_key") or os.environ.get(MACHINE_KEY_ENV)
        self._fingerprint: MachineFingerprint | None = None
        self._gate: BaselineGate | None = None
        self.verdicts: list[GateVerdict] = []
        self.notes: list[str] = []

    @property
    def recording(self) -> bool:
        return self.save or self.add

    @property
    def fingerprint(self) -> MachineFingerprint:
        if self._fingerprint is None:
            self._fingerprint = fingerprint()
        return self._fingerprint

    @property
    def key(self) -> str:
        """--perf-machine-key or PERFSUITE_MACHINE_KEY, else the pytest_perfsuite_machine_key hook,
        else the hardware slug."""
        if self._key is None:
            chosen = self.config.hook.pytest_perfsuite_machine_key(config=self.config,
                                                             fingerprint=self.fingerprint)
            self._key = str(chosen) if chosen else machine_key(self.fingerprint)
        return self._key

    @property
    def path(self) -> Path:
        return baseline_path(self.config.rootpath / "baselines", self.key)

    def gate(self) -> BaselineGate:
        if self._gate is None:
            self._gate = BaselineGate(self.path, self.suite.gate, self.allow_env_change)
        return self._gate

    def judge(self, perf: PerfSession, records: list[ItemRecord],
              limits: Mapping[str, float] | None) -> list[str]:
        def policy_hook(benchmark: str, policy: GatePolicy) -> GatePolicy:
            chosen = self.config.hook.pytest_perfsuite_gate_policy(config=self.config,
                                                            benchmark=benchmark, policy=policy)
            return chosen if chosen is not None else policy

        verdicts, failures = item_failures(self.gate(), perf, records,
                                           self.fingerprint.software, limits, policy_hook)
        self.verdicts += verdicts
        return failures

    def finish(self, perf: PerfSession, exitstatus: int) -> None:
        if self.recording:
            self._record(perf, exitstatus)
        if self.report_path:
            gate = self.gate()
            new, missing = unmatched(gate, perf) if not self.recording else ([], [])
            text = markdown_report(self.key, gate.path, gate.baseline is not None, self.verdicts,
                                   new, missing, gate.env_changes(self.fingerprint.software),
                                   self.notes)
            Path(self.report_path).write_text(text)

    def _record(self, perf: PerfSession, exitstatus: int) -> None:
        path = self.path
        if exitstatus != 0:
            self.notes.append(f"baseline NOT written: the run did not pass (exit status "
                              f"{exitstatus}); {path} is unchanged.")
            return
        if not perf.results() and not perf.sizes:
            self.notes.append(f"baseline NOT written: nothing was measured; {path} is unchanged.")
            return
        fp = self.fingerprint
        machine = {k: v for k, v in fp.as_dict().items() if k != "software"}
        fresh = build_baseline(self.key, machine, fp.software, perf.results(), perf.samples_ms,
                               perf.sizes, perf.drifts)
        old = self.gate().baseline if self.add else None
        if self.add and old is None:
            self.notes.append(f"no baseline at {path} to add to; recording a new one.")
        changes = self.gate().env_changes(fp.software) if old is not None else []
        if changes and not self.allow_env_change:
            self.notes.append(f"recording NOT added: software changed since {path} was recorded "
                              f"({'; '.join(changes)}); start a new baseline with "
                              "--perf-save-baseline.")
            return
        baseline = old.with_recordings_added(fresh) if old is not None else fresh
        write_baseline(path, baseline)
        runs = min((len(r) for r in baseline.latency.values()), default=0)
        self.notes.append(f"baseline written: {path} ({len(baseline.latency)} latency "
                          f"benchmarks, {runs} recording(s) each).")

    def summary_lines(self, perf: PerfSession) -> list[str]:
        lines = [f"perfsuite: {note}" for note in self.notes]
        if self.recording:
            return lines
        gate = self._gate
        if gate is None or gate.baseline is None:
            where = gate.path if gate else f"baselines/{self._key or '<machine-key>'}/"
            return [*lines, f"perfsuite: no baseline for this machine ({where}); nothing was "
                            f"gated. To gate, {RECORD_HINT}."]
        failed = [v for v in self.verdicts if v.failed]
        lines.append(f"perfsuite gate: {len(self.verdicts)} checks against {gate.path}, "
                     f"{len(failed)} regressed.")
        new, missing = unmatched(gate, perf)
        if new:
            lines.append(f"perfsuite gate: new (not in the baseline, not gated): {', '.join(new)}")
        if missing:
            lines.append(f"perfsuite gate: missing (in the baseline, not run): {', '.join(missing)}")
        changes = gate.env_changes(self.fingerprint.software)
        if changes:
            verb = "allowed" if self.allow_env_change else "failed closed"
            lines.append(f"perfsuite gate: environment changed ({verb}): {'; '.join(changes)}")
        return lines
