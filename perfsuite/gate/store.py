"""Reading, writing and merging baselines/<machine-key>/baseline.json.

A baseline holds, per latency benchmark, one or more recordings (each a run's per-trial
statistics of both timings and the raw end-to-end samples), sizes and drift metrics, the
identity of every benchmark (what makes two numbers incomparable), the machine fingerprint and
software versions. A recording run merges into the file: what it did not measure is kept.
Files are written to a temporary file in the same folder and renamed into place, so an
interrupted or failing run leaves the previous baseline byte-identical. JSON keys are sorted and
indented, so an update reads well in a pull request.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perfsuite.errors import PerfsuiteError
from perfsuite.files import atomic_write_text
from perfsuite.measure.energy import EnergyStats
from perfsuite.measure.latency_stats import LatencyStats, positive

BASELINE_FILE = "baseline.json"
SCHEMA = 2
MAX_RECORDINGS = 10
BASELINE_KEYS = {"schema", "machine_key", "machine", "software", "latency", "sizes", "drift",
                 "identity"}
RECORDING_KEYS = {"e2e", "gpu", "enqueue_ms", "samples_ms", "energy"}
ANYWHERE_ENV = "PERFSUITE_BASELINES_ANYWHERE"
LOCK_TIMEOUT_S = 600.0  # a recording waits this long for another run's recording to finish
RECORD_HINT = "record one with `pytest --perf-save-baseline` (add runs with --perf-add-recording)"


class BaselineError(PerfsuiteError):
    """A baseline is missing, unreadable or of another schema."""


@dataclass(frozen=True)
class LatencyRecording:
    """One run's latency numbers for one benchmark: end to end (host clock) and, on CUDA, GPU
    compute (CUDA events) with the host's launch time; where measured, energy per inference."""

    e2e: LatencyStats
    gpu: LatencyStats | None = None
    enqueue_ms: float | None = None
    samples_ms: tuple[float, ...] = ()
    energy: EnergyStats | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)  # unknown keys, kept

    def stats(self, statistic: str) -> LatencyStats | None:
        return self.gpu if statistic == "gpu" else self.e2e

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.extra, "e2e": self.e2e.as_dict(),
                                "samples_ms": list(self.samples_ms)}
        if self.gpu is not None:
            data["gpu"] = self.gpu.as_dict()
        if self.enqueue_ms is not None:
            data["enqueue_ms"] = self.enqueue_ms
        if self.energy is not None:
            data["energy"] = self.energy.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyRecording:
        gpu, enqueue, energy = data.get("gpu"), data.get("enqueue_ms"), data.get("energy")
        return cls(LatencyStats.from_dict(data["e2e"]),
                   LatencyStats.from_dict(gpu) if gpu is not None else None,
                   positive(enqueue, "enqueue_ms") if enqueue is not None else None,
                   tuple(positive(v, "samples_ms") for v in data.get("samples_ms", ())),
                   EnergyStats.from_dict(energy) if energy is not None else None,
                   {k: v for k, v in data.items() if k not in RECORDING_KEYS})


@dataclass(frozen=True)
class Baseline:
    machine_key: str
    machine: dict[str, Any]
    software: dict[str, str]
    latency: dict[str, tuple[LatencyRecording, ...]] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    drift: dict[str, dict[str, float]] = field(default_factory=dict)
    identity: dict[str, dict[str, str]] = field(default_factory=dict)  # per benchmark name
    extra: dict[str, Any] = field(default_factory=dict)  # keys perfsuite does not know: kept

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "schema": SCHEMA,
            "machine_key": self.machine_key,
            "machine": self.machine,
            "software": self.software,
            "latency": {k: [r.as_dict() for r in v] for k, v in sorted(self.latency.items())},
            "sizes": self.sizes,
            "drift": self.drift,
            "identity": self.identity,
        }

    def benchmark_names(self) -> set[str]:
        return set(self.latency) | {f"size:{m}" for m in self.sizes} | {f"drift:{c}" for c in self.drift}


def size_name(model: str) -> str:
    return f"size:{model}"


def drift_name(case_id: str) -> str:
    return f"drift:{case_id}"


@dataclass(frozen=True)
class Merge:
    """A merged baseline and what happened to each benchmark, for the run's summary."""

    baseline: Baseline
    updated: tuple[str, ...]
    kept: tuple[str, ...]  # in the old baseline, not measured by this run: kept as they were
    refused: tuple[str, ...]  # measured, but not comparable with the stored entry: not added


def merge(old: Baseline | None, fresh: Baseline, add: bool) -> Merge:
    """`fresh` (one run) merged into `old`. Entries this run did not measure are kept. With
    `add`, latency recordings are appended (the last MAX_RECORDINGS kept) where the identity is
    unchanged and refused where it changed; without, measured entries replace the old ones."""
    if old is None:
        return Merge(fresh, tuple(sorted(fresh.benchmark_names())), (), ())
    latency = dict(old.latency)
    identity = dict(old.identity)
    refused = []
    for name, recordings in fresh.latency.items():
        changed = name in old.latency and old.identity.get(name) != fresh.identity.get(name)
        if add and changed:
            refused.append(name)
            continue
        kept = old.latency.get(name, ()) if add else ()
        latency[name] = (*kept, *recordings)[-MAX_RECORDINGS:]
        identity[name] = fresh.identity.get(name, {})
    sizes = {**old.sizes, **fresh.sizes}
    drift = {**old.drift, **fresh.drift}
    for name in (*map(size_name, fresh.sizes), *map(drift_name, fresh.drift)):
        identity[name] = fresh.identity.get(name, {})
    merged = replace(fresh, latency=latency, sizes=sizes, drift=drift, identity=identity,
                     extra={**old.extra, **fresh.extra})
    measured = fresh.benchmark_names()
    return Merge(merged, tuple(sorted(measured - set(refused))),
                 tuple(sorted(old.benchmark_names() - measured)), tuple(sorted(refused)))


def baseline_path(baselines_dir: Path, key: str) -> Path:
    return baselines_dir / key / BASELINE_FILE


def load_baseline(path: Path, text: str | None = None) -> Baseline | None:
    """The baseline at `path` (or `text`, a version of it from git), None when there is none,
    BaselineError when it is unusable."""
    if text is None and not path.exists():
        return None
    try:
        if text is None and not (path.is_file() or path.is_dir()):  # a FIFO would block
            raise ValueError("not a regular file (a FIFO, device or socket)")
        data = json.loads(path.read_text(encoding="utf-8") if text is None else text)
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("schema") != SCHEMA:
            raise BaselineError(f"{path} | schema {data.get('schema')!r}, expected {SCHEMA}.\n"
                                f"Remedy: re-record it: {RECORD_HINT}.")
        return Baseline(
            machine_key=str(data["machine_key"]),
            machine=dict(data["machine"]),
            software={str(k): str(v) for k, v in data["software"].items()},
            latency={str(name): _recordings(recordings)
                     for name, recordings in data["latency"].items()},
            sizes={str(m): {str(k): _size(v, k) for k, v in s.items()}
                   for m, s in data["sizes"].items()},
            drift={str(c): {str(k): _finite(v, k) for k, v in d.items()}
                   for c, d in data["drift"].items()},
            identity={str(n): {str(k): str(v) for k, v in i.items()}
                      for n, i in data["identity"].items()},
            extra={k: v for k, v in data.items() if k not in BASELINE_KEYS},
        )
    except BaselineError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise BaselineError(
            f"{path} | cannot be read as a perfsuite baseline ({type(exc).__name__}: {exc}).\n"
            f"Remedy: restore it from version control, or replace it: `pytest "
            f"--perf-save-baseline` records a new one."
        ) from exc


def _recordings(data: Any) -> tuple[LatencyRecording, ...]:
    if not isinstance(data, list) or not data:
        raise ValueError("a latency benchmark needs a non-empty list of recordings")
    return tuple(LatencyRecording.from_dict(r) for r in data)


def _size(value: Any, name: str) -> int:
    """A size in bytes: a whole number of at least 1 (0.5 would become 0, an 'x inf' ratio)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of bytes of at least 1, got {value!r}")
    return value


def _finite(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def write_baseline(path: Path, baseline: Baseline) -> None:
    """Write atomically (perfsuite.files), keeping the file's permissions. A NaN or infinite
    number is refused: it would switch the gate off (every comparison with NaN is false)."""
    try:
        text = json.dumps(baseline.as_dict(), indent=2, sort_keys=True, allow_nan=False)
    except ValueError as exc:
        raise BaselineError(f"{path} | this run measured a number that is NaN or infinite "
                            f"({exc}); see the run's failed tests.") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text + "\n")


@contextlib.contextmanager
def recording_lock(folder: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the lock on `folder` (baselines/<key>) for one read-merge-write: two runs recording
    at once both land, the second merging into what the first wrote. Where flock is missing
    (Windows), recording is not locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BaselineError(f"{folder} | another run has been recording here for "
                                        f"{timeout_s:g} s.\nRemedy: wait for it, or stop it.") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def outside_problem(path: Path, baselines_dir: Path) -> str:
    """Why `path` (a baseline file) must not be written: its folder resolves outside the
    repository (a link to elsewhere), unless PERFSUITE_BASELINES_ANYWHERE=1 allows it; or ''."""
    root = os.path.realpath(baselines_dir.parent)
    real = os.path.realpath(path.parent)
    if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
        return ""
    if os.environ.get(ANYWHERE_ENV) == "1":
        return ""
    return (f"{path.parent} resolves to {real}, outside the repository {root} (a symbolic "
            f"link); perfsuite writes baselines only inside it.\nRemedy: replace the link with "
            f"a folder, or set {ANYWHERE_ENV}=1 to write there")
