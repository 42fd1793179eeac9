"""The two sides of an A/B run (`--perf-ab=REF`, `--perf-ab-python=PATH`), each in its own
worker process (perfsuite.run.ab.process), driven one request at a time from the pytest process.

A side that cannot go on (its worker crashed, exited, or did not answer within
`[tool.perfsuite.ab] worker_timeout_s`) stops: its worker is killed, and every benchmark it had
left is "not compared" with the reason, while this tree's benchmarks are still measured.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from perfsuite.backends.base import CaseSpec
from perfsuite.config.settings import SuiteConfig
from perfsuite.errors import PerfsuiteError, SideError, SideStopped
from perfsuite.models.artifacts import ArtifactCache
from perfsuite.models.torch_model import import_folders
from perfsuite.progress import Progress
from perfsuite.run.ab.process import (
    SideSpec,
    WorkerSide,
    harness,
    timing_core,
)
from perfsuite.run.ab.wire import PROTOCOL

CaseKey = tuple  # (model, backend, precision)
VERSION_KEYS = (("python", "Python"), ("torch", "torch"), ("cuda", "CUDA"),
                ("onnxruntime", "onnxruntime"), ("onnxruntime-gpu", "onnxruntime-gpu"),
                ("tensorrt", "TensorRT"), ("tensorrt-cu12", "TensorRT"))

class IsolationError(PerfsuiteError):
    """A side loaded a module from the other side's tree."""


class SideStartError(PerfsuiteError):
    """A side's worker did not start: nothing could be compared."""


@dataclass
class PreparedPair:
    """Both sides' runners for one case, ready for ABBA trials."""

    key: CaseKey
    base: WorkerSide
    current: WorkerSide
    gpu: bool  # both sides time GPU compute with CUDA events
    last: WorkerSide | None = None  # the side that timed the previous trial

    def trials(self, side: WorkerSide, statistic: str) -> Callable[[int], list[float]]:
        """One side's trials; a trial that follows the other side's starts with an untimed call
        (the worker's threads had slept and its caches were the other process's)."""

        def trial(rounds: int) -> list[float]:
            after_other, self.last = self.last is not side, side
            return side.call("trial", self.key, statistic, rounds, after_other,
                             what=f"timing {'-'.join(self.key)}")

        return trial


class AbSides:
    """The run's two workers: REF's (or the other environment's) side and this tree's."""

    def __init__(self, label: str, base_config: SuiteConfig, base: SideSpec,
                 current: SideSpec, cache: ArtifactCache, timeout_s: float,
                 progress: Progress, base_cases: Sequence[tuple[str, str, str]] = ()) -> None:
        self.label = label
        self.base_config = base_config
        self._base_cases = list(base_cases)  # what REF configures: (model, backend, precision)
        self.failures: dict[str, str] = {}  # case id or size/drift name -> why not compared
        path = harness(cache)
        self.base = WorkerSide(base, path, timeout_s, progress)
        try:
            self.current = WorkerSide(current, path, timeout_s, progress)
        except PerfsuiteError:
            self.base.close()
            raise
        self.isolated = bool(base.other)
        self._launch_failed: list[str] = []  # why a worker could not be asked to start

    # -- starting ------------------------------------------------------------------------------
    def launch(self) -> None:
        """Ask both workers to start (import their packages and trees) and return at once:
        they start while this process goes on collecting; `ready` waits for them."""
        lengths = [max(len(os.path.realpath(p)) for p in pair)
                   for pair in zip(self.base.spec.own, self.current.spec.own)]
        for side in (self.base, self.current):
            try:
                side.send("start", {"own": [str(p) for p in side.spec.own],
                                    "other": [str(p) for p in side.spec.other],
                                    "first": [str(p) for p in import_folders(side.spec.own)],
                                    "lengths": lengths, "exempt": [],
                                    "config": side.spec.config, "timer": side.spec.timer,
                                    "core": timing_core()})
            except SideStopped as exc:
                self._launch_failed.append(_start_failure(side, exc))

    def ready(self, models: Sequence[str] = ()) -> None:
        """Wait for both workers to have started, then import every factory's module on each and
        check that no module came from the other side's tree (IsolationError otherwise). Each
        then builds `models` (the run's, in order) while this process goes on with its tests."""
        failed = list(self._launch_failed)
        for side in (self.base, self.current):
            if side.stopped:
                continue
            try:
                found = side.wait("starting")
            except (SideError, SideStopped) as exc:
                failed.append(_start_failure(side, exc))
                continue
            if found.get("protocol") != PROTOCOL:  # pragma: no cover - the harness is ours
                failed.append(f"{side.spec.label}'s worker speaks protocol "
                              f"{found.get('protocol')}, not {PROTOCOL}")
                continue
            side.versions = found
        if failed:  # nothing could be compared: a green run with no checks would mislead
            raise SideStartError("--perf-ab | " + "; ".join(failed) + ".\nRemedy: check that the "
                                 "interpreter runs and has the model's packages, or pick "
                                 "another with --perf-ab-python.")
        for side in self._running():
            try:
                side.call("import_factories", what="importing the factories")
            except (SideError, SideStopped):
                continue
        self.check_isolation()
        for side in self._running() if models else ():
            try:
                side.ahead("build_models", list(models), what="building its models")
            except SideStopped:
                continue  # the next request to it says why

    def _running(self) -> list[WorkerSide]:
        return [side for side in (self.base, self.current) if not side.stopped]

    def check_isolation(self) -> None:
        if not self.isolated:
            return
        for side in self._running():
            try:
                found = side.call("leaks", what="listing its modules")
            except (SideError, SideStopped):
                continue
            if found:
                raise IsolationError(isolation_message(side.spec, self.label, found))

    # -- what REF has --------------------------------------------------------------------------
    def case_params(self) -> list[tuple[str, str, str]]:
        return list(self._base_cases)

    def configures(self, model: str, backend: str, precision: str) -> bool:
        return (model, backend, precision) in self.case_params()

    # -- per benchmark -------------------------------------------------------------------------
    def prepare(self, case: CaseSpec, input_shape: tuple[int, ...]) -> PreparedPair | None:
        """Both sides' runners for `case`, or None with the reason in `failures`."""
        key = (case.model, case.backend, case.precision)
        if not self.configures(*key):
            return None  # new since REF: listed, not compared
        found, failure = self._both("prepare", key, what=f"preparing {case.id}")
        if failure is not None:
            self.failures[case.id] = self.side_failed(failure)
            return None
        self.check_isolation()
        base_shape = tuple(found[self.base.spec.label]["input_shape"])
        if base_shape != tuple(input_shape):
            self.failures[case.id] = (f"{self.label}'s side failed: input shape {base_shape} at "
                                      f"{self.label}, {tuple(input_shape)} now")
            return None
        return PreparedPair(key, self.base, self.current,
                            all(info["gpu"] for info in found.values()))

    def _both(self, op: str, *args: Any, what: str) -> tuple[dict[str, Any], Exception | None]:
        """`op` on both sides at once (their models build side by side, untimed): each side's
        reply by label, and the first failure. Every request sent is waited for, so no late
        reply can answer a later request."""
        asked: list[WorkerSide] = []
        failure: Exception | None = None
        for side in (self.base, self.current):
            try:
                side.send(op, *args)
                asked.append(side)
            except SideStopped as exc:
                failure = failure or exc
        found = {}
        for side in asked:
            try:
                found[side.spec.label] = side.wait(what)
            except (SideError, SideStopped) as exc:
                failure = failure or exc
        return found, failure

    def warm(self, pair: PreparedPair) -> None:
        # one at a time: at once, on 2 cores, the two workers' thread pools thrash (torch fp32
        # warmed for 11.8 s where one at a time takes 0.4 s)
        for side in (pair.base, pair.current):
            side.call("warm", pair.key, what=f"warming up {'-'.join(pair.key)}")

    def sizes(self, model: str, fp16_onnx: bool) -> dict[str, int]:
        return self._in_step("sizes", model, fp16_onnx, what=f"measuring {model}'s sizes")

    def drift(self, case: CaseSpec) -> dict[str, float] | None:
        return self._in_step("drift", (case.model, case.backend, case.precision),
                             what=f"measuring {case.id}'s drift")

    def _in_step(self, op: str, *args: Any, what: str) -> Any:
        """REF's answer to `op`, which this tree's side does too, one after the other: a worker
        keeps what an op builds (a bf16 copy of the model for drift, say) and times it later,
        so both sides must build the same things in the same order. When only REF's side
        built them, torch bf16 A/A comparisons of the default suite leaned x1.04-1.06 in 4 of 5
        runs on the 2-core machine (3 failed at +3%); with latency alone, x0.98-1.03."""
        found = self.base.call(op, *args, what=what)
        try:
            self.current.call(op, *args, what=what)
        except (SideError, SideStopped):
            pass  # REF's answer stands; the latency pairs say what this side cannot do
        return found

    def side_failed(self, error: Exception) -> str:
        """Why a comparison is missing, for the A/B summary."""
        if isinstance(error, SideError):
            return f"{error.label or self.label}'s side failed: {str(error).splitlines()[0]}"
        return str(error).splitlines()[0]

    def describe_sides(self) -> list[str]:
        """One line per side: its interpreter and the versions its numbers depend on."""
        lines = []
        for name, side in ((self.label, self.base), ("this tree", self.current)):
            found = side.versions
            parts = [f"{title} {found[key]}" for key, title in VERSION_KEYS if key in found]
            where = found.get("executable", side.spec.python)
            lines.append(f"{name}: {', '.join(parts) or 'not started'} ({where})")
        return lines

    def close(self) -> None:
        for side in (self.base, self.current):
            side.close()


def _start_failure(side: WorkerSide, error: Exception) -> str:
    said, named = str(error).splitlines()[0], f"{side.spec.label}'s worker "
    said = said[len(named):] if said.startswith(named) else said
    return f"{named}({side.spec.python}) failed to start: {said}"


def isolation_message(side: SideSpec, label: str, found: Sequence[Sequence[str]]) -> str:
    module, origin, how = found[0]
    others = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    tree = "the working tree" if side.label == label else f"{label}'s tree"
    return (f"--perf-ab | {side.label}'s side imported module {module} from {tree}: {origin}"
            f"{others}, made importable by {how}. Both sides would run the same code, and the "
            "A/B could not see a change in it.\n"
            "Remedy: keep the package at the repository root or under src/ (each side's worker "
            "puts its own tree's root and src/ first on its import path, and maps a .pth file's "
            "folder of the repository onto its own tree), or install it without -e "
            "(pip install .). Compiled extensions and data files read at run time are not "
            "isolated (README, A/B).")
