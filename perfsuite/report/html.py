"""Self-contained HTML pages: tables, verdicts and plots (PNG embedded as data: URIs), one inline
stylesheet, no script and nothing fetched, so the file opens anywhere, offline, and can be
attached to a CI run as it is.

`run_page` is the report of one run (`--perf-report PATH.html`); merge.py and history.py build
their pages from the same pieces.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Iterator, Sequence

from perfsuite.backends.base import REFERENCE_BACKEND, REFERENCE_PRECISION
from perfsuite.gate.summary import ReportSummary
from perfsuite.report import plots
from perfsuite.report.run_files import RunRecord
from perfsuite.report.text import GENERATOR, reference_ms, table_blocks
from perfsuite.results import CaseResult

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;
color:#1b1b1b;padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.2em;margin-top:28px;border-bottom:1px solid
#ddd;padding-bottom:4px}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d0d0d0;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.text,th.text{text-align:left;white-space:normal}
td.bad{background:#fde0e0;color:#8b0000;font-weight:600}td.good{background:#e6f4e6}
td.advisory{background:#fff4d6}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0}
figcaption{font-size:12px;color:#555}img{max-width:100%;border:1px solid #eee}
.meta{color:#555;font-size:13px}ul{font-size:14px}
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def inline_markdown(text: str) -> str:
    """The little markdown the summaries use: **bold** and `code`."""
    parts = esc(text).split("**")
    text = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def cell_class(text: str) -> str:
    """Color a verdict cell: regressions red, passes green, advisory yellow."""
    lowered = text.lower()
    if "regressed" in lowered or "(fails)" in lowered:
        return "bad"
    if "too noisy" in lowered or "not comparable" in lowered:
        return "advisory"
    if lowered.startswith("ok") or " ok" in lowered:
        return "good"
    return ""


def table(header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int = 1,
          verdict_columns: Sequence[int] = ()) -> str:
    """An HTML table; the first `text_columns` cells are left-aligned words, the rest numbers;
    `verdict_columns` are colored by their verdict."""
    def cell(tag: str, index: int, text: str) -> str:
        classes = ["text"] if index < text_columns or index in verdict_columns else []
        if tag == "td" and index in verdict_columns and cell_class(text):
            classes.append(cell_class(text))
        attribute = f' class="{" ".join(classes)}"' if classes else ""
        return f"<{tag}{attribute}>{inline_markdown(text)}</{tag}>"

    lines = ["<table>", "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"]
    lines += ["<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>"
              for row in rows]
    return "\n".join([*lines, "</table>"])


def image(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def page(title: str, subtitle: str, body: Iterable[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', GENERATOR,
        f"<title>{esc(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<h1>{esc(title)}</h1>", f'<p class="meta">{esc(subtitle)}</p>', *body,
        "</body>", "</html>", ""])


def summary_html(summary: ReportSummary) -> list[str]:
    parts = ["<ul>", *(f"<li>{inline_markdown(b)}</li>" for b in summary.bullets), "</ul>"]
    if summary.rows:
        parts.append(table(summary.header, summary.rows, verdict_columns=[len(summary.header) - 1]))
    for line in summary.after:
        parts += [f"<p>{inline_markdown(text.lstrip('- '))}</p>" for text in line.splitlines()]
    return parts


def results_html(run: RunRecord) -> list[str]:
    parts = []
    for block in table_blocks(run.results, run.gate or None):
        verdicts = [len(block.columns) - 1] if run.gate else []
        parts += [f"<h3>{esc(block.model)}</h3>", table(block.columns, block.rows, 3, verdicts)]
        parts += [f'<p class="meta">{esc(case_id)}: {esc(warning)}</p>'
                  for case_id, warning in block.warnings]
    return parts


def session_label(result: CaseResult) -> str:
    return f"{result.case.backend} {result.case.precision}"


def model_plots(run: RunRecord, model: str, base_ref: str = "") -> list[str]:
    """The plots of one model's sessions: latency distributions, speedup over torch fp32, drift,
    energy per inference where measured, and for an A/B run both sides per benchmark."""
    block = [r for r in run.results if r.case.model == model and r.latency is not None]
    if not block:
        return []
    labels = [session_label(r) for r in block]
    figures = []
    samples = [run.samples_ms.get(r.case.id) or r.latency.trial_medians_ms for r in block
               if r.latency is not None]
    raw = all(run.samples_ms.get(r.case.id) for r in block)
    what = "every timed call" if raw else "trial medians (the file kept no raw samples)"
    figures.append(image(plots.distributions(f"{model}: end-to-end latency", labels, samples),
                         f"{model}: end-to-end latency per session, {what}"))
    gpu = [r for r in block if r.gpu_latency is not None]
    if gpu:
        figures.append(image(plots.distributions(
            f"{model}: GPU compute (CUDA events)", [session_label(r) for r in gpu],
            [r.gpu_latency.trial_medians_ms for r in gpu if r.gpu_latency is not None]),
            f"{model}: GPU compute per session, trial medians"))
    reference = reference_ms(block)
    if reference:
        figures.append(image(plots.bars(
            f"{model}: speedup over torch fp32", labels,
            [reference / r.latency.median_ms for r in block if r.latency is not None],
            "x faster than torch fp32 (median, end to end)", reference=1.0),
            f"{model}: speedup over torch fp32"))
    # zero drift cannot sit on a log axis; infinite drift (a zero reference) is in the table
    drifted = [r for r in block if r.drift is not None and 0 < r.drift.rel_l2 < math.inf]
    if drifted:
        figures.append(image(plots.bars(
            f"{model}: drift against torch fp32", [session_label(r) for r in drifted],
            [r.drift.rel_l2 for r in drifted if r.drift is not None], "relative L2 error",
            log=True), f"{model}: output drift per session (relative L2 vs torch fp32)"))
    metered = [r for r in block if r.energy is not None]
    if metered:
        figures.append(image(plots.bars(
            f"{model}: energy per inference", [session_label(r) for r in metered],
            [r.energy.median_mj for r in metered if r.energy is not None], "mJ per inference"),
            f"{model}: energy per inference ({metered[0].energy.source if metered[0].energy else ''})"))
    paired = [r for r in block if r.paired]
    if paired:
        chosen = [r.paired[-1] for r in paired]  # GPU compute where measured, else end to end
        figures.append(image(plots.paired_sides(
            f"{model}: A/B, both sides", [session_label(r) for r in paired],
            [t.base_ms for t in chosen], [t.current_ms for t in chosen], base_ref or "REF"),
            f"{model}: A/B trial medians per benchmark ({base_ref or 'REF'} vs this tree)"))
    return [f"<h3>{esc(model)}</h3>", '<div class="plots">', *figures, "</div>"]


def baseline_plot(summary: ReportSummary) -> Iterator[str]:
    """The deciding statistic of each gated benchmark, the baseline's beside this run's."""
    for unit in dict.fromkeys(c[3] for c in summary.compared):
        chosen = [c for c in summary.compared if c[3] == unit]
        yield image(plots.grouped_bars(
            f"baseline and this run ({unit})", [c[0] for c in chosen], ("baseline", "this run"),
            [(c[1], c[2]) for c in chosen], f"the gate's deciding statistic ({unit})"),
            "each benchmark's deciding statistic: the baseline's and this run's")


# Facts a machine without a GPU reports as zeros: left out rather than shown as "0".
GPU_ONLY_FACTS = ("gpu_memory_gib", "sm_count")


def environment_html(environment: dict[str, str]) -> list[str]:
    shown = {k: v for k, v in environment.items()
             if not (k.rsplit(".", 1)[-1] in GPU_ONLY_FACTS and v in ("0", "0.0"))}
    if not shown:
        return []
    return ["<h2>Machine and environment</h2>",
            table(("fact", "value"), sorted(shown.items()), text_columns=2)]


def run_page(run: RunRecord, summary: ReportSummary) -> str:
    """The report of one run: verdicts, the results table, plots, machine and environment."""
    models = list(dict.fromkeys(r.case.model for r in run.results))
    reference_note = (f"speedups are over {REFERENCE_BACKEND} {REFERENCE_PRECISION}; drift is "
                      f"measured against it on the same inputs")
    body = [f"<h2>{esc(summary.title)}</h2>", *summary_html(summary),
            "<h2>Results</h2>", f'<p class="meta">{esc(reference_note)}</p>', *results_html(run),
            "<h2>Plots</h2>"]
    compared = list(baseline_plot(summary))
    if compared:
        body += ["<h3>against the baseline</h3>", '<div class="plots">', *compared, "</div>"]
    for model in models:
        body += model_plots(run, model, summary.base_ref)
    body += environment_html(run.environment)
    subtitle = " · ".join(filter(None, [f"machine {run.machine}", run.when,
                                        f"commit {run.commit[:12]}" if run.commit else ""]))
    return page(f"perfsuite report: {', '.join(models) or 'no results'}", subtitle, body)
