"""BaselineComparison: one pytest run against this machine's baseline.

It finds the baseline (the machine's key, its file), judges the records each test item made
against it with the decisions in gate/decide.py, writes recordings through gate/store.py, and
says what happened (summary lines, and the summary record the reports render). The run's
options arrive as one frozen GateOptions, parsed once by the plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.config.parts import GateConfig
from perfsuite.errors import PerfsuiteError
from perfsuite.gate.decide import (
    HOW_TO_QUIETEN,
    GateVerdict,
    judge_drift,
    judge_energy,
    judge_identity,
    judge_latency,
    judge_size,
    judge_tail,
)
from perfsuite.gate.limits import GATED_DRIFT, chosen_policy
from perfsuite.gate.store import (
    RECORD_HINT,
    Baseline,
    BaselineError,
    LatencyRecording,
    baseline_path,
    drift_name,
    load_baseline,
    merge,
    outside_problem,
    recording_lock,
    size_name,
    write_baseline,
)
from perfsuite.gate.summary import ReportSummary, gate_cell, gate_summary
from perfsuite.machine.fingerprint import MachineFingerprint
from perfsuite.machine.identity import MachineIdentity
from perfsuite.results import CaseResult, ItemRecord, RunResults

# The stored fingerprint's fields that say which machine it is (what the default key is made of)
MACHINE_IDENTITY = ("isa", "cpu_model", "cpu_count", "gpu_name", "jetson_model", "nvpmodel_mode")


@dataclass(frozen=True)
class GateOptions:
    """What this run was asked to do with baselines (command line and environment)."""

    baselines_dir: Path
    save_baseline: bool = False
    add_recording: bool = False
    compare: bool = False  # --benchmark-compare: a baseline must exist; identity changes fail
    allow_env_change: bool = False
    report_paths: tuple[Path, ...] = ()  # --perf-report, written by report/files.py
    machine_key: str | None = None  # --perf-machine-key or PERFSUITE_MACHINE_KEY
    gate: bool = True  # False under --benchmark-compare=NUM: pytest-benchmark's store decides

    @property
    def recording(self) -> bool:
        return self.save_baseline or self.add_recording

    @property
    def judging(self) -> bool:
        return self.gate and not self.recording


def recording_of(result: CaseResult, samples_ms: tuple[float, ...]) -> LatencyRecording | None:
    if result.latency is None:
        return None
    enqueue = result.enqueue_latency.median_ms if result.enqueue_latency else None
    return LatencyRecording(result.latency, result.gpu_latency, enqueue, samples_ms, result.energy)


class BaselineComparison:
    """The baseline gate: each test item's records judged against this machine's stored baseline;
    a recording run (--perf-save-baseline, --perf-add-recording) writes it at the end."""

    def __init__(self, options: GateOptions, settings: GateConfig, config: pytest.Config,
                 machine: MachineIdentity) -> None:
        self.options = options
        self.settings = settings
        self.config = config  # for the policy hooks only
        self.machine = machine
        self._baseline: Baseline | None = None
        self._loaded = False
        self.verdicts: list[GateVerdict] = []
        self.decisions: dict[str, GateVerdict] = {}  # case id -> its deciding latency verdict
        self.notes: list[str] = []
        self.benchmarks = 1  # latency benchmarks in the run (prepare)
        self.energy_ungated: list[str] = []  # measured now, absent from the baseline

    # -- which baseline ----------------------------------------------------------------------
    @property
    def judging(self) -> bool:
        return self.options.judging

    @property
    def fingerprint(self) -> MachineFingerprint:
        return self.machine.fingerprint

    @property
    def key(self) -> str:
        return self.machine.key

    @property
    def path(self) -> Path:
        return baseline_path(self.options.baselines_dir, self.key)

    def baseline(self) -> Baseline | None:
        """This machine's baseline, read once; BaselineError when it is unusable (a
        --perf-save-baseline run notes that and replaces it instead)."""
        if not self._loaded:
            try:
                self._baseline = load_baseline(self.path)
            except BaselineError as exc:
                if not self.options.save_baseline:
                    raise
                note = f"replacing an unreadable baseline: {str(exc).splitlines()[0]}"
                if note not in self.notes:  # read again under the recording lock
                    self.notes.append(note)
            self._loaded = True
        return self._baseline

    def prepare(self, latency_benchmarks: int) -> None:
        """Before the first perf test: the baseline must be readable, and must exist under
        --benchmark-compare. Raises pytest.UsageError naming the file and the fix. The run's
        count of latency benchmarks raises each check's bar (GatePolicy.at_scale)."""
        self.benchmarks = latency_benchmarks
        if not (self.options.gate or self.options.recording):
            return
        try:
            baseline = self.baseline()
        except PerfsuiteError as exc:  # an unusable baseline, or a machine key that is no name
            raise pytest.UsageError(f"perfsuite: {exc}") from exc
        if self.options.compare and not self.options.recording and baseline is None:
            raise pytest.UsageError(
                f"perfsuite: --benchmark-compare needs a baseline for machine key "
                f"{self.key!r} and there is none at {self.path}; {RECORD_HINT}.")

    # -- judging -----------------------------------------------------------------------------
    def env_changes(self) -> list[str]:
        """Software versions that differ from the baseline's, as 'name: old -> new', and the
        machine key the baseline says it was recorded for (a file copied from another runner)."""
        baseline = self._baseline
        if baseline is None:
            return []
        old, new = baseline.software, self.fingerprint.software
        changes = [f"{name}: {old.get(name, 'absent')} -> {new.get(name, 'absent')}"
                   for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
        here = self.fingerprint.as_dict()
        for name in MACHINE_IDENTITY:  # a baseline copied from another machine, key renamed
            if name in baseline.machine and str(baseline.machine[name]) != str(here.get(name)):
                changes.insert(0, f"machine {name}: {baseline.machine[name] or 'none'} -> "
                                  f"{here.get(name) or 'none'}")
        if baseline.machine_key != self.key:
            changes.insert(0, f"machine_key: {baseline.machine_key} -> {self.key}")
        return changes

    def env_failure(self) -> str | None:
        changes = self.env_changes()
        if not changes or self.options.allow_env_change:
            return None
        return (f"perfsuite gate | environment changed since the baseline {self.path} was recorded "
                f"({'; '.join(changes)}).\nRemedy: re-record it with `pytest --perf-save-baseline`"
                ", or pass --perf-allow-env-change to compare anyway.")

    def judge(self, records: Sequence[ItemRecord],
              marker: Mapping[str, float] | None) -> list[str]:
        """Verdicts for what one test item recorded; returns the failure messages."""
        if not records or not self.options.judging:
            return []
        baseline = self.baseline()
        if baseline is None:
            return []
        env = self.env_failure()
        if env:
            return [env]
        verdicts: list[GateVerdict] = []
        for record in records:
            policy = chosen_policy(self.config, self.settings, record.name, marker)
            verdicts += self._judge_record(baseline, record, policy.at_scale(self.benchmarks))
        self.verdicts += verdicts
        return [f"perfsuite gate | {v.describe()} [baseline {self.path}]"
                for v in verdicts if v.failed]

    def _judge_record(self, baseline: Baseline, record: ItemRecord,
                      policy: GatePolicy) -> list[GateVerdict]:
        """Identity first: a benchmark measured another way is not comparable, not judged."""
        name = {"size": size_name, "drift": drift_name}.get(record.kind, str)(record.name)
        identity = dict(record.identity)
        if name not in baseline.benchmark_names():
            return []
        mismatch = judge_identity(name, baseline.identity.get(name, {}), identity,
                                  fails=self.options.compare)
        if mismatch is not None:
            if record.kind == "latency":
                self.decisions[name] = mismatch
            return [mismatch]
        if record.kind == "size":
            old_sizes = baseline.sizes[record.name]
            return [judge_size(f"{record.name} {key}", int(value), old_sizes[key], policy)
                    for key, value in sorted(record.values.items()) if key in old_sizes]
        if record.kind == "drift":
            old_drift, drift = baseline.drift[record.name], record.values
            return [judge_drift(f"{record.name} drift {key}", drift[key], old_drift[key], policy)
                    for key in GATED_DRIFT if key in old_drift and key in drift]
        if record.result is None:
            return []
        return self._judge_latency(record.result, baseline, policy, record.samples_ms)

    def _judge_latency(self, result: CaseResult, baseline: Baseline, policy: GatePolicy,
                       samples_ms: tuple[float, ...] = ()) -> list[GateVerdict]:
        current = recording_of(result, ())
        if current is None:  # nothing was timed (--benchmark-disable)
            return []
        name = result.case.id
        verdicts = judge_latency(name, current, baseline.latency[name], result.case.device, policy,
                                 self.settings.too_noisy == "fail")
        for verdict in verdicts:
            if verdict.decides:
                self.decisions[name] = verdict
        energy = judge_energy(name, current, baseline.latency[name], result.case.device, policy,
                              self.settings.too_noisy == "fail")
        if current.energy is not None and not energy:
            self.energy_ungated.append(name)
        latency_failed = name in self.decisions and self.decisions[name].failed
        tail = judge_tail(name, samples_ms,
                          [ms for r in baseline.latency[name] for ms in r.samples_ms], policy)
        for verdict in (*energy, *filter(None, [tail])):
            if verdict.failed and not latency_failed:  # the table shows why the item failed
                self.decisions[name] = verdict
                latency_failed = True
        return [*verdicts, *energy, *filter(None, [tail])]

    # -- the end of the run ------------------------------------------------------------------
    def finish(self, run: RunResults, exitstatus: int) -> bool:
        """Record the baseline where asked. False when it could not be written: the summary says
        why (never a traceback) and the run must not pass."""
        try:
            if self.options.recording:
                self._record(run, exitstatus)
        except (PerfsuiteError, OSError) as exc:  # BaselineError, a bad machine key, the disk
            self.notes.append(f"ERROR: baseline NOT written: {_reason(exc)}; the previous "
                              f"baseline (if any) is unchanged.")
            return False
        return True

    def report_summary(self, run: RunResults) -> ReportSummary:
        """The gate's part of the markdown and HTML reports."""
        new, missing = self.unmatched(run) if not self.options.recording else ([], [])
        return gate_summary(self.key, self.path, self._baseline is not None, self.verdicts,
                            new, missing, self.env_changes() if self._loaded else [],
                            self.notes)

    def fresh_baseline(self, run: RunResults) -> Baseline:
        fp = self.fingerprint
        machine = {k: v for k, v in fp.as_dict().items() if k != "software"}
        latency: dict[str, tuple[LatencyRecording, ...]] = {}
        identity: dict[str, dict[str, str]] = {}
        for name, record in run.of_kind("latency").items():
            recording = recording_of(record.result, record.samples_ms) if record.result else None
            if recording is not None:
                latency[name] = (recording,)
                identity[name] = dict(record.identity)
        for model, record in run.of_kind("size").items():
            identity[size_name(model)] = dict(record.identity)
        for case_id, record in run.of_kind("drift").items():
            identity[drift_name(case_id)] = dict(record.identity)
        return Baseline(self.key, machine, dict(fp.software), latency, run.sizes, run.drifts,
                        identity)

    def _record(self, run: RunResults, exitstatus: int) -> None:
        path = self.path
        if exitstatus != 0:
            self.notes.append(f"baseline NOT written: the run did not pass (exit status "
                              f"{exitstatus}); {path} is unchanged.")
            return
        fresh = self.fresh_baseline(run)
        if not fresh.benchmark_names():
            self.notes.append(f"baseline NOT written: nothing was measured; {path} is unchanged.")
            return
        outside = outside_problem(path, self.options.baselines_dir)
        if outside:
            raise BaselineError(outside)
        with recording_lock(path.parent):
            self._record_locked(path, fresh)

    def _record_locked(self, path: Path, fresh: Baseline) -> None:
        """Read-merge-write under the folder's lock: the baseline as it is now (another run may
        have recorded since this one started), with this run's numbers merged in."""
        self._loaded = False
        old = self.baseline()
        changes = self.env_changes() if old is not None else []
        if changes and self.options.add_recording and not self.options.allow_env_change:
            self.notes.append(f"recording NOT added: software changed since {path} was recorded "
                              f"({'; '.join(changes)}); start a new baseline with "
                              "--perf-save-baseline.")
            return
        if changes and self.options.save_baseline and old is not None:
            dropped = sorted(old.benchmark_names() - fresh.benchmark_names())
            if dropped:
                self.notes.append(f"software changed ({'; '.join(changes)}): entries this run did "
                                  f"not measure were dropped, not kept: {', '.join(dropped)}.")
            old = None
        if self.options.add_recording and old is None:
            self.notes.append(f"no baseline at {path} to add to; recording a new one.")
        merged = merge(old, fresh, add=self.options.add_recording)
        write_baseline(path, merged.baseline)
        runs = min((len(r) for r in merged.baseline.latency.values()), default=0)
        self.notes.append(f"baseline written: {path} ({len(merged.updated)} benchmarks measured, "
                          f"{len(merged.kept)} kept as they were; {len(merged.baseline.latency)} "
                          f"latency benchmarks, at least {runs} recording(s) each).")
        if merged.kept:
            self.notes.append(f"kept (not measured by this run): {', '.join(merged.kept)}")
        if merged.refused:
            self.notes.append(f"recording NOT added for {', '.join(merged.refused)}: its identity "
                              f"differs from the stored one; re-record it with "
                              f"--perf-save-baseline.")

    # -- what to say -------------------------------------------------------------------------
    def unmatched(self, run: RunResults) -> tuple[list[str], list[str]]:
        """(new, missing): benchmarks this run measured that the baseline lacks, and the reverse."""
        if self._baseline is None:
            return [], []
        measured = {r.case.id for r in run.results if r.latency is not None}
        measured |= {size_name(m) for m in run.sizes} | {drift_name(c) for c in run.drifts}
        known = self._baseline.benchmark_names()
        return sorted(measured - known), sorted(known - measured)

    def gate_cells(self) -> dict[str, str]:
        """Case id -> the results table's gate cell (verdict and resolution)."""
        return {case_id: gate_cell(v) for case_id, v in self.decisions.items()}

    def summary_lines(self, run: RunResults) -> list[str]:
        lines = [f"perfsuite: {note}" for note in self.notes]
        if not self.options.judging:
            return lines
        if self._baseline is None:
            where = self.path if self._loaded else f"baselines/{self.machine.known_key or '<machine-key>'}/"
            return [*lines, f"perfsuite: no baseline for this machine ({where}); nothing was "
                            f"gated. To gate, {RECORD_HINT}."]
        counts = {status: sum(v.status == status for v in self.verdicts)
                  for status in ("regression", "too noisy", "not comparable")}
        lines.append(f"perfsuite gate: {len(self.verdicts)} checks against {self.path}, "
                     f"{counts['regression']} regressed, {counts['too noisy']} advisory (too "
                     f"noisy), {counts['not comparable']} not comparable.")
        scaled = self.settings.policy.at_scale(self.benchmarks)
        if scaled.noise_k > self.settings.policy.noise_k:
            lines.append(f"perfsuite gate: {self.benchmarks} latency benchmarks: each check at "
                         f"k={scaled.noise_k:.3g} noise widths (not "
                         f"{self.settings.policy.noise_k:g}), so an unchanged run flags "
                         f"anything at most {scaled.run_false_alarms:.0%} of the time "
                         f"(run_false_alarms); each verdict gives its resolution.")
        short = [v.subject for v in self.verdicts if v.status == "too few samples"]
        if short:
            lines.append(f"perfsuite gate: tail not gated, too few calls for its bound: "
                         f"{', '.join(short)} (each verdict says how many it needs).")
        noisy = ", ".join(f"{name} (resolves +{v.resolution or 0:.0%})"
                          for name, v in self.decisions.items() if v.status == "too noisy")
        if noisy:
            how = "failed: too_noisy = fail" if self.settings.too_noisy == "fail" else "advisory"
            lines.append(f"perfsuite gate: too noisy to gate ({how}): {noisy}. To gate them: "
                         f"{HOW_TO_QUIETEN} (docs/gate.md).")
        lines += [f"perfsuite gate: {v.describe()}" for v in self.verdicts
                  if v.status == "not comparable"]
        if self.energy_ungated:
            lines.append(f"perfsuite gate: energy not gated (the baseline has none; re-record "
                         f"it to gate energy): {', '.join(self.energy_ungated)}")
        new, missing = self.unmatched(run)
        if new:
            lines.append(f"perfsuite gate: new (not in the baseline, not gated): {', '.join(new)}")
        if missing:
            lines.append(f"perfsuite gate: missing (in the baseline, not run): {', '.join(missing)}")
        changes = self.env_changes()
        if changes:
            verb = "allowed" if self.options.allow_env_change else "failed closed"
            lines.append(f"perfsuite gate: environment changed ({verb}): {'; '.join(changes)}")
        return lines


def _reason(exc: Exception) -> str:
    """An OSError as 'path: what went wrong' (its errno adds nothing for the reader)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)
