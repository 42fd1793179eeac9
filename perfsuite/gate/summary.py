"""What a gate says about a run, as data the reports render: the verdict cell of each benchmark in
the results table, and the summary record (facts, the checks as table rows, lines after)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perfsuite.gate.decide import GateVerdict

GATE_WORDS = {"pass": "ok", "regression": "REGRESSED", "too noisy": "too noisy",
              "not comparable": "not comparable"}


def gate_cell(verdict: GateVerdict) -> str:
    """A benchmark's deciding verdict in a few words: the ratio to the baseline, the outcome,
    the resolution and the statistic, e.g. `x1.012 ok, resolves +3.0% GPU`."""
    outcome = GATE_WORDS.get(verdict.status, verdict.status)
    if verdict.status == "not comparable":
        return outcome
    statistic = {"gpu": "GPU", "energy": "energy"}.get(verdict.statistic, "e2e")
    return f"x{verdict.ratio:.3f} {outcome}, resolves +{verdict.resolution or 0:.1%} {statistic}"


@dataclass(frozen=True)
class ReportSummary:
    """What a gate says about a run, for the markdown and HTML reports: a title, facts as
    bullets, the checks as a table, and lines that follow it."""

    title: str
    bullets: tuple[str, ...]
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    after: tuple[str, ...] = ()
    base_ref: str = ""  # an A/B run's REF
    compared: tuple[tuple[str, float, float, str], ...] = ()  # (benchmark, baseline, now, unit)


VERDICT_HEADER = ("check", "baseline", "current", "ratio", "fails above", "resolves", "verdict")


def verdict_rows(verdicts: Sequence[GateVerdict]) -> tuple[tuple[str, ...], ...]:
    """The baseline gate's checks as table cells (markdown emphasis on regressions)."""
    rows = []
    for v in verdicts:
        if v.status == "not comparable":
            rows.append((v.subject, "", "", "", "", "", f"not comparable: {v.detail}"))
            continue
        mark = {"pass": "ok", "regression": "**REGRESSED**"}.get(v.status, v.status)
        if v.failed and v.status != "regression":
            mark += " (fails)"
        resolves = f"+{v.resolution:.1%}" if v.resolution is not None else ""
        rows.append((f"{v.subject}{' (decides)' if v.decides else ''}", v.value(v.baseline),
                     v.value(v.current), f"x{v.ratio:.3f}", f"x{v.threshold:.3f}", resolves, mark))
    return tuple(rows)


def gate_summary(key: str, baseline: Path, has_baseline: bool, verdicts: Sequence[GateVerdict],
                 new: Sequence[str], missing: Sequence[str], env_changes: Sequence[str],
                 notes: Sequence[str]) -> ReportSummary:
    """The baseline gate's report."""
    bullets = [f"machine key: `{key}`", f"baseline: `{baseline}`"]
    if not has_baseline:
        bullets.append("no baseline for this machine: nothing was gated")
    else:
        failed = sum(v.failed for v in verdicts)
        noisy = sum(v.status == "too noisy" for v in verdicts)
        bullets.append(f"{len(verdicts)} checks, **{failed} failed**, {noisy} advisory (too "
                       f"noisy to gate)")
    bullets += [f"environment change: {c}" for c in env_changes]
    bullets += list(notes)
    after = []
    if new:
        after.append("New (not gated): " + ", ".join(f"`{n}`" for n in new))
    if missing:
        after.append("Missing (in the baseline, not run): " + ", ".join(f"`{m}`" for m in missing))
    compared = tuple((v.subject, v.baseline, v.current, v.unit) for v in verdicts
                     if v.decides and v.status != "not comparable" and v.baseline > 0)
    return ReportSummary("perfsuite", tuple(bullets), VERDICT_HEADER if verdicts else (),
                         verdict_rows(verdicts), tuple(after), compared=compared)
