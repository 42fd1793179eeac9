"""TensorRT through NVIDIA's `trtexec` tool: the one TensorRT interface every JetPack has (the
Jetson Nano's JetPack 4 has Python bindings for Python 3.6 only).

The engine is built from the cached fp32 ONNX (`--fp16` for fp16, I/O kept fp32) with the flags
the installed TensorRT version takes (trtexec_flags.py) and cached like every artifact. trtexec
times itself: one run of `--iterations=rounds` with `--exportTimes` gives per-inference GPU
compute (computeMs), end to end (latencyMs: host-to-device copy, compute, device-to-host copy)
and enqueue times, which the latency test records instead of timing `run`. `run` feeds one input
through `--loadInputs` and reads `--exportOutput`, so agreement and drift use perfsuite's inputs.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from perfsuite.backends.base import Backend, CaseSpec, ModelArtifacts, Runner, ToolTimings
from perfsuite.backends.tensorrt.engine import EngineBuildError, onnx_digest, parser_max_opset
from perfsuite.backends.tensorrt.trtexec_flags import TrtexecVersion
from perfsuite.errors import BackendUnavailable
from perfsuite.machine.fingerprint import board_release, gpu_facts
from perfsuite.models.export import INPUT_NAME
from perfsuite.models.torch_model import ModelSpec
from perfsuite.progress import step

ENGINE_FILE = "model.plan"
JETPACK_TRTEXEC = Path("/usr/src/tensorrt/bin/trtexec")
NOT_FOUND = ("trtexec not found on PATH or at /usr/src/tensorrt/bin/trtexec (it comes with "
             "JetPack and with every TensorRT install); or name it: [tool.perfsuite.tensorrt] "
             "trtexec = \"/path/to/trtexec\"")
BUILD_TIMEOUT_S = 3 * 3600  # a large model on a Jetson Nano builds for many minutes
TIMESTAMP_DIGITS = 6  # sampleReporting.cpp writes --exportTimes through a default std::ostream
COARSE_SHARE = 0.1  # enqueue times are kept where the timestamps' step is at most 10% of them
ENQUEUE_SUMMARY = re.compile(r"Enqueue Time: min = [^,]+, max = [^,]+, mean = [^,]+, "
                             r"median = ([0-9.eE+-]+) ms")


def find_trtexec(configured: str) -> Path | None:
    """The configured trtexec, else the one on PATH, else JetPack's."""
    if configured:
        return Path(configured)
    found = shutil.which("trtexec")
    if found:
        return Path(found)
    return JETPACK_TRTEXEC if os.access(JETPACK_TRTEXEC, os.X_OK) else None


def call(trtexec: Path, args: list[str], what: str, timeout: float) -> str:
    """Run trtexec; its stdout, or an EngineBuildError quoting the end of its output."""
    try:
        done = subprocess.run([str(trtexec), *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineBuildError(f"trtexec {trtexec} | {what}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr + done.stdout).strip().splitlines()[-8:])
        raise EngineBuildError(f"trtexec {trtexec} | {what} failed (exit {done.returncode}):\n"
                               f"{tail}\nCommand: trtexec {' '.join(args)}")
    return done.stdout


def read_version(trtexec: Path) -> TrtexecVersion:
    """The TensorRT version trtexec reports in its banner (`trtexec --help` exits 0)."""
    try:
        return TrtexecVersion.from_banner(call(trtexec, ["--help"], "--help", timeout=60))
    except (EngineBuildError, ValueError) as exc:
        raise BackendUnavailable(f"{trtexec} does not run as trtexec: {exc}") from exc


def timestamp_resolution_ms(value: float) -> float:
    """The step of a time trtexec wrote: std::ostream's default 6 significant digits, so 0.001 ms
    below 100 ms into its run, 0.1 ms past 10 s, 1 ms past 100 s."""
    if not math.isfinite(value) or value == 0:
        return 0.0
    return 10.0 ** (math.floor(math.log10(abs(value))) - (TIMESTAMP_DIGITS - 1))


def enqueue_fields(version: TrtexecVersion) -> tuple[str, str] | None:
    """The --exportTimes keys holding enqueue start and end: 7.0 writes none, and 7.1 and 7.2
    write the enqueue times under startInMs/endInMs and the copy's under startEnqMs/endEnqMs
    (sampleReporting.cpp on those branches swaps the labels)."""
    if not version.at_least(7, 1):
        return None
    return ("startEnqMs", "endEnqMs") if version.at_least(8, 0) else ("startInMs", "endInMs")


def enqueue_times(records: list[dict[str, float]], summary: str,
                  fields: tuple[str, str] | None = ("startEnqMs", "endEnqMs"),
                  ) -> tuple[tuple[float, ...] | None, str]:
    """Per-inference enqueue seconds from --exportTimes' start/end timestamps, or None and why:
    the JSON has no enqueue duration, and a difference of two timestamps is only as fine as
    their step (a true 0.03 ms read as 0.0 or 0.1 at 12 s into the run)."""
    if fields is None or any(f not in r for r in records for f in fields):
        return None, "enqueue not reported: this trtexec's --exportTimes has no enqueue times"
    start, end = fields
    ends = [float(r[end]) for r in records]
    durations = [stop - float(r[start]) for stop, r in zip(ends, records)]
    step_ms = max(timestamp_resolution_ms(end) for end in ends)
    median = statistics.median(durations)
    if step_ms <= COARSE_SHARE * median:  # rounded to the step: no float noise
        places = max(0, -math.floor(math.log10(step_ms))) if step_ms else 9
        return tuple(round(d, places) / 1e3 for d in durations), ""
    told = ENQUEUE_SUMMARY.search(summary)
    return None, (f"enqueue coarse: not reported per inference; trtexec's --exportTimes "
                  f"timestamps step by {step_ms:g} ms at {max(ends) / 1e3:.0f} s into its run "
                  f"(6 significant digits), while their differences read {median:g} ms at the "
                  f"median" + (f" (trtexec's own summary: enqueue median {told.group(1)} ms)"
                               if told else ""))


class TrtexecRunner(Runner):
    timed_by_tool: ClassVar[bool] = True

    def __init__(self, case: CaseSpec, spec: ModelSpec, trtexec: Path, version: TrtexecVersion,
                 engine: Path, cuda_graph: bool, recipe: str) -> None:
        super().__init__(case, spec.input_shape, engine.stat().st_size)
        self._trtexec, self._version, self._engine = trtexec, version, engine
        self._cuda_graph, self._recipe = cuda_graph, recipe
        self._folder = Path(tempfile.mkdtemp(prefix="perfsuite-trtexec-"))

    def _input_file(self, inputs: np.ndarray) -> Path:
        path = self._folder / "input.bin"
        np.ascontiguousarray(inputs, dtype=np.float32).tofile(path)
        return path

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        output = self._folder / "output.json"
        args = self._version.output_flags(self._engine, INPUT_NAME, self._input_file(inputs),
                                          output)
        call(self._trtexec, args, f"{self.case.id} inference", timeout=600)
        tensors = json.loads(output.read_text())
        first = tensors[0]
        shape = tuple(int(d) for d in str(first["dimensions"]).split("x") if d)
        return np.asarray(first["values"], dtype=np.float32).reshape(shape)

    def tool_timings(self, inputs: np.ndarray, rounds: int, warmup_s: float) -> ToolTimings:
        times = self._folder / "times.json"
        args = self._version.timing_flags(self._engine, INPUT_NAME, self._input_file(inputs),
                                          times, rounds, warmup_s, self._cuda_graph)
        summary = call(self._trtexec, args, f"{self.case.id} timing",
                       timeout=max(600.0, 10 * warmup_s))
        records = json.loads(times.read_text())[-rounds:]  # 8.2 also lists warm-up inferences
        if len(records) < rounds:
            raise EngineBuildError(f"{self.case.id} | trtexec timed {len(records)} inferences, "
                                   f"{rounds} were asked for.")
        enqueue_s, note = enqueue_times(records, summary, enqueue_fields(self._version))
        return ToolTimings(
            e2e_s=tuple(float(r["latencyMs"]) / 1e3 for r in records),
            gpu_s=tuple(float(r["computeMs"]) / 1e3 for r in records),
            enqueue_s=enqueue_s, notes=(note,) if note else (),
        )

    def describe(self) -> dict[str, str]:
        return {"runtime": f"TensorRT {self._version} (trtexec)", "recipe": self._recipe,
                "cuda_graph": "on" if self._cuda_graph else "off", "buffers": "trtexec",
                "engine": self._engine.name}

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)
        super().close()


class TrtexecBackend(Backend):
    name: ClassVar[str] = "trtexec"
    devices: ClassVar[tuple[str, ...]] = ("cuda",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")
    # a program, not a package: its TensorRT version is in describe(), compared per benchmark

    def available(self) -> tuple[bool, str]:
        if find_trtexec(self.options.trtexec) is None:
            return False, NOT_FOUND
        return True, ""

    def prepare(self, spec: ModelSpec, artifacts: ModelArtifacts, precision: str,
                device: str) -> Runner:
        trtexec = find_trtexec(self.options.trtexec)  # a configured one was checked at load
        if trtexec is None:
            raise BackendUnavailable(NOT_FOUND)
        version = read_version(trtexec)
        workspace_mb = max(1, self.options.trt_workspace_bytes >> 20)
        recipe = " ".join(version.recipe_flags(precision, workspace_mb))
        engine = self._engine(trtexec, version, artifacts, precision, workspace_mb, recipe)
        case = CaseSpec(spec.name, self.name, precision, device)
        return TrtexecRunner(case, spec, trtexec, version, engine, self.options.trt_cuda_graph,
                             recipe)

    def _engine(self, trtexec: Path, version: TrtexecVersion, artifacts: ModelArtifacts,
                precision: str, workspace_mb: int, recipe: str) -> Path:
        # --fp16 builds fp16 kernels from the fp32 graph; older parsers read older opsets
        onnx = artifacts.onnx("fp32", parser_max_opset(version.major, version.minor))
        cache, progress = self.options.cache, self.options.progress
        timing_cache = cache.root / "trtexec" / f"timing-{version}.cache"
        key = {"onnx_sha256": onnx_digest(onnx), "trtexec": str(version), "recipe": recipe,
               **board_release(),
               **{k: str(v) for k, v in gpu_facts().items() if k != "driver"}}

        def build(directory: Path) -> None:
            args = version.build_flags(onnx.path, directory / ENGINE_FILE, precision,
                                       workspace_mb, timing_cache)
            with step(progress, f"building a TensorRT {version} engine with trtexec ({recipe}) "
                                f"from {onnx.path.name}"):
                call(trtexec, args, "engine build", timeout=BUILD_TIMEOUT_S)

        def validate(directory: Path) -> None:
            if (directory / ENGINE_FILE).stat().st_size == 0:
                raise ValueError("the engine file is empty")

        name = f"{artifacts.spec.name}-{precision}"
        entry = cache.get_or_build("trtexec", name, key, build, validate)
        if entry.hit:
            progress(f"reusing cached trtexec engine {entry.path / ENGINE_FILE}")
        return entry.path / ENGINE_FILE

