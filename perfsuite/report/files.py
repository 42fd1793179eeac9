"""Writing the run's reports (`--perf-report`, repeatable): a path ending in .html (or .htm) gets
the page with plots, any other the markdown summary (e.g. $GITHUB_STEP_SUMMARY). Each file is
written whole or not at all (an interrupted run leaves the previous report as it was)."""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from perfsuite.errors import PerfsuiteError
from perfsuite.files import atomic_write_text, replaceable
from perfsuite.gate.summary import ReportSummary
from perfsuite.git import GitError, git
from perfsuite.report.text import GENERATOR, markdown_report

if typing.TYPE_CHECKING:
    from perfsuite.gate.protocol import Gate
    from perfsuite.machine.identity import MachineIdentity
    from perfsuite.report.run_files import RunRecord
    from perfsuite.results import RunResults

HTML_SUFFIXES = (".html", ".htm")


def write_reports(paths: Sequence[Path], summary: ReportSummary,
                  run: typing.Callable[[], RunRecord]) -> list[str]:
    """Write every report; the errors, one line per file not written (the run reports them and
    fails). `run` is called only when an HTML report is asked for."""
    errors = []
    for path in paths:
        try:
            if path.suffix.lower() in HTML_SUFFIXES:
                from perfsuite.report.html import run_page  # matplotlib: only for HTML

                text = run_page(run(), summary)
            else:
                text = markdown_report(summary)
            # checked again: the file may have appeared during the run
            atomic_write_text(replaceable(path, is_perfsuite_report, "--perf-report="), text)
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
        except PerfsuiteError as exc:
            errors.append(f"{path}: {str(exc).splitlines()[0]}")
        except Exception as exc:  # a plot matplotlib refuses: the run's verdicts still stand
            errors.append(f"{path}: {type(exc).__name__}: {exc} (a perfsuite bug: please "
                          "report it)")
    return errors


def report_files(root: Path, paths: Sequence[Path], run: RunResults, gate: Gate,
                 machine: MachineIdentity, telemetry: Callable[[], Mapping[str, Any]]) -> bool:
    """--perf-report's files for this run (`gate`: the baseline gate or the A/B gate); False,
    said in the gate's notes and so in the summary, when one could not be written. `telemetry`
    is read only for an HTML report."""
    from perfsuite.report.run_files import live_run

    def record() -> RunRecord:
        facts = {"machine": machine.fingerprint.as_dict(), "perfsuite": dict(telemetry())}
        return live_run(run, machine.key, facts, head_commit(root), gate.gate_cells())

    try:
        summary = gate.report_summary(run)
    except PerfsuiteError as exc:  # e.g. a machine key hook that returned no usable name
        errors = [f"{str(exc).splitlines()[0]}"]
    else:
        errors = write_reports(paths, summary, record)
    gate.notes.extend(f"ERROR: report NOT written: {error}." for error in errors)
    return not errors


def is_perfsuite_report(path: Path) -> bool:
    """Whether the file at `path` is a report perfsuite wrote (so writing it again loses
    nothing): its first line is a perfsuite heading or its page names perfsuite its generator."""
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            start = stream.read(2048)
    except OSError:
        return False
    return start.startswith("## perfsuite") or GENERATOR in start


def head_commit(root: Path) -> str:
    """The git commit checked out at `root`, or '' outside a git work tree."""
    try:
        return git(root, "rev-parse", "HEAD", timeout=10).strip()
    except GitError:
        return ""
