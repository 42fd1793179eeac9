"""TensorRT with torch tensors as I/O buffers: engine from the cached ONNX, run by tensor name.

Runs `execute_async_v3` on a dedicated non-default stream (TensorRT 10 warns that the default
stream adds synchronisation), optionally replayed as a CUDA graph. Timed regions: `run` is end
to end (input staged from pinned host memory, execute, output copied back, stream synchronised);
`device_enqueue` launches the execution alone on the current stream for CUDA-event timing, so
GPU compute and end-to-end time land in the results as trtexec reports them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from perfsuite.backends.base import Backend, CaseSpec, ModelArtifacts, Runner
from perfsuite.backends.tensorrt_engine import (
    ENGINE_FILE,
    EngineBuildError,
    EngineRecipe,
    build_engine,
    check_name_based_api,
    dtype_name,
    onnx_digest,
    parser_max_opset,
    plan_recipe,
)
from perfsuite.errors import BackendUnavailable
from perfsuite.export import OnnxArtifact
from perfsuite.lazy import is_installed, require
from perfsuite.machine import gpu_facts, read_text
from perfsuite.models import ModelSpec

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


class TensorRTRunner(Runner):
    def __init__(self, case: CaseSpec, spec: ModelSpec, trt: Any, engine_bytes: bytes,
                 recipe: EngineRecipe, device: str, cuda_graph: bool) -> None:
        super().__init__(case, spec.input_shape, len(engine_bytes))
        torch = require("torch")
        self._torch, self._trt, self._recipe = torch, trt, recipe
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self._engine is None:
            raise EngineBuildError(f"{case.id} | TensorRT {trt.__version__} cannot deserialize "
                                   "the engine it was given.")
        self._context = self._engine.create_execution_context()
        self._buffers: Any = Buffers(trt, self._engine, device)
        for name, tensor in self._buffers.inputs.items():
            self._context.set_input_shape(name, tuple(tensor.shape))
        for name, tensor in {**self._buffers.inputs, **self._buffers.outputs}.items():
            self._context.set_tensor_address(name, tensor.data_ptr())
        self._on_gpu = device == "cuda"
        self._stream: Any = torch.cuda.Stream() if self._on_gpu else None
        (self._input,) = self._buffers.inputs.values()
        self._output = next(iter(self._buffers.outputs.values()))
        self._host_in = torch.empty(self._input.shape, dtype=self._input.dtype,
                                    pin_memory=self._on_gpu)
        self._host_out = torch.empty(self._output.shape, dtype=self._output.dtype,
                                     pin_memory=self._on_gpu)
        self._graph = self._capture() if cuda_graph and self._on_gpu else None

    def _execute(self) -> None:
        handle = self._stream.cuda_stream if self._stream is not None else 0
        if not self._context.execute_async_v3(handle):
            raise EngineBuildError(f"{self.case.id} | execute_async_v3 reported failure.")

    def _capture(self) -> Any:
        torch = self._torch
        with torch.cuda.stream(self._stream):
            self._execute()  # the first run after input shapes change may allocate; not captured
            self._stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self._stream):
                self._execute()
        self._stream.synchronize()
        return graph

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
        size = getattr(self._engine, "device_memory_size_v2", None)
        if size is None:
            size = getattr(self._engine, "device_memory_size", None)
        if size is not None:
            details["activation_bytes"] = str(size)
        return details

    def close(self) -> None:
        self._graph = self._context = self._engine = self._buffers = None
        super().close()


class EngineFromOnnx:
    """Builds, or takes from the artifact cache, the engine for one (model, recipe)."""

    def __init__(self, trt: Any, artifacts: ModelArtifacts, recipe: EngineRecipe, cache: Any,
                 progress: Callable[[str], None]) -> None:
        self.trt, self.artifacts, self.recipe = trt, artifacts, recipe
        self.cache, self.progress = cache, progress

    def key(self) -> dict[str, str]:
        onnx = self.onnx()
        facts = {k: str(v) for k, v in gpu_facts().items() if k != "driver"}
        return {"onnx_sha256": onnx_digest(onnx), "tensorrt": str(self.trt.__version__),
                "l4t": read_text(Path("/etc/nv_tegra_release")).split(",")[0],
                **facts, **self.recipe.key()}

    def onnx(self) -> OnnxArtifact:
        """The export this TensorRT's parser reads (an older opset before 8.6)."""
        major, minor = (int(p) for p in str(self.trt.__version__).split(".")[:2])
        return self.artifacts.onnx(self.recipe.onnx_precision, parser_max_opset(major, minor))

    def __call__(self) -> bytes:
        onnx = self.onnx()
        timing_cache = self.cache.root / "tensorrt" / f"timing-{self.trt.__version__}.cache"

        def build(directory: Path) -> None:
            engine = build_engine(self.trt, onnx.path, self.recipe, timing_cache, self.progress)
            (directory / ENGINE_FILE).write_bytes(engine)

        def validate(directory: Path) -> None:
            runtime = self.trt.Runtime(self.trt.Logger(self.trt.Logger.WARNING))
            if runtime.deserialize_cuda_engine((directory / ENGINE_FILE).read_bytes()) is None:
                raise ValueError("TensorRT cannot deserialize it")

        name = f"{self.artifacts.spec.name}-{self.recipe.precision}"
        entry = self.cache.get_or_build("tensorrt", name, self.key(), build, validate)
        if entry.hit:
            self.progress(f"reusing cached TensorRT engine {entry.path / ENGINE_FILE}")
        return (entry.path / ENGINE_FILE).read_bytes()


class TensorRTBackend(Backend):
    name: ClassVar[str] = "tensorrt"
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
        check_name_based_api(trt)
        recipe = plan_recipe(trt, precision, options.tf32, options.trt_workspace_bytes)
        engine = EngineFromOnnx(trt, artifacts, recipe, options.cache, options.progress)()
        case = CaseSpec(spec.name, self.name, precision, device)
        return TensorRTRunner(case, spec, trt, engine, recipe, device, options.trt_cuda_graph)
