"""The bisection's answer as markdown (a CI step summary, a pull-request comment) or a
self-contained HTML page: the first slower commit, each step's verdict and cost."""

from __future__ import annotations

from perfsuite.bisect.outcome import BisectReport

HEADER = ("step", "commit", "verdict vs GOOD", "regressed", "cost")


def bisect_markdown(report: BisectReport) -> str:
    lines = ["## perfsuite bisect", "", f"**{report.headline()}**", ""]
    lines += [f"- {b}" for b in report.bullets()]
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in report.rows()]
    details = [(s, line) for s in report.steps for line in s.lines[1 if s.outcome == "skipped" else 0:]]
    if details:
        lines += ["", "<details><summary>each step's verdict lines</summary>", "", "```"]
        lines += [f"{s.commit[:12]}: {line}" for s, line in details]
        lines += ["```", "</details>"]
    return "\n".join(lines) + "\n"


def bisect_page(report: BisectReport) -> str:
    from perfsuite.report.html import esc, page, table

    body = [f"<p><strong>{esc(report.headline())}</strong></p>", "<ul>",
            *(f"<li>{esc(b)}</li>" for b in report.bullets()), "</ul>",
            table(HEADER, report.rows(), text_columns=2, verdict_columns=[2])]
    body += [f"<h2>{esc(report.subjects.get(s.commit, s.commit[:12]))}</h2><pre>"
             + esc("\n".join(s.lines)) + "</pre>" for s in report.steps if s.lines]
    return page("perfsuite bisect", report.headline(), body)
