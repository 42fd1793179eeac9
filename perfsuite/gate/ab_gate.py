"""The A/B gate (`--perf-ab=REF`): each test item's records judged against REF's side measured
in the same run. Latency decides on the paired trials (perfsuite.measure.paired); sizes and drift are
compared with REF's exactly, by the baseline gate's rules. The baseline gate is off in A/B runs.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.config.parts import AbConfig, GateConfig
from perfsuite.config.settings import SuiteConfig
from perfsuite.errors import SideError, SideStopped
from perfsuite.gate.decide import GateVerdict, judge_drift, judge_size, judge_tail
from perfsuite.gate.limits import GATED_DRIFT, chosen_policy
from perfsuite.gate.store import drift_name, size_name
from perfsuite.gate.summary import ReportSummary
from perfsuite.measure.latency_stats import samples_needed
from perfsuite.measure.paired import PairedVerdict, Sequential, headline, judge_pairs
from perfsuite.results import CaseSpec, ItemRecord, RunResults

Verdict = typing.Union[GateVerdict, PairedVerdict]  # `|` between classes is Python 3.10+


def sequential_rule(policy: GatePolicy, ab: AbConfig, statistic: str, benchmarks: int,
                    statistics: int = 1) -> Sequential:
    """When pairs of `statistic` may stop in a run of `benchmarks` latency benchmarks, each
    gated on `statistics` statistics: at the statistic's limit, looks every `block_pairs` from
    `min_pairs` on (later where a gated tail percentile needs more calls); the early "slower"
    looks share the half of the statistic's false-alarm budget that the final interval leaves
    (GatePolicy.ab_confidence)."""
    first = ab.min_pairs
    if statistic == "e2e" and policy.tail_percentile:
        first = max(first, -(-samples_needed(policy.tail_percentile) // ab.rounds_per_trial))
    looks = max(1, -(-(ab.pairs - first) // ab.block_pairs))
    final = policy.ab_confidence(benchmarks, statistics)
    return Sequential(policy.ab_limit(statistic), first, ab.block_pairs, 1 - (1 - final) / looks)


class SideState(typing.Protocol):
    stopped: str  # why the side cannot go on ('' while it can)


class RefSides(typing.Protocol):
    """What the A/B gate asks of the run's two sides (perfsuite.run.ab.sides.RefSides): REF's
    label, configuration and cases, its sizes and drift, and what could not be compared."""

    label: str
    base_config: SuiteConfig
    failures: dict[str, str]  # case id or size/drift name -> why not compared

    @property
    def base(self) -> SideState: ...

    @property
    def current(self) -> SideState: ...

    def case_params(self) -> list[tuple[str, str, str]]: ...

    def configures(self, model: str, backend: str, precision: str) -> bool: ...

    def sizes(self, model: str, fp16_onnx: bool) -> dict[str, int]: ...

    def drift(self, case: CaseSpec) -> dict[str, float] | None: ...

    def side_failed(self, error: Exception) -> str: ...

    def describe_sides(self) -> list[str]: ...


class AbComparison:
    """Judges and summarises one A/B run."""

    def __init__(self, settings: GateConfig, config: pytest.Config, fp16_onnx: bool) -> None:
        self.settings = settings
        self.config = config  # for the policy hooks only
        self.fp16_onnx = fp16_onnx  # whether sizes include fp16 ONNX files (on both sides)
        self.sides: RefSides | None = None  # the two sides' workers, once started (attach)
        self.verdicts: list[Verdict] = []
        self.decisions: dict[str, PairedVerdict] = {}
        self.notes: list[str] = []
        self.benchmarks = 1  # latency benchmarks in the run (prepare)

    @property
    def judging(self) -> bool:
        return True

    def attach(self, sides: RefSides) -> None:
        """The sides REF's numbers come from (sizes and drift are asked of REF's worker)."""
        self.sides = sides

    def prepare(self, latency_benchmarks: int) -> None:
        """Nothing to check before the run: the sides say what they cannot do as they start.
        The count of latency benchmarks sets the intervals' confidence (the run's budget)."""
        self.benchmarks = latency_benchmarks

    def finish(self, run: RunResults, exitstatus: int) -> bool:
        """Nothing is written at the end of an A/B run."""
        return True

    def stopping_rule(self, name: str, statistic: str, statistics: int,
                      marker: Mapping[str, float] | None, ab: AbConfig) -> Sequential:
        """When `name`'s pairs of `statistic` (one of `statistics` gating it) may stop: at its
        practical limit, looks every `block_pairs` from `min_pairs` on (later where a gated
        tail percentile needs more calls), each at its share of the run's false-alarm budget."""
        policy = chosen_policy(self.config, self.settings, name, marker)
        return sequential_rule(policy, ab, statistic, self.benchmarks, statistics)

    def judge(self, records: Sequence[ItemRecord],
              marker: Mapping[str, float] | None) -> list[str]:
        """Verdicts for what one test item recorded; returns the failure messages."""
        verdicts: list[Verdict] = []
        for record in records:
            policy = chosen_policy(self.config, self.settings, record.name, marker)
            verdicts += self._judge_record(record, policy)
        self.verdicts += verdicts
        return [f"perfsuite A/B | {v.describe()}" for v in verdicts if v.failed]

    def _judge_record(self, record: ItemRecord, policy: GatePolicy) -> list[Verdict]:
        ab = self.sides
        if ab is None:
            return []
        if record.kind == "latency":
            paired = record.result.paired if record.result is not None else ()
            if not paired:
                return []  # REF's side could not run: noted in failures
            confidence = policy.ab_confidence(self.benchmarks, len(paired))
            verdicts = [judge_pairs(record.name, ab.label, trials,
                                    policy.ab_limit(trials.statistic), confidence)
                        for trials in paired]
            self.decisions[record.name] = headline(verdicts)
            host = paired[0]
            tail = judge_tail(record.name, host.current_samples_ms, host.base_samples_ms, policy,
                              against=ab.label)
            return [*verdicts, *filter(None, [tail])]
        if record.kind == "size":
            if record.name not in {spec.name for spec in ab.base_config.models}:
                return []
            try:
                old = ab.sizes(record.name, self.fp16_onnx)
            except (SideError, SideStopped) as exc:
                ab.failures[size_name(record.name)] = ab.side_failed(exc)
                return []
            return [replace(judge_size(f"{record.name} {key}", int(value), old[key], policy),
                            against=ab.label)
                    for key, value in sorted(record.values.items()) if key in old]
        case = record.case
        if case is None or not ab.configures(case.model, case.backend, case.precision):
            return []
        try:
            old_values = ab.drift(case)
        except (SideError, SideStopped) as exc:
            ab.failures[drift_name(record.name)] = ab.side_failed(exc)
            return []
        if old_values is None:
            return []
        new_values = record.values
        return [replace(judge_drift(f"{record.name} drift {key}", new_values[key],
                                    old_values[key], policy), against=ab.label)
                for key in GATED_DRIFT if key in old_values and key in new_values]

    def gate_cells(self) -> dict[str, str]:
        """Case id -> the results table's cell: REF's median, the ratio with its interval, the
        statistic shown (the one that failed, else the finest) and the verdict."""
        return {name: (f"{v.ref} {v.base_median_ms:.3f} ms, x{v.ratio:.3f} [{v.low:.3f}, {v.high:.3f}] "
                       f"{'GPU' if v.statistic == 'gpu' else 'e2e'} "
                       f"{'REGRESSED' if v.failed else 'ok'}, {v.pairs} pairs")
                for name, v in self.decisions.items()}

    def one_side_only(self, run: RunResults) -> tuple[list[str], list[str]]:
        """(current only, REF only): configured benchmarks the other side lacks."""
        if self.sides is None:
            return [], []
        current = {"-".join(p) for p in run.case_params}
        at_ref = {"-".join(p) for p in self.sides.case_params()}
        return sorted(current - at_ref), sorted(at_ref - current)

    def summary_lines(self, run: RunResults) -> list[str]:
        lines = [f"perfsuite: {note}" for note in self.notes]
        ab = self.sides
        if ab is None:
            return lines
        failed = sum(v.failed for v in self.verdicts)
        paired = [v for v in self.verdicts if isinstance(v, PairedVerdict)]
        lines.append(f"perfsuite A/B vs {ab.label}: {len(self.verdicts)} checks, {failed} "
                     f"regressed (latency: {len(self.decisions)} benchmarks in ABBA pairs, "
                     f"{sum(v.pairs for v in paired)} pairs used of up to "
                     f"{sum(v.bound or v.pairs for v in paired)}).")
        confidence = self.settings.policy.ab_confidence(self.benchmarks)
        if confidence > 0.99:
            lines.append(f"perfsuite A/B: {self.benchmarks} latency benchmarks: intervals at "
                         f"{confidence:.3%} a benchmark (shared by its statistics: GPU compute "
                         f"and end to end on CUDA), so an unchanged run flags anything at most "
                         f"{self.settings.policy.run_false_alarms:.0%} of the time "
                         f"(run_false_alarms).")
        lines += [f"perfsuite A/B side {line}" for line in ab.describe_sides()]
        for name, why in sorted(ab.failures.items()):
            lines.append(f"perfsuite A/B: {name} not compared: {why}")
        for side in (ab.base, ab.current):
            if side.stopped and not any(why == side.stopped for why in ab.failures.values()):
                lines.append(f"perfsuite A/B: {side.stopped}")
        current_only, ref_only = self.one_side_only(run)
        if current_only:
            lines.append(f"perfsuite A/B: new since {ab.label} (not compared): "
                         f"{', '.join(current_only)}")
        if ref_only:
            lines.append(f"perfsuite A/B: only at {ab.label} (not run): {', '.join(ref_only)}")
        return lines

    def report_summary(self, run: RunResults) -> ReportSummary:
        """The A/B gate's part of the markdown and HTML reports."""
        failed = sum(v.failed for v in self.verdicts)
        label = self.sides.label if self.sides is not None else "REF"
        rows = []
        for v in self.verdicts:
            mark = "**REGRESSED**" if v.failed else "ok"
            if isinstance(v, PairedVerdict):
                rows.append((f"{v.name} ({v.statistic}, {v.pairs_used})",
                             f"{v.base_median_ms:.4g} ms", f"{v.current_median_ms:.4g} ms",
                             f"x{v.ratio:.3f}", f"[{v.low:.3f}, {v.high:.3f}]", mark))
            else:
                rows.append((v.subject, v.value(v.baseline), v.value(v.current),
                             f"x{v.ratio:.3f}", "", mark))
        return ReportSummary(
            "perfsuite A/B", (f"base: `{label}`", f"{len(self.verdicts)} checks, "
                              f"**{failed} failed**"),
            ("check", label, "this tree", "ratio", "interval", "verdict"), tuple(rows),
            tuple(filter(None, ["\n".join(f"- {line}" for line in self.summary_lines(run)[1:])])),
            label)
