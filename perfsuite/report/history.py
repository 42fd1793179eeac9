"""How each benchmark moved over time (`perfsuite history`): its median and tail across the
versions of a baseline file kept in git, or across saved pytest-benchmark runs
(`--benchmark-autosave` files, `--benchmark-json` files), marking where the gate fired and
where the series stepped (change points over the versions' fastest calls:
perfsuite.measure.change_points). A slow spell of a shared machine, another process or a lowered
clock only ever adds time, so a version's fastest call is its least disturbed number: over a
quiet 2-core machine's A/A runs it found +10% steps in 96-97% of synthetic histories where the
median found 86-92% (docs/bisect.md, "The fastest call").

Where the gate fired: a saved run carries the verdict its gate gave (extra_info "gate"); a
baseline version does not, so the gate is replayed: each version's newest recording is judged
against the previous version's recordings with the gate's own rules (perfsuite.gate.decide) and the
policy given, as a run measuring it would have been judged.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.errors import PerfsuiteError
from perfsuite.gate.decide import judge_latency
from perfsuite.gate.store import BaselineError, LatencyRecording, load_baseline
from perfsuite.git import GitError, git
from perfsuite.measure.change_points import ChangePoint, change_points
from perfsuite.report import plots
from perfsuite.report.html import esc, image, page, table
from perfsuite.report.run_files import RunRecord


class HistoryError(PerfsuiteError):
    """The history asked for cannot be read."""


@dataclass(frozen=True)
class Version:
    """One benchmark's numbers at one point in time."""

    label: str  # a commit and its date, or a run's time
    recordings: tuple[LatencyRecording, ...]
    device: str
    recorded_gate: str = ""  # the verdict the run's gate gave, where the run kept it


@dataclass(frozen=True)
class Point:
    label: str
    median_ms: float
    tail_ms: float
    fired: bool
    verdict: str
    fastest_ms: float  # the fastest call (the median over the version's recordings)


def statistic_of(versions: Sequence[Version]) -> str:
    """GPU compute where every version has it (the steadier number), else end to end."""
    return "gpu" if all(r.gpu is not None for v in versions for r in v.recordings) else "e2e"


def replay(name: str, versions: Sequence[Version], policy: GatePolicy) -> list[Point]:
    """The series of one benchmark, oldest first, with the gate's verdict at each version."""
    statistic = statistic_of(versions)
    points = []
    for index, version in enumerate(versions):
        stats = [r.stats(statistic) for r in version.recordings]
        median = statistics.median(s.median_ms for s in stats if s is not None)
        tail = statistics.median(s.p90_ms for s in stats if s is not None)
        fastest = statistics.median(s.min_ms for s in stats if s is not None)
        if version.recorded_gate:
            verdict = version.recorded_gate
        elif index == 0:
            verdict = "first version"
        else:
            verdicts = judge_latency(name, version.recordings[-1], versions[index - 1].recordings,
                                     version.device, policy)
            decider = next((v for v in verdicts if v.decides), None)
            verdict = ("not comparable" if decider is None else
                       f"{'REGRESSED' if decider.failed else decider.status} x{decider.ratio:.3f} "
                       f"(fails above x{decider.threshold:.3f})")
        points.append(Point(version.label, median, tail, "REGRESSED" in verdict, verdict, fastest))
    return points


@dataclass(frozen=True)
class Change:
    """A step in one benchmark's series, between two versions."""

    benchmark: str
    before: str  # the last version at the old level
    after: str  # the first version at the new level
    point: ChangePoint

    def describe(self) -> str:
        return (f"{self.benchmark}: x{self.point.ratio:.3f} (fastest call) between "
                f"{self.before} and {self.after} (confidence {self.point.confidence:.1%})")


def changes(name: str, points: Sequence[Point]) -> list[Change]:
    """The change points of a benchmark's fastest calls, each with the versions around it."""
    found = change_points([p.fastest_ms for p in points]) if points else []
    return [Change(name, points[c.index - 1].label, points[c.index].label, c) for c in found]


def git_versions(path: Path) -> list[tuple[str, str]]:
    """(label, file text) of each committed version of `path`, oldest first."""
    path = path.resolve()  # a link: git knows the file it points to
    folder = path.parent
    if not folder.is_dir():
        raise HistoryError(f"{path} | its folder does not exist.\nRemedy: name a baseline file, "
                           "e.g. baselines/<machine-key>/baseline.json.")
    log = _git(folder, "log", "--format=%H %cI", "--", path.name)
    versions = []
    for line in reversed(log.splitlines()):
        commit, date = line.split(" ", 1)
        text = _git(folder, "show", f"{commit}:./{path.name}", missing_ok=True)
        if text:
            versions.append((f"{commit[:8]} {date[:10]}", text))
    if not versions:
        raise HistoryError(f"{path} | has no committed versions in git.\nRemedy: commit the "
                           "baseline (it is meant to live in version control), or pass saved "
                           "pytest-benchmark runs instead.")
    return versions


def _git(folder: Path, *args: str, missing_ok: bool = False) -> str:
    try:
        return git(folder, *args, timeout=60)
    except GitError as exc:
        if missing_ok:
            return ""
        raise HistoryError(f"{folder} | git {args[0]} failed: {exc}.\nRemedy: name a baseline "
                           "file inside a git work tree (and have git installed).") from exc


def baseline_versions(path: Path, notes: list[str]) -> dict[str, list[Version]]:
    """Per benchmark, its recordings in each committed version of the baseline at `path`. A
    version that cannot be read (another schema, a broken file) is left out, said in `notes`."""
    series: dict[str, list[Version]] = {}
    for label, text in git_versions(path):
        try:
            baseline = load_baseline(path, text)
        except BaselineError as exc:
            notes.append(f"left out {label}: {str(exc).split(' | ', 1)[-1].splitlines()[0]}")
            continue
        if baseline is None:
            continue
        for name, recordings in baseline.latency.items():
            device = baseline.identity.get(name, {}).get("device", "")
            series.setdefault(name, []).append(Version(label, recordings, device))
    return series


def run_versions(runs: Sequence[RunRecord]) -> dict[str, list[Version]]:
    """Per benchmark, its numbers in each saved run, oldest first; runs of several machines
    give a series per machine (a machine is only ever compared with itself)."""
    series: dict[str, list[Version]] = {}
    several = len({run.machine for run in runs}) > 1
    for run in sorted(runs, key=lambda r: r.when):
        for result in run.results:
            if result.latency is None:
                continue
            enqueue = result.enqueue_latency.median_ms if result.enqueue_latency else None
            recording = LatencyRecording(result.latency, result.gpu_latency, enqueue,
                                         energy=result.energy)
            name = f"{result.case.id} on {run.machine}" if several else result.case.id
            series.setdefault(name, []).append(Version(
                f"{run.when[:16].replace('T', ' ')} {run.commit[:8]}".strip(), (recording,),
                result.case.device, run.gate.get(result.case.id, "")))
    return series


def history_page(series: dict[str, list[Version]], policy_of: Callable[[str], GatePolicy],
                 source: str, notes: Sequence[str] = ()) -> tuple[str, list[Change]]:
    """A plot and a table per benchmark, and the change points found; `policy_of(benchmark)`
    gives the limits to replay."""
    body = [f'<p class="meta">{esc(note)}</p>' for note in notes]
    fired_total = 0
    steps: list[Change] = []
    for name, versions in sorted(series.items()):
        points = replay(name, versions, policy_of(name.split(" on ")[0]))
        found = changes(name, points)
        steps += found
        fired_total += sum(p.fired for p in points)
        starts = {c.after: c for c in found}
        what = "GPU compute" if statistic_of(versions) == "gpu" else "end to end"
        body += [f"<h2>{esc(name)}</h2>", '<div class="plots">', image(plots.history(
            f"{name}: {what}", [p.label for p in points], [p.median_ms for p in points],
            [p.tail_ms for p in points], [p.fired for p in points], "ms",
            changes=[c.point.index for c in found]),
            f"{name}: median and p90 ({what}) per version; ringed where the gate fired; dotted "
            "lines where the series of fastest calls stepped"), "</div>",
            table(("version", "median ms", "p90 ms", "fastest ms", "change point", "gate"),
                  [(p.label, f"{p.median_ms:.4g}", f"{p.tail_ms:.4g}", f"{p.fastest_ms:.4g}",
                    _change_cell(starts.get(p.label)), p.verdict) for p in points],
                  verdict_columns=[5])]
    subtitle = (f"{source}: {len(series)} benchmarks; the gate fired {fired_total} times "
                "(saved runs: as recorded; baseline versions: replayed with this repository's "
                f"gate settings); {len(steps)} change points")
    return page("perfsuite history", subtitle, body), steps


def _change_cell(change: Change | None) -> str:
    if change is None:
        return ""
    return (f"fastest call steps x{change.point.ratio:.3f} here (since {change.before}; "
            f"confidence {change.point.confidence:.1%})")
