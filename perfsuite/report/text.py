"""Rendering results as text: the terminal table (the blog post's table, done right) and the
markdown report; report/html.py renders the same cells as a page with plots."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perfsuite.backends.base import REFERENCE_BACKEND, REFERENCE_PRECISION
from perfsuite.gate.summary import ReportSummary
from perfsuite.measure.latency_stats import p99_cell
from perfsuite.results import CaseResult

GENERATOR = '<meta name="generator" content="perfsuite">'  # in every page report/html.py makes

COLUMNS = ("backend", "precision", "device", "median ms", "p90 ms", "p99 ms", "GPU ms", "inf/s",
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
        p99_cell(latency),
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


@dataclass(frozen=True)
class TableBlock:
    """One model's part of the results table: its header row, a row per session and the
    sessions' warnings (case id, warning)."""

    model: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    warnings: tuple[tuple[str, str], ...]


def reference_ms(block: Sequence[CaseResult]) -> float | None:
    """The torch fp32 median of a model's sessions, the speedups' denominator."""
    reference = next((r for r in block if r.case.backend == REFERENCE_BACKEND
                      and r.case.precision == REFERENCE_PRECISION and r.latency), None)
    return reference.latency.median_ms if reference and reference.latency else None


def table_blocks(results: Sequence[CaseResult],
                 gate: Mapping[str, str] | None = None) -> list[TableBlock]:
    """The results table's cells, a block per model; `gate` (case id -> text) adds a column
    with each benchmark's gate verdict and resolution."""
    metered = any(r.energy is not None for r in results)
    columns = (*COLUMNS[:-1], *(ENERGY_COLUMNS if metered else ()), COLUMNS[-1],
               *(("gate",) if gate else ()))
    blocks = []
    for model in dict.fromkeys(r.case.model for r in results):
        block = [r for r in results if r.case.model == model]
        reference = reference_ms(block)
        rows = tuple(_cells(r, reference, metered) +
                     ((gate.get(r.case.id, "not gated"),) if gate else ()) for r in block)
        warnings = tuple((r.case.id, w) for r in block for w in r.warnings)
        blocks.append(TableBlock(model, columns, rows, warnings))
    return blocks


# Columns the terminal table leaves out first when it is wider than the terminal, in order;
# the markdown and HTML reports keep every column.
DROP_ORDER = ("p99 ms", "inf/s", "p90 ms", "W", "artifact MB", "mJ/inf", "speedup", "drift rel_l2")
SEPARATOR = "  "


def results_table(results: Sequence[CaseResult], header: dict[str, str],
                  gate: Mapping[str, str] | None = None, width: int = 0) -> list[str]:
    """One block per model: a title line, then aligned columns. Empty input gives no lines.

    A block wider than `width` characters (0: no limit) is made to fit, step by step until it
    does: notes go under their row, a device column that is the same on every row moves into
    the title, columns with nothing measured (all `n/a`) go, then columns leave in DROP_ORDER,
    named below the table."""
    lines: list[str] = []
    for block in table_blocks(results, gate):
        columns, rows = list(block.columns), [list(row) for row in block.rows]
        facts = dict(header)
        notes: list[str] = []
        dropped: list[str] = []
        if not _fits(columns, rows, width):
            notes = [row[columns.index("notes")] for row in rows]
            _drop(columns, rows, "notes")
        devices = {row[columns.index("device")] for row in rows}
        if not _fits(columns, rows, width) and len(devices) == 1:
            facts = {"device": devices.pop(), **header}
            _drop(columns, rows, "device")
        for name in ("GPU ms", "W", "mJ/inf", "drift rel_l2"):
            if not _fits(columns, rows, width) and name in columns and all(
                    row[columns.index(name)] in ("n/a", "reference") for row in rows):
                _drop(columns, rows, name)
        for name in DROP_ORDER:
            if not _fits(columns, rows, width) and name in columns:
                _drop(columns, rows, name)
                dropped.append(name)
        widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
        left = {"backend", "precision", "device", "notes", "gate"}
        title = ", ".join(f"{k} {v}" for k, v in facts.items() if v)
        lines.append(f"perfsuite results: {block.model}" + (f" ({title})" if title else ""))
        for index, row in enumerate([columns, *rows]):
            lines.append(SEPARATOR.join(cell.ljust(w) if name in left else cell.rjust(w)
                                        for name, cell, w in zip(columns, row, widths)).rstrip())
            if notes and index and notes[index - 1]:
                lines += wrapped(f"    {notes[index - 1]}", width)
        for case_id, warning in block.warnings:
            lines += wrapped(f"  {case_id}: {warning}", width)
        if dropped:
            lines += wrapped(f"  (left out to fit {width} columns: {', '.join(dropped)}; the "
                              f"--perf-report files have every column)", width)
        lines.append("")
    return lines


def wrapped(line: str, width: int) -> list[str]:
    """`line` folded at `width` (0: as it is), continuation lines indented under it."""
    if not width or len(line) <= width:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False)


def _drop(columns: list[str], rows: list[list[str]], name: str) -> None:
    index = columns.index(name)
    del columns[index]
    for row in rows:
        del row[index]


def _fits(columns: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> bool:
    return not width or _width(columns, rows) <= width


def _width(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    return sum(widths) + len(SEPARATOR) * (len(widths) - 1)


def markdown_row(cells: Sequence[str]) -> str:
    """A markdown table row; a | inside a cell (a model's name) is escaped, and so is HTML
    (a result file's text never becomes markup on the page that shows the summary)."""
    return "| " + " | ".join(markdown_text(cell).replace("|", "\\|") for cell in cells) + " |"


def markdown_text(text: str) -> str:
    """`text` with HTML's special characters escaped (GitHub renders raw HTML in markdown)."""
    return html.escape(text, quote=False)


def markdown_report(summary: ReportSummary) -> str:
    """A summary for a CI step summary or a pull-request comment."""
    lines = [f"## {summary.title}", "", *(f"- {b}" for b in summary.bullets)]
    if summary.rows:
        lines += ["", markdown_row(summary.header), "|" + "---|" * len(summary.header)]
        lines += [markdown_row(row) for row in summary.rows]
    for line in summary.after:
        lines += ["", line]
    return "\n".join(lines) + "\n"
