"""The one protocol both gates implement (the baseline gate and the A/B gate): the plugin calls
it without knowing which gate it holds.

The plugin's order: `prepare(latency_benchmarks)` once the perf tests are collected; `judge(records, limits)`
after each test item with what that item recorded (failures fail the item); `finish(run,
exitstatus)` at the end (a recording gate writes its baseline there); then `gate_cells()` for
the results table, `summary_lines(run)` for the terminal and `report_summary(run)` for the
markdown and HTML reports. Gates never render tables or pages themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from perfsuite.gate.summary import ReportSummary
from perfsuite.results import ItemRecord, RunResults


class Gate(Protocol):
    notes: list[str]  # what the gate has to say besides its verdicts (errors included)

    @property
    def judging(self) -> bool:
        """Whether this run's records are judged at all (False while recording a baseline)."""

    def prepare(self, latency_benchmarks: int) -> None:
        """Before the first perf test: what the gate compares against must be usable
        (pytest.UsageError naming the file and the fix when not); `latency_benchmarks` (the
        run's count) sets each check's bar from the run's false-alarm budget."""

    def judge(self, records: Sequence[ItemRecord],
              limits: Mapping[str, float] | None) -> list[str]:
        """Verdicts on what one test item recorded, kept for the summary; returns the failure
        messages. `limits`: the item's perf_gate marker."""

    def finish(self, run: RunResults, exitstatus: int) -> bool:
        """The end of the run; False when what was asked was not done (said in the notes)."""

    def gate_cells(self) -> dict[str, str]:
        """Case id -> the results table's gate cell."""

    def summary_lines(self, run: RunResults) -> list[str]:
        """The gate's lines in the terminal summary."""

    def report_summary(self, run: RunResults) -> ReportSummary:
        """The gate's part of the markdown and HTML reports."""
