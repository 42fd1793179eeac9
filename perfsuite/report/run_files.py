"""One run's results as the reports see them: made from the live run, or read back from the JSON
pytest-benchmark writes (`--benchmark-json`, or `--benchmark-autosave` under .benchmarks/).

Both give the same CaseResult records the terminal table renders, so a report of a run and a
report merged from several machines' files go through the same code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from perfsuite.errors import PerfsuiteError
from perfsuite.results import CaseResult, RunResults, decode_case_result, positive_ms

READ_HINT = ("pass the file pytest wrote with --benchmark-json=PATH (or a folder of "
             "--benchmark-autosave runs) from a run of the perfsuite suite")


class RunFileError(PerfsuiteError):
    """A results file that cannot be read as a perfsuite run."""


class NoPerfsuiteResults(RunFileError):
    """A readable JSON file that holds no perfsuite benchmarks (another tool's, or a run in
    which every benchmark skipped)."""


@dataclass(frozen=True)
class RunRecord:
    """What one machine measured in one run."""

    machine: str  # its machine key, or its host name where the file has none
    when: str  # ISO date and time of the run
    commit: str  # the git commit measured, where known
    environment: dict[str, str]  # hardware, software and telemetry facts, flattened
    results: tuple[CaseResult, ...]
    samples_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per case id
    gate: dict[str, str] = field(default_factory=dict)  # case id -> the gate's verdict, in words
    source: str = ""  # the file it was read from

    def result(self, case_id: str) -> CaseResult | None:
        return next((r for r in self.results if r.case.id == case_id), None)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested facts as 'a.b: value' pairs; empty values dropped, lists joined."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            text = ", ".join(str(v) for v in value if not isinstance(v, (Mapping, list)))
            if text:
                flat[name] = text
        elif value not in (None, ""):
            flat[name] = str(value)
    return flat


def read_benchmark_json(path: Path) -> RunRecord:
    """The perfsuite benchmarks in a pytest-benchmark JSON file; RunFileError naming the file
    when it is no such file (other benchmarks in it are left out)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RunFileError(f"{path} | cannot be read as JSON ({type(exc).__name__}: "
                           f"{getattr(exc, 'strerror', None) or exc}).\nRemedy: {READ_HINT}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise NoPerfsuiteResults(f"{path} | is not a pytest-benchmark results file (no 'benchmarks' "
                           f"list).\nRemedy: {READ_HINT}.")
    results, samples, gate = [], {}, {}
    for index, bench in enumerate(data["benchmarks"]):
        info = bench.get("extra_info") if isinstance(bench, dict) else None
        if not isinstance(info, dict) or "backend" not in info:
            continue  # another plugin's or the user's own benchmark
        try:
            result = decode_case_result(info)
            data_s = (bench.get("stats") or {}).get("data") or ()  # --benchmark-save-data
            samples[result.case.id] = tuple(positive_ms(s) for s in data_s)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise RunFileError(f"{path} | benchmark {index} ({bench.get('name', '?')}) is not a "
                               f"perfsuite record ({type(exc).__name__}: {exc}).\n"
                               f"Remedy: {READ_HINT}.") from exc
        results.append(result)
        if isinstance(info.get("gate"), str):
            gate[result.case.id] = info["gate"]
    if not results:
        raise NoPerfsuiteResults(f"{path} | holds no perfsuite benchmarks (none has perfsuite's "
                           f"extra_info).\nRemedy: {READ_HINT}.")
    machine, commit = _mapping(data, "machine_info"), _mapping(data, "commit_info")
    perfsuite = _mapping(machine, "perfsuite")
    label = str(perfsuite.get("machine_key") or machine.get("node") or path.stem)
    return RunRecord(label, str(data.get("datetime", "")), str(commit.get("id") or ""),
                     {**flatten({k: v for k, v in machine.items() if k != "perfsuite"}),
                      **flatten(perfsuite, "perfsuite.")},
                     tuple(results), samples, gate, str(path))


def _mapping(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def json_files(paths: Iterable[Path]) -> list[tuple[Path, bool]]:
    """(file, found in a folder) for the files named and the *.json files under the folders
    named (sorted); RunFileError for a path that does not exist or a folder with none."""
    found: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not inside:
                raise RunFileError(f"{path} | is a folder with no .json files in it.\n"
                                   f"Remedy: {READ_HINT}.")
            found.extend((p, True) for p in inside)
        elif path.is_file():
            found.append((path, False))
        else:
            raise RunFileError(f"{path} | does not exist.\nRemedy: {READ_HINT}.")
    return found


def load_runs(paths: Iterable[Path], skipped: list[str]) -> list[RunRecord]:
    """Every run in `paths` (files or folders), in the order named. A JSON file found in a
    folder that holds no perfsuite benchmarks (a machine where every benchmark skipped, another
    tool's file) is left out and said in `skipped`; a file named is an error either way."""
    runs = []
    for path, in_folder in json_files(paths):
        try:
            runs.append(read_benchmark_json(path))
        except NoPerfsuiteResults as exc:
            if not in_folder:
                raise
            skipped.append(f"left out {path}: {str(exc).split(' | ', 1)[-1].splitlines()[0]}")
    return runs


def live_run(run: RunResults, machine: str, facts: Mapping[str, Any], commit: str,
             gate: Mapping[str, str]) -> RunRecord:
    """This run's record, for its own HTML report."""
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return RunRecord(machine, when, commit, flatten(facts), run.results, run.samples_ms,
                     dict(gate))
