"""One view across machines (`perfsuite merge`): the result files several runners wrote (a CI
matrix's artifacts: each runner's `--benchmark-json`) become a table per model with a column per
machine, and plots of the same numbers. Each machine's numbers are its own: nothing is gated
across machines.
"""

from __future__ import annotations

from collections.abc import Sequence

from perfsuite.report import plots
from perfsuite.report.html import esc, image, page, session_label, table
from perfsuite.report.run_files import RunRecord
from perfsuite.report.text import markdown_row, markdown_text, reference_ms
from perfsuite.results import CaseResult


def machine_labels(runs: Sequence[RunRecord]) -> list[str]:
    """Each run's machine, numbered where one machine brought several files."""
    labels: list[str] = []
    for run in runs:
        label, n = run.machine, 2
        while label in labels:
            label, n = f"{run.machine} ({n})", n + 1
        labels.append(label)
    return labels


def sessions(runs: Sequence[RunRecord], model: str) -> list[str]:
    """'backend precision' of every session of `model` any run measured, first seen first."""
    return list(dict.fromkeys(session_label(r) for run in runs for r in run.results
                              if r.case.model == model))


def _find(run: RunRecord, model: str, session: str) -> CaseResult | None:
    return next((r for r in run.results if r.case.model == model
                 and session_label(r) == session), None)


def cell(run: RunRecord, result: CaseResult | None) -> str:
    """A machine's entry: median end to end, GPU compute where measured, the gate's word."""
    if result is None:
        return "not run"
    if result.latency is None:
        return "not run" if result.warnings else "n/a"
    text = f"{result.latency.median_ms:.3f} ms"
    if result.gpu_latency is not None:
        text += f" (GPU {result.gpu_latency.median_ms:.3f})"
    verdict = run.gate.get(result.case.id, "")  # the baseline gate's or the A/B gate's words
    word = next((w for w in ("REGRESSED", "too noisy") if w in verdict), "")
    return f"{text} {word}".rstrip()


def merged_rows(runs: Sequence[RunRecord], model: str) -> list[tuple[str, ...]]:
    return [(session, *(cell(run, _find(run, model, session)) for run in runs))
            for session in sessions(runs, model)]


def models(runs: Sequence[RunRecord]) -> list[str]:
    return list(dict.fromkeys(r.case.model for run in runs for r in run.results))


def merged_markdown(runs: Sequence[RunRecord]) -> str:
    labels = machine_labels(runs)
    lines = ["## perfsuite: results across machines", ""]
    lines += [f"- `{label.replace('`', chr(39))}`: {markdown_text(run.when or 'time unknown')}, "
              f"{markdown_text(run.source)}" for label, run in zip(labels, runs)]
    for model in models(runs):
        lines += ["", f"### {markdown_text(model)}", "", markdown_row(("session", *labels)),
                  "|---|" + "---|" * len(labels)]
        lines += [markdown_row(row) for row in merged_rows(runs, model)]
    return "\n".join(lines) + "\n"


def _model_plots(runs: Sequence[RunRecord], labels: Sequence[str], model: str) -> list[str]:
    names = sessions(runs, model)
    found = [[_find(run, model, s) for run in runs] for s in names]
    medians = [[r.latency.median_ms if r and r.latency else None for r in row] for row in found]
    if all(m is None for row in medians for m in row):
        return []  # nothing was timed: the table says so
    figures = [image(plots.grouped_bars(f"{model}: median latency, end to end", names, labels,
                                        medians, "ms"),
                     f"{model}: median end-to-end latency per session and machine")]
    references = [reference_ms([r for r in run.results if r.case.model == model]) for run in runs]
    speedups = [[ref / m if ref and m else None for ref, m in zip(references, row)]
                for row in medians]
    if any(v is not None for row in speedups for v in row):
        figures.append(image(plots.grouped_bars(
            f"{model}: speedup over torch fp32 on the same machine", names, labels, speedups,
            "x faster than torch fp32"), f"{model}: speedup over torch fp32, per machine"))
    return ['<div class="plots">', *figures, "</div>"]


def merged_page(runs: Sequence[RunRecord]) -> str:
    """The HTML view: the machines, then per model a table (a column per machine) and plots."""
    labels = machine_labels(runs)
    machines = [(label, run.when[:19].replace("T", " "), run.commit[:12], _cpu(run), _gpu(run), run.source)
                for label, run in zip(labels, runs)]
    body = ["<h2>Machines</h2>",
            table(("machine", "run at", "commit", "CPU", "GPU", "file"), machines, 6)]
    for model in models(runs):
        body += [f"<h2>{esc(model)}</h2>",
                 table(("session", *labels), merged_rows(runs, model), 1,
                       list(range(1, len(labels) + 1))),
                 *_model_plots(runs, labels, model)]
    note = ("median per call, end to end (GPU compute from CUDA events in parentheses); each "
            "machine's verdicts are against its own baseline")
    return page(f"perfsuite: {len(runs)} runs across machines", note, body)


def _cpu(run: RunRecord) -> str:
    facts = run.environment
    return facts.get("perfsuite.machine.cpu_model") or facts.get("cpu.brand_raw", "")


def _gpu(run: RunRecord) -> str:
    """The GPU (or Jetson) a run used, from the fingerprint perfsuite stored."""
    facts = run.environment
    found = facts.get("perfsuite.machine.jetson_model") or facts.get("perfsuite.machine.gpu_name")
    if found:
        return found
    devices = {r.case.device for r in run.results}
    return "none" if devices == {"cpu"} else ", ".join(sorted(devices))
