"""PerfRun: the state of one pytest run. Builds every model, ONNX file and backend runner at
most once, and collects the results the report renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from perfsuite.backends import (
    BACKEND_TYPES,
    RECIPE_KEYS,
    REFERENCE_BACKEND,
    REFERENCE_PRECISION,
    BackendOptions,
    CaseSpec,
    ModelArtifacts,
    Runner,
    configured_cases,
    make_backend,
)
from perfsuite.config.gate_policy import GatePolicy
from perfsuite.config.settings import SuiteConfig
from perfsuite.errors import BackendUnavailable, BuiltNotRunnable, PerfsuiteError
from perfsuite.lazy import require
from perfsuite.machine.device import configure_torch, resolve_device
from perfsuite.machine.monitor import RunMonitor
from perfsuite.machine.preflight import failure_action
from perfsuite.measure.agreement import Drift, drift
from perfsuite.measure.paired import Sequential
from perfsuite.measure.timing import Clock, interleaved_samples, warm_up
from perfsuite.models.artifacts import ArtifactCache
from perfsuite.models.export import ONNX_FILE, OnnxArtifact, export_onnx, validate_onnx
from perfsuite.models.inputs import input_set
from perfsuite.models.torch_model import ModelSpec, build_model, code_digest, weights_digest
from perfsuite.models.weights_cache import cached_realistic_weights
from perfsuite.progress import Progress, step
from perfsuite.results import CaseResult, ItemRecord, RunResults
from perfsuite.run.ab.sides import AbSides
from perfsuite.run.latency import LatencyPlan, measure_latency


class SuiteModelArtifacts(ModelArtifacts):
    """A model's torch module and ONNX exports, each built once and the ONNX cached on disk."""

    def __init__(self, spec: ModelSpec, config: SuiteConfig, cache: ArtifactCache,
                 progress: Progress) -> None:
        self.spec = spec
        self._config = config
        self._cache = cache
        self._progress = progress
        self._model: Any = None
        self._onnx: dict[tuple[str, int], OnnxArtifact | PerfsuiteError] = {}
        self._failure: PerfsuiteError | None = None
        self.builds = 0  # how many times the torch model was built (proves "once per session")

    def torch_model(self) -> Any:
        if self._failure is not None:  # a model that cannot be built fails once, not per test
            raise self._failure
        if self._model is None:
            try:
                with step(self._progress, f"building model {self.spec.name} ({self.spec.source})"):
                    self._model = build_model(self.spec, partial(cached_realistic_weights,
                                                                 cache=self._cache))
            except PerfsuiteError as exc:
                self._failure = exc
                raise
            self.builds += 1
        return self._model

    def onnx_key(self, precision: str, opset: int | None = None) -> dict[str, str]:
        torch, onnx = require("torch"), require("onnx")
        return {
            "model": self.spec.name,
            "weights_sha256": weights_digest(self.torch_model()),
            "code_sha256": code_digest(self.spec),
            "input_shape": "x".join(map(str, self.spec.input_shape)),
            "precision": precision,
            "exporter": self._config.onnx.exporter,
            "opset": str(opset or self._config.onnx.opset),
            "torch": torch.__version__,
            "onnx": onnx.__version__,
        }

    def onnx(self, precision: str, max_opset: int | None = None) -> OnnxArtifact:
        opset = min(self._config.onnx.opset, max_opset or self._config.onnx.opset)
        wanted = (precision, opset)
        if wanted not in self._onnx:
            try:
                self._onnx[wanted] = self._export(precision, opset)
            except PerfsuiteError as exc:  # an export that fails fails once, not per test
                self._onnx[wanted] = exc
        found = self._onnx[wanted]
        if isinstance(found, PerfsuiteError):
            raise found
        return found

    def _export(self, precision: str, opset: int) -> OnnxArtifact:
        exporter = self._config.onnx.exporter

        def build(directory: Any) -> None:
            model = self.torch_model()
            with step(self._progress, f"exporting {self.spec.name} {precision} to ONNX "
                                      f"({exporter}, opset {opset})"):
                export_onnx(model, self.spec.input_shape, precision, exporter, opset, directory)

        entry = self._cache.get_or_build(
            "onnx", f"{self.spec.name}-{precision}", self.onnx_key(precision, opset), build,
            validate=lambda directory: validate_onnx(directory, opset, exporter),
        )
        if entry.hit:
            self._progress(f"reusing cached ONNX {entry.path / ONNX_FILE}")
        return OnnxArtifact(entry.path / ONNX_FILE, precision, exporter, opset,
                            entry.size_bytes(), entry.hit)


class PerfRun:
    def __init__(self, config: SuiteConfig, progress: Progress = lambda message: None) -> None:
        self.config = config
        self.progress = progress
        self.cache = ArtifactCache(config.cache_dir)
        self._device: str | None = None
        self.cpu_threads = 0
        self._artifacts: dict[str, SuiteModelArtifacts] = {}
        self._runners: dict[CaseSpec, Runner | BackendUnavailable] = {}
        self._inputs: dict[str, np.ndarray] = {}
        self._outputs: dict[CaseSpec, np.ndarray] = {}
        self._results: dict[CaseSpec, CaseResult] = {}
        self._records: dict[tuple[str, str], ItemRecord] = {}  # (kind, name) -> the latest
        self._pending: list[ItemRecord] = []  # recorded since take_item_records last ran
        self.ab: AbSides | None = None  # --perf-ab: the two sides' workers (use_sides)
        # --perf-ab: (case id, statistic, statistics gating the case) -> when its pairs may
        # stop; the plugin sets the A/B gate's rule, with the test item's marker, before each test
        self.ab_rule: Callable[[str, str, int], Sequential] = lambda name, statistic, _: Sequential(
            GatePolicy().ab_limit(statistic), self.config.ab.min_pairs, self.config.ab.block_pairs)
        self.timer = ""  # pytest-benchmark's --benchmark-timer ('module.attr'), for workers
        self.paired_mode = False  # an A/B worker: its runners take turns with the other side's
        # timing.passes > 1: the latency benchmarks whose host-clock rounds are taken together
        # when the first of them is timed (plan_interleaved), then each one's samples
        self._interleave: list[CaseSpec] = []
        self._interleaved: dict[CaseSpec, tuple[float, ...]] = {}
        self.monitor = RunMonitor(config.preflight, failure_action(config.preflight.on_failure),
                                  lambda: self.device, threads=lambda: self.cpu_threads)

    def wants_fp16_onnx(self) -> bool:
        """Whether fp16 ONNX files belong to this run (and to its size records): some configured
        backend reads an fp16 export (Backend.onnx_precisions) and fp16 is configured."""
        return "fp16" in self.config.precisions and any(
            "fp16" in BACKEND_TYPES[name].onnx_precisions for name in self.config.backends)

    # -- what to run -------------------------------------------------------------------------
    def case_params(self) -> list[tuple[str, str, str]]:
        """(model, backend, precision) for every configured combination; imports nothing heavy."""
        config = self.config
        return configured_cases([spec.name for spec in config.models], config.backends,
                                config.precisions)

    def configures(self, model: str, backend: str, precision: str) -> bool:
        """Whether this run's configuration has the combination (REF's side may not)."""
        return (model, backend, precision) in self.case_params()

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.config.device)
            self.cpu_threads = configure_torch(self.config.cpu_threads, self.config.tf32)
        return self._device

    def may_run(self, model: str, backend: str, precision: str) -> bool:
        """Whether the case's backend is installed and runs on this run's device: the latency
        benchmarks a gate budgets the run's false alarms over (a build may still fail)."""
        made = make_backend(backend)
        return made.available()[0] and self.device in made.devices

    def case(self, model: str, backend: str, precision: str) -> CaseSpec:
        return CaseSpec(model, backend, precision, self.device)

    def reference_case(self, case: CaseSpec) -> CaseSpec:
        return replace(case, backend=REFERENCE_BACKEND, precision=REFERENCE_PRECISION)

    # -- built once --------------------------------------------------------------------------
    def artifacts(self, model: str) -> SuiteModelArtifacts:
        if model not in self._artifacts:
            self._artifacts[model] = SuiteModelArtifacts(
                self.config.model(model), self.config, self.cache, self.progress
            )
        return self._artifacts[model]

    def runner(self, case: CaseSpec) -> Runner:
        """The prepared runner for `case`; raises BackendUnavailable (cached) if it cannot run."""
        if case not in self._runners:
            self._runners[case] = self._prepare(case)
        prepared = self._runners[case]
        if isinstance(prepared, BackendUnavailable):
            raise prepared
        return prepared

    def prepare_again(self, case: CaseSpec, progress: Progress) -> Runner:
        """A second, independent runner for `case`, as a new pytest session would prepare it
        (the TensorRT self-check: its engine must come from the cache)."""
        prepared = self._prepare(case, progress)
        if isinstance(prepared, BackendUnavailable):
            raise prepared
        return prepared

    def _prepare(self, case: CaseSpec, progress: Progress | None = None
                 ) -> Runner | BackendUnavailable:
        trt = self.config.tensorrt
        options = BackendOptions(
            cpu_threads=self.config.cpu_threads, channels_last=self.config.channels_last,
            tf32=self.config.tf32, trt_workspace_bytes=trt.workspace_mb << 20,
            trt_cuda_graph=trt.cuda_graph, trt_host_buffers=trt.host_buffers,
            trtexec=trt.trtexec, torch_python=self.config.torch_python,
            device_setting=self.config.device, timer=self.timer,
            cache=self.cache, progress=progress or self.progress,
            ort_spinning=not self.paired_mode,
        )
        backend = make_backend(case.backend, options)
        ok, reason = backend.available()
        if not ok:
            return BackendUnavailable(reason)
        artifacts = self.artifacts(case.model)
        try:
            return backend.prepare(artifacts.spec, artifacts, case.precision, case.device)
        except BuiltNotRunnable as exc:  # its artifact's size still belongs in the table
            self._results.setdefault(case, CaseResult(case, exc.artifact_bytes,
                                                      details=exc.details,
                                                      warnings=(f"not run: {exc}",)))
            return exc
        except BackendUnavailable as exc:
            return exc

    def inputs(self, model: str) -> np.ndarray:
        """The fixed, deterministic agreement input set: (num_inputs, *input_shape)."""
        if model not in self._inputs:
            agreement = self.config.agreement
            spec = self.config.model(model)
            self._inputs[model] = input_set(spec, agreement.num_inputs, agreement.seed)
        return self._inputs[model]

    def outputs(self, case: CaseSpec) -> np.ndarray:
        """The session's outputs on the agreement input set, stacked."""
        if case not in self._outputs:
            runner = self.runner(case)
            self._outputs[case] = np.stack([runner.run(x) for x in self.inputs(case.model)])
        return self._outputs[case]

    def drift(self, case: CaseSpec) -> Drift | None:
        """Drift against torch fp32 on the same device; None for the reference itself."""
        reference = self.reference_case(case)
        if case == reference:
            return None
        try:
            expected = self.outputs(reference)
        except BackendUnavailable as exc:
            raise PerfsuiteError(f"{case.id} | the torch fp32 reference cannot run: {exc}") from exc
        return drift(self.outputs(case), expected)

    # -- results -----------------------------------------------------------------------------
    def measure_latency(self, benchmark: Any, case: CaseSpec, runner: Runner) -> CaseResult:
        """Time `case` through pytest-benchmark's fixture (perfsuite.run.latency) and record it."""
        measured = measure_latency(benchmark, self._latency_plan(case), runner)
        self.record(measured.result, measured.samples_ms)
        return measured.result

    def _latency_plan(self, case: CaseSpec) -> LatencyPlan:
        return LatencyPlan(case, self.config.timing, self.config.ab,
                           self.config.model(case.model).input_shape, self.inputs(case.model)[0],
                           self.monitor, self.progress, self.cpu_threads, self.ab,
                           lambda: self.drift(case),
                           lambda statistic, statistics: self.ab_rule(case.id, statistic,
                                                                      statistics),
                           lambda clock: self.interleaved_samples(case, clock))

    def plan_interleaved(self, cases: Sequence[tuple[str, str, str]]) -> None:
        """With `timing.passes` > 1, these (model, backend, precision) latency benchmarks (the
        run's selected ones) have their host-clock rounds taken together, spread over all of
        them, when the first of them is timed."""
        if self.config.timing.passes > 1:
            self._interleave = [self.case(*case) for case in cases]

    def interleaved_samples(self, case: CaseSpec, clock: Clock) -> tuple[float, ...] | None:
        """`case`'s interleaved host-clock seconds (timing them all, on `clock`, at the first
        planned case asked for); None where `case` is not interleaved."""
        if case in self._interleave:
            planned, self._interleave = self._interleave, []
            self._time_interleaved(planned, clock)
        return self._interleaved.pop(case, None)

    def _time_interleaved(self, cases: list[CaseSpec], clock: Clock) -> None:
        timing = self.config.timing
        calls: dict[CaseSpec, Callable[[], object]] = {}
        for case in cases:
            try:
                runner = self.runner(case)
            except PerfsuiteError:  # its own test says why when it runs
                continue
            if not runner.timed_by_tool:
                calls[case] = partial(runner.run, self.inputs(case.model)[0])
        passes = min(timing.passes, timing.rounds)
        done = [0]

        def passed(count: int) -> None:
            done[0] = count

        with step(self.progress, f"interleaved timing: {timing.rounds} rounds of each of "
                                 f"{len(calls)} latency benchmarks in {passes} passes",
                  status=lambda elapsed: f"{done[0]}/{passes} passes"):
            for call in calls.values():
                warm_up(call, timing.warmup_seconds, timing.warmup_min_runs)
            samples = interleaved_samples(calls, timing.rounds, passes, clock, on_pass=passed)
        self._interleaved = {case: tuple(times) for case, times in samples.items()}

    def use_sides(self, sides: AbSides) -> None:
        """--perf-ab: latency is measured in the two sides' workers, in pairs."""
        self.ab = sides

    def record(self, result: CaseResult, samples_ms: tuple[float, ...] = ()) -> None:
        self._results[result.case] = result
        self._keep(ItemRecord("latency", result.case.id, result.case, self.identity(result.case),
                              result, tuple(samples_ms)))

    def record_sizes(self, model: str, sizes: dict[str, int]) -> None:
        self._keep(ItemRecord("size", model, identity=self.size_identity(model),
                              values=dict(sizes)))

    def record_drift(self, case: CaseSpec, drift: Drift) -> None:
        self._keep(ItemRecord("drift", case.id, case, self.identity(case), values=drift.as_dict()))

    def _keep(self, record: ItemRecord) -> None:
        self._records[(record.kind, record.name)] = record
        self._pending.append(record)

    def take_item_records(self) -> list[ItemRecord]:
        """What was recorded since the last call (the plugin calls it around each test)."""
        records, self._pending = self._pending, []
        return records

    def snapshot(self) -> RunResults:
        """What this run recorded so far, frozen: what gates finish with and reports render."""
        return RunResults(tuple(self.results()), tuple(self._records.values()), self.cpu_threads,
                          tuple(self.case_params()))

    def result(self, case: CaseSpec) -> CaseResult:
        return self._results[case]

    def identity(self, case: CaseSpec) -> dict[str, str]:
        """What makes this case's numbers comparable with a baseline's: device, shape,
        precision, threads, TF32 and the session's recipe (see RECIPE_KEYS)."""
        spec = self.config.model(case.model)
        identity = {"device": case.device, "precision": case.precision,
                    "input_shape": "x".join(map(str, spec.input_shape)),
                    "cpu_threads": str(self.cpu_threads), "tf32": str(self.config.tf32)}
        details = self.runner(case).describe()
        identity.update({key: details[key] for key in RECIPE_KEYS if key in details})
        return identity

    def size_identity(self, model: str) -> dict[str, str]:
        """What makes a model's sizes comparable: its input shape and the ONNX export recipe."""
        spec, onnx = self.config.model(model), self.config.onnx
        return {"input_shape": "x".join(map(str, spec.input_shape)), "exporter": onnx.exporter,
                "opset": str(onnx.opset)}

    def results(self) -> list[CaseResult]:
        """Results in the configuration's order of models, backends and precisions."""
        config = self.config
        models = [spec.name for spec in config.models]

        def place(result: CaseResult) -> tuple[int, ...]:
            case = result.case
            return tuple(order.index(value) if value in order else len(order) for order, value in
                         ((models, case.model), (list(config.backends), case.backend),
                          (list(config.precisions), case.precision)))

        return sorted(self._results.values(), key=place)

    def close(self) -> None:
        if self.ab is not None:
            self.ab.close()
        for prepared in self._runners.values():
            if isinstance(prepared, Runner):
                prepared.close()
        self._runners.clear()
