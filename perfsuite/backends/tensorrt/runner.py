"""TensorRT with torch tensors as I/O buffers: engine from the cached ONNX, run by tensor name.

Runs `execute_async_v3` on a dedicated non-default stream (TensorRT 10 warns that the default
stream adds synchronisation), optionally replayed as a CUDA graph. Timed regions: `run` is end
to end (input staged from pinned host memory, execute, output copied back, stream synchronised);
`device_enqueue` launches the execution alone on the current stream for CUDA-event timing, so
GPU compute and end-to-end time land in the results as trtexec reports them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from perfsuite.backends.base import Backend, CaseSpec, ModelArtifacts, Runner
from perfsuite.backends.tensorrt.engine import (
    ENGINE_FILE,
    TENSORRT,
    EngineBuildError,
    EngineFamily,
    EngineRecipe,
    build_engine,
    check_name_based_api,
    dtype_name,
    onnx_digest,
    parser_max_opset,
    plan_recipe,
    trt_logger,
)
from perfsuite.errors import BackendUnavailable
from perfsuite.lazy import is_installed, require
from perfsuite.machine.fingerprint import board_release, gpu_facts
from perfsuite.models.export import OnnxArtifact
from perfsuite.models.torch_model import ModelSpec

_TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32",
                 "INT64": "int64", "INT8": "int8", "UINT8": "uint8", "BOOL": "bool"}


def torch_dtype_of(trt_dtype: Any) -> Any:
    return getattr(require("torch"), _TORCH_DTYPES[dtype_name(trt_dtype)])


class Buffers:
    """Device (or host) tensors for every I/O tensor of an engine, by name."""

    def __init__(self, trt: Any, engine: Any, device: str) -> None:
        torch = require("torch")
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = tuple(engine.get_tensor_shape(name))
            tensor = torch.empty(shape, dtype=torch_dtype_of(engine.get_tensor_dtype(name)),
                                 device=device)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = tensor


@dataclass(frozen=True)
class LoadedEngine:
    """A deserialized engine with the runtime that made it (which must outlive it)."""

    runtime: Any
    engine: Any
    size_bytes: int


def bind_io(context: Any, case_id: str, name: str, address: int,
            input_shape: tuple[int, ...] | None = None) -> None:
    """Set `name`'s shape (inputs) and address on `context`; TensorRT answers False (and logs
    why) instead of raising, so a refusal is raised here with the tensor's name."""
    if input_shape is not None and not context.set_input_shape(name, input_shape):
        raise EngineBuildError(f"{case_id} | TensorRT refused the shape {input_shape} for input "
                               f"'{name}' (see TensorRT's log above).")
    if not context.set_tensor_address(name, address):
        raise EngineBuildError(f"{case_id} | TensorRT refused the address of tensor '{name}' "
                               "(see TensorRT's log above).")


def capture_graph(torch: Any, stream: Any, launch: Callable[[], None]) -> tuple[Any, str]:
    """A CUDA graph of `launch` captured on `stream`, or (None, why) when the capture fails:
    an engine may hold operations CUDA does not permit under capture, and then runs with plain
    launches, as trtexec does. The capture is thread-local, so other threads' CUDA calls go on."""
    graph = torch.cuda.CUDAGraph()
    mode = {}
    if "capture_error_mode" in inspect.signature(torch.cuda.graph).parameters:
        mode = {"capture_error_mode": "thread_local"}
    try:
        with torch.cuda.graph(graph, stream=stream, **mode):
            launch()
    except Exception as exc:  # whatever the capture refused
        stream.synchronize()
        return None, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return graph, ""


class TensorRTRunner(Runner):
    def __init__(self, case: CaseSpec, spec: ModelSpec, trt: Any, loaded: LoadedEngine,
                 recipe: EngineRecipe, device: str, cuda_graph: bool,
                 progress: Callable[[str], None] = lambda message: None) -> None:
        super().__init__(case, spec.input_shape, loaded.size_bytes)
        torch = require("torch")
        self._torch, self._trt, self._recipe = torch, trt, recipe
        self._runtime, self._engine = loaded.runtime, loaded.engine
        self._context = self._engine.create_execution_context()
        self._buffers: Any = Buffers(trt, self._engine, device)
        for name, tensor in self._buffers.inputs.items():
            bind_io(self._context, case.id, name, tensor.data_ptr(), tuple(tensor.shape))
        for name, tensor in self._buffers.outputs.items():
            bind_io(self._context, case.id, name, tensor.data_ptr())
        self._on_gpu = device == "cuda"
        self._stream: Any = torch.cuda.Stream() if self._on_gpu else None
        (self._input,) = self._buffers.inputs.values()
        self._output = next(iter(self._buffers.outputs.values()))
        self._host_in = torch.empty(self._input.shape, dtype=self._input.dtype,
                                    pin_memory=self._on_gpu)
        self._host_out = torch.empty(self._output.shape, dtype=self._output.dtype,
                                     pin_memory=self._on_gpu)
        self._graph: Any = None
        self._graph_refused = ""
        if cuda_graph and self._on_gpu:
            self._graph, self._graph_refused = self._capture()
            if self._graph_refused:
                progress(f"{case.id}: CUDA graph capture failed ({self._graph_refused}); "
                         "running with plain launches")

    def _execute(self) -> None:
        handle = self._stream.cuda_stream if self._stream is not None else 0
        if not self._context.execute_async_v3(handle):
            raise EngineBuildError(f"{self.case.id} | execute_async_v3 reported failure.")

    def _capture(self) -> tuple[Any, str]:
        with self._torch.cuda.stream(self._stream):
            self._execute()  # the first run after input shapes change may allocate; not captured
        self._stream.synchronize()
        return capture_graph(self._torch, self._stream, self._execute)

    def _launch(self) -> None:
        if self._graph is not None:
            self._graph.replay()
        else:
            self._execute()

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        torch = self._torch
        self._host_in.copy_(torch.from_numpy(inputs))
        if self._stream is None:
            self._input.copy_(self._host_in)
            self._launch()
            self._host_out.copy_(self._output)
        else:
            with torch.cuda.stream(self._stream):
                self._input.copy_(self._host_in, non_blocking=True)
                self._launch()
                self._host_out.copy_(self._output, non_blocking=True)
            self._stream.synchronize()
        return self._host_out.float().numpy().copy()  # type: ignore[no-any-return]

    def device_enqueue(self, inputs: np.ndarray) -> Callable[[], object] | None:
        if not self._on_gpu:
            return None
        torch = self._torch
        self._input.copy_(torch.from_numpy(inputs))
        torch.cuda.synchronize()

        def enqueue() -> None:
            # CUDA events are recorded on the current stream; order our stream behind them.
            current = torch.cuda.current_stream()
            self._stream.wait_stream(current)
            self._launch()
            current.wait_stream(self._stream)

        return enqueue

    def describe(self) -> dict[str, str]:
        details = {"runtime": f"TensorRT {self._trt.__version__}",
                   "recipe": self._recipe.describe(),
                   "cuda_graph": "on" if self._graph is not None else "off",
                   "buffers": "torch " + ("cuda" if self._on_gpu else "host")}
        if self._graph_refused:
            details["cuda_graph"] = "off (capture failed)"
            details["cuda_graph_refused"] = self._graph_refused
        size = getattr(self._engine, "device_memory_size_v2", None)
        if size is None:
            size = getattr(self._engine, "device_memory_size", None)
        if size is not None:
            details["activation_bytes"] = str(size)
        return details

    def close(self) -> None:
        self._graph = self._context = self._engine = self._buffers = self._runtime = None
        super().close()


def tensorrt_distributions() -> str:
    """The installed TensorRT distributions and versions: `tensorrt-cu12` and `tensorrt-cu13`
    (or a JetPack build) share `__version__`, not their engines."""
    found = set()
    for dist in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", str(dist.metadata["Name"] or "")).lower()
        if name.startswith("tensorrt"):
            found.add(f"{name} {dist.version}")
    return ", ".join(sorted(found))


def device_slug(recipe: EngineRecipe) -> str:
    """Which GPU an engine or timing cache belongs to, as part of a file name."""
    if recipe.compute_capability:
        return recipe.compute_capability
    facts = gpu_facts()
    if not facts:
        return "no-gpu"
    name = re.sub(r"[^A-Za-z0-9]+", "-", str(facts["gpu_name"])).strip("-")
    return f"{name}-cc{facts['compute_capability']}"


class EngineFromOnnx:
    """Builds, or takes from the artifact cache, the engine for one (model, recipe). With
    `load`, the engine is deserialized once, when the cache entry is checked, and kept."""

    def __init__(self, trt: Any, artifacts: ModelArtifacts, recipe: EngineRecipe, cache: Any,
                 progress: Callable[[str], None], family: EngineFamily = TENSORRT) -> None:
        self.trt, self.artifacts, self.recipe = trt, artifacts, recipe
        self.cache, self.progress, self.family = cache, progress, family
        self.loaded: LoadedEngine | None = None

    def key(self) -> dict[str, str]:
        onnx = self.onnx()
        facts = {k: str(v) for k, v in gpu_facts().items() if k not in ("driver", "cuda")}
        return {"onnx_sha256": onnx_digest(onnx), "tensorrt": str(self.trt.__version__),
                "tensorrt_distributions": tensorrt_distributions(),
                "l4t": board_release()["l4t"],
                **facts, **self.recipe.key()}

    def onnx(self) -> OnnxArtifact:
        """The export this TensorRT's parser reads (an older opset before TensorRT 8.6;
        TensorRT-RTX numbers its versions from 1 and reads them all)."""
        max_opset = None
        if self.family.versioned_parser:
            major, minor = (int(p) for p in str(self.trt.__version__).split(".")[:2])
            max_opset = parser_max_opset(major, minor)
        return self.artifacts.onnx(self.recipe.onnx_precision, max_opset)

    def engine_path(self, load: bool = True) -> Path:
        """The cached engine file, built first where missing."""
        onnx = self.onnx()
        family = self.family
        timing_cache = (self.cache.root / family.cache_kind /
                        f"timing-{self.trt.__version__}-{device_slug(self.recipe)}.cache"
                        if family.timing_cache else None)

        def build(directory: Path) -> None:
            engine = build_engine(self.trt, onnx.path, self.recipe, timing_cache, self.progress,
                                  family)
            (directory / ENGINE_FILE).write_bytes(engine)

        def validate(directory: Path) -> None:
            data = (directory / ENGINE_FILE).read_bytes()
            if not data:
                raise ValueError("the engine file is empty")
            if load:
                runtime = self.trt.Runtime(trt_logger(self.trt))
                engine = runtime.deserialize_cuda_engine(data)
                if engine is None:
                    raise ValueError(f"TensorRT {self.trt.__version__} cannot deserialize it")
                self.loaded = LoadedEngine(runtime, engine, len(data))

        name = f"{self.artifacts.spec.name}-{self.recipe.precision}"
        entry = self.cache.get_or_build(family.cache_kind, name, self.key(), build, validate)
        if entry.hit:
            self.progress(f"reusing cached TensorRT engine {entry.path / ENGINE_FILE}")
        return entry.path / ENGINE_FILE

    def __call__(self) -> LoadedEngine:
        self.engine_path(load=True)
        if self.loaded is None:
            raise EngineBuildError(f"{self.artifacts.spec.name} | TensorRT engine not loaded")
        return self.loaded


class TensorRTBackend(Backend):
    name: ClassVar[str] = "tensorrt"
    devices: ClassVar[tuple[str, ...]] = ("cuda",)  # (host_buffers: emulators on a CPU too)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")
    packages: ClassVar[tuple[str, ...]] = ("tensorrt",)

    def available(self) -> tuple[bool, str]:
        if not is_installed("tensorrt"):
            return False, ("TensorRT is not installed (on a Jetson it comes with JetPack; "
                           "elsewhere pip install tensorrt)")
        return True, ""

    def prepare(self, spec: ModelSpec, artifacts: ModelArtifacts, precision: str,
                device: str) -> Runner:
        options = self.options
        if device != "cuda" and not options.trt_host_buffers:
            raise BackendUnavailable(f"TensorRT needs a CUDA device; this run's device is {device}")
        trt = require("tensorrt")
        if device != "cuda" and not getattr(trt, "__perfsuite_host_memory__", False):
            raise BackendUnavailable(
                f"TensorRT {trt.__version__} needs CUDA buffers; [tool.perfsuite.tensorrt] "
                "host_buffers = true is for TensorRT emulators only: remove it, or run with "
                "--perf-device cuda")
        check_name_based_api(trt)
        recipe = plan_recipe(trt, precision, options.tf32, options.trt_workspace_bytes)
        loaded = EngineFromOnnx(trt, artifacts, recipe, options.cache, options.progress)()
        case = CaseSpec(spec.name, self.name, precision, device)
        return TensorRTRunner(case, spec, trt, loaded, recipe, device, options.trt_cuda_graph,
                              options.progress)
