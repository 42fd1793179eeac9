"""Reading and writing baselines/<machine-key>/baseline.json.

A baseline holds, per benchmark, one or more recordings (each a run's per-trial statistics and
raw samples), sizes and drift metrics, the machine fingerprint and software versions. Files are
written to a temporary file in the same folder and renamed into place, so an interrupted or
failing run leaves the previous baseline byte-identical. JSON keys are sorted and indented, so an
update reads well in a pull request.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perfsuite.errors import PerfsuiteError

BASELINE_FILE = "baseline.json"
SCHEMA = 1
MAX_RECORDINGS = 10
RECORD_HINT = "record one with `pytest --perf-save-baseline` (add runs with --perf-add-recording)"


class BaselineError(PerfsuiteError):
    """A baseline is missing, unreadable or of another schema."""


@dataclass(frozen=True)
class LatencyRecording:
    """One run's latency numbers for one benchmark (ms)."""

    median_ms: float
    p90_ms: float
    p99_ms: float
    trial_medians_ms: tuple[float, ...]
    trial_p90_ms: tuple[float, ...]
    samples_ms: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms,
                "trial_medians_ms": list(self.trial_medians_ms),
                "trial_p90_ms": list(self.trial_p90_ms), "samples_ms": list(self.samples_ms)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyRecording:
        return cls(float(data["median_ms"]), float(data["p90_ms"]), float(data["p99_ms"]),
                   tuple(map(float, data["trial_medians_ms"])),
                   tuple(map(float, data["trial_p90_ms"])),
                   tuple(map(float, data.get("samples_ms", ()))))


@dataclass(frozen=True)
class Baseline:
    machine_key: str
    machine: dict[str, Any]
    software: dict[str, str]
    latency: dict[str, tuple[LatencyRecording, ...]] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    drift: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "machine_key": self.machine_key,
            "machine": self.machine,
            "software": self.software,
            "latency": {k: [r.as_dict() for r in v] for k, v in sorted(self.latency.items())},
            "sizes": self.sizes,
            "drift": self.drift,
        }

    def benchmark_names(self) -> set[str]:
        return set(self.latency) | {f"size:{m}" for m in self.sizes} | {f"drift:{c}" for c in self.drift}

    def with_recordings_added(self, new: Baseline) -> Baseline:
        """`new`'s sizes, drift and software, with its latency appended to this one's."""
        latency = dict(self.latency)
        for name, recordings in new.latency.items():
            latency[name] = (*latency.get(name, ()), *recordings)[-MAX_RECORDINGS:]
        return replace(new, latency=latency)


def baseline_path(baselines_dir: Path, key: str) -> Path:
    return baselines_dir / key / BASELINE_FILE


def load_baseline(path: Path) -> Baseline | None:
    """The baseline at `path`, None when there is none, BaselineError when it is unusable."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            raise BaselineError(f"{path} | schema {data.get('schema')!r}, expected {SCHEMA}.\n"
                                f"Remedy: re-record it: {RECORD_HINT}.")
        return Baseline(
            machine_key=str(data["machine_key"]),
            machine=dict(data["machine"]),
            software={str(k): str(v) for k, v in data["software"].items()},
            latency={name: tuple(LatencyRecording.from_dict(r) for r in recordings)
                     for name, recordings in data["latency"].items()},
            sizes={m: {k: int(v) for k, v in s.items()} for m, s in data["sizes"].items()},
            drift={c: {k: float(v) for k, v in d.items()} for c, d in data["drift"].items()},
        )
    except BaselineError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BaselineError(
            f"{path} | cannot be read as a perfsuite baseline ({type(exc).__name__}: {exc}).\n"
            f"Remedy: restore it from version control, or delete it and {RECORD_HINT}."
        ) from exc


def write_baseline(path: Path, baseline: Baseline) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(baseline.as_dict(), indent=2, sort_keys=True) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
