"""TensorRT with pycuda buffers: the blog post's loop, done right.

Page-locked host arrays, `memcpy_htod_async`, `execute_async_v3`, `memcpy_dtoh_async` and a
stream synchronise, all on one pycuda stream. pycuda runs in primary-context mode (it retains and
pushes the device's primary context, the one torch and the CUDA runtime use), so it coexists with
torch in one process. Timed region of `run`: the whole loop, host arrays in and out.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from perfsuite.backends.base import Backend, CaseSpec, ModelArtifacts, Runner
from perfsuite.backends.tensorrt.engine import (
    EngineBuildError,
    EngineRecipe,
    check_name_based_api,
    dtype_name,
    plan_recipe,
)
from perfsuite.backends.tensorrt.runner import EngineFromOnnx, LoadedEngine, TensorRTRunner, bind_io
from perfsuite.errors import BackendUnavailable
from perfsuite.lazy import is_installed, require
from perfsuite.models.torch_model import ModelSpec

_NUMPY_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64,
                 "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}


def numpy_dtype_of(trt_dtype: Any) -> Any:
    return _NUMPY_DTYPES[dtype_name(trt_dtype)]


def cuda_device_index() -> int:
    """The device torch works on (CUDA_VISIBLE_DEVICES and torch.cuda.set_device respected)."""
    torch = require("torch")
    return int(torch.cuda.current_device()) if torch.cuda.is_available() else 0


class PycudaRunner(Runner):
    def __init__(self, case: CaseSpec, spec: ModelSpec, trt: Any, loaded: LoadedEngine,
                 recipe: EngineRecipe) -> None:
        super().__init__(case, spec.input_shape, loaded.size_bytes)
        cuda = require("pycuda.driver")
        cuda.init()
        self._cuda, self._trt, self._recipe = cuda, trt, recipe
        self._runtime, self._engine = loaded.runtime, loaded.engine
        self._context: Any = None
        self._stream: Any = None
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, Any] = {}
        self._context_cuda = cuda.Device(cuda_device_index()).retain_primary_context()
        self._context_cuda.push()
        try:
            self._setup()
        except BaseException:
            self._release()  # a failed setup gives back what it took, the context included
            raise
        self._context_cuda.pop()

    def _setup(self) -> None:
        cuda, trt = self._cuda, self._trt
        self._context = self._engine.create_execution_context()
        self._stream = cuda.Stream()
        self._inputs: list[str] = []
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            shape = tuple(self._engine.get_tensor_shape(name))
            dtype = numpy_dtype_of(self._engine.get_tensor_dtype(name))
            self._host[name] = cuda.pagelocked_empty(shape, dtype)  # held: freed by _release
            self._device[name] = cuda.mem_alloc(self._host[name].nbytes)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if is_input:
                self._inputs.append(name)
            bind_io(self._context, self.case.id, name, int(self._device[name]),
                    shape if is_input else None)
        self._outputs = [n for n in self._host if n not in self._inputs]

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        cuda = self._cuda
        (name,) = self._inputs
        self._context_cuda.push()
        try:
            np.copyto(self._host[name], inputs, casting="same_kind")
            cuda.memcpy_htod_async(self._device[name], self._host[name], self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise EngineBuildError(f"{self.case.id} | execute_async_v3 reported failure.")
            output = self._outputs[0]
            cuda.memcpy_dtoh_async(self._host[output], self._device[output], self._stream)
            self._stream.synchronize()
        finally:
            self._context_cuda.pop()
        return self._host[output].astype(np.float32)

    def describe(self) -> dict[str, str]:
        return {"runtime": f"TensorRT {self._trt.__version__}", "recipe": self._recipe.describe(),
                "buffers": "pycuda page-locked host + mem_alloc (primary context)"}

    def _release(self) -> None:
        """Free device and page-locked memory, the stream and TensorRT's objects while the
        context is current (pushed), then pop and detach it. On a Jetson page-locked memory is
        the GPU's memory: left to the garbage collector after detach, it leaks."""
        try:
            if self._stream is not None:
                self._stream.synchronize()
            for allocation in self._device.values():
                allocation.free()
            for host in self._host.values():
                base = getattr(host, "base", None)
                if base is not None and hasattr(base, "free"):
                    base.free()
            self._device.clear()
            self._host.clear()
            self._stream = self._context = self._engine = self._runtime = None
        finally:
            self._context_cuda.pop()
            self._context_cuda.detach()

    def close(self) -> None:
        if not self.closed:
            self._context_cuda.push()
            self._release()
        super().close()


class TensorRTPycudaBackend(Backend):
    name: ClassVar[str] = "tensorrt-pycuda"
    devices: ClassVar[tuple[str, ...]] = ("cuda",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")
    packages: ClassVar[tuple[str, ...]] = ("tensorrt", "pycuda")
    extras: ClassVar[dict[str, str]] = {"pycuda": "trt"}

    def available(self) -> tuple[bool, str]:
        if not is_installed("tensorrt"):
            return False, "TensorRT is not installed (on a Jetson it comes with JetPack)"
        if not is_installed("pycuda"):
            return False, "pycuda is not installed (pip install 'perfsuite[trt]')"
        return True, ""

    def prepare(self, spec: ModelSpec, artifacts: ModelArtifacts, precision: str,
                device: str) -> Runner:
        if device != "cuda":
            raise BackendUnavailable(f"pycuda needs a CUDA device; this run's device is {device}")
        trt = require("tensorrt")
        check_name_based_api(trt)
        options = self.options
        recipe = plan_recipe(trt, precision, options.tf32, options.trt_workspace_bytes)
        loaded = EngineFromOnnx(trt, artifacts, recipe, options.cache, options.progress)()
        return PycudaRunner(CaseSpec(spec.name, self.name, precision, device), spec, trt,
                            loaded, recipe)


__all__ = ["PycudaRunner", "TensorRTPycudaBackend", "TensorRTRunner"]
