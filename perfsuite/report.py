"""Rendering results: the terminal table (the blog post's table, done right)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from perfsuite.backends import REFERENCE_BACKEND, REFERENCE_PRECISION
from perfsuite.gate import GateVerdict
from perfsuite.perf_run import CaseResult

COLUMNS = ("backend", "precision", "device", "median ms", "p90 ms", "GPU ms", "inf/s",
           "speedup", "artifact MB", "drift rel_l2", "notes")
ENERGY_COLUMNS = ("W", "mJ/inf")  # shown when some session was metered


def _number(value: float | None, digits: int = 3) -> str:
    """`digits` decimals; two significant digits where those decimals would print a nonzero
    value as zero (a speedup of 0.004, a model of 2 kB)."""
    if value is None:
        return "n/a"
    fixed = f"{value:.{digits}f}"
    if value != 0 and float(fixed) == 0:
        return f"{value:.2g}"
    return fixed


# The gate column's word for each verdict status (the README's reference explains each).
GATE_WORDS = {"pass": "ok", "regression": "REGRESSED", "too noisy": "too noisy",
              "not comparable": "not comparable"}


def gate_cell(verdict: GateVerdict) -> str:
    """A benchmark's deciding verdict in a few words: outcome, resolution, statistic."""
    outcome = GATE_WORDS.get(verdict.status, verdict.status)
    if verdict.status == "not comparable":
        return outcome
    statistic = {"gpu": "GPU", "energy": "energy"}.get(verdict.statistic, "e2e")
    return f"{outcome}, resolves +{verdict.resolution or 0:.1%} {statistic}"


def _energy_cells(result: CaseResult) -> tuple[str, ...]:
    energy = result.energy
    return (_number(energy.mean_w, 1), _number(energy.median_mj, 2)) if energy else ("n/a", "n/a")


def _row(result: CaseResult, reference_ms: float | None) -> tuple[str, ...]:
    latency = result.latency
    median = latency.median_ms if latency else None
    speedup = reference_ms / median if (reference_ms and median) else None
    if result.drift is not None:
        drift_text = f"{result.drift.rel_l2:.2e}"
    elif result.case.backend == REFERENCE_BACKEND and result.case.precision == REFERENCE_PRECISION:
        drift_text = "reference"
    else:
        drift_text = "n/a"
    return (
        result.case.backend,
        result.case.precision,
        result.case.device,
        _number(median),
        _number(latency.p90_ms if latency else None),
        _number(result.gpu_latency.median_ms if result.gpu_latency else None),
        _number(latency.throughput_per_s if latency else None, 1),
        "n/a" if speedup is None else f"{_number(speedup, 2)}x",
        _number(result.artifact_bytes / 1e6, 2),
        drift_text,
        "; ".join([*filter(None, [result.details.get("recipe")]),
                   *(w.split(":")[0] for w in result.warnings)]),
    )


def _cells(result: CaseResult, reference_ms: float | None, metered: bool) -> tuple[str, ...]:
    row = _row(result, reference_ms)
    return (*row[:-1], *_energy_cells(result), row[-1]) if metered else row


def results_table(results: Sequence[CaseResult], header: dict[str, str],
                  gate: Mapping[str, str] | None = None) -> list[str]:
    """One block per model: a title line, then aligned columns. Empty input gives no lines.
    `gate` (case id -> text) adds a column with each benchmark's gate verdict and resolution."""
    lines: list[str] = []
    metered = any(r.energy is not None for r in results)
    columns = (*COLUMNS[:-1], *(ENERGY_COLUMNS if metered else ()), COLUMNS[-1],
               *(("gate",) if gate else ()))
    for model in dict.fromkeys(r.case.model for r in results):
        block = [r for r in results if r.case.model == model]
        reference = next((r for r in block if r.case.backend == REFERENCE_BACKEND
                          and r.case.precision == REFERENCE_PRECISION and r.latency), None)
        reference_ms = reference.latency.median_ms if reference and reference.latency else None
        rows = [columns] + [_cells(r, reference_ms, metered) +
                            ((gate.get(r.case.id, "not gated"),) if gate else ()) for r in block]
        widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
        title = ", ".join(f"{k} {v}" for k, v in header.items() if v)
        lines.append(f"perfsuite results: {model}" + (f" ({title})" if title else ""))
        for row in rows:
            lines.append("  ".join(cell.ljust(w) if i < 3 or (gate and i == len(columns) - 1)
                                   else cell.rjust(w)
                                   for i, (cell, w) in enumerate(zip(row, widths)))
                         .rstrip())
        for result in block:
            lines.extend(f"  {result.case.id}: {warning}" for warning in result.warnings)
        lines.append("")
    return lines


def markdown_report(key: str, baseline: Path, has_baseline: bool, verdicts: Sequence[GateVerdict],
                    new: Sequence[str], missing: Sequence[str], env_changes: Sequence[str],
                    notes: Sequence[str]) -> str:
    """A summary for a CI step summary or a pull-request comment."""
    failed = sum(v.failed for v in verdicts)
    lines = ["## perfsuite", "", f"- machine key: `{key}`", f"- baseline: `{baseline}`"]
    if not has_baseline:
        lines.append("- no baseline for this machine: nothing was gated")
    else:
        noisy = sum(v.status == "too noisy" for v in verdicts)
        lines.append(f"- {len(verdicts)} checks, **{failed} failed**, {noisy} advisory (too "
                     f"noisy to gate)")
    lines += [f"- environment change: {c}" for c in env_changes]
    lines += [f"- {note}" for note in notes]
    if verdicts:
        lines += ["", "| check | baseline | current | ratio | fails above | resolves | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for v in verdicts:
            if v.status == "not comparable":
                lines.append(f"| {v.subject} | | | | | | not comparable: {v.detail} |")
                continue
            mark = {"pass": "ok", "regression": "**REGRESSED**"}.get(v.status, v.status)
            if v.failed and v.status != "regression":
                mark += " (fails)"
            resolves = f"+{v.resolution:.1%}" if v.resolution is not None else ""
            lines.append(f"| {v.subject}{' (decides)' if v.decides else ''} "
                         f"| {v.value(v.baseline)} | {v.value(v.current)} | x{v.ratio:.3f} "
                         f"| x{v.threshold:.3f} | {resolves} | {mark} |")
    if new:
        lines += ["", "New (not gated): " + ", ".join(f"`{n}`" for n in new)]
    if missing:
        lines += ["", "Missing (in the baseline, not run): " + ", ".join(f"`{m}`" for m in missing)]
    return "\n".join(lines) + "\n"
