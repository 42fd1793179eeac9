"""The backend interface: a Backend prepares Runners; a Runner runs one model one way (the name
Polygraphy gives a backend's live object).

A Runner is a small object with a lifecycle (prepare -> run -> describe -> close), usable as a
context manager. The base class owns the shared checks: inputs match the declared shape and a
closed runner refuses work. Concrete runners implement `_run` (and optionally
`_enqueue_on_device` for CUDA-event timing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from perfsuite.errors import InternalError, PerfsuiteError
from perfsuite.lazy import register_extras
from perfsuite.results import CaseSpec

if TYPE_CHECKING:
    from types import TracebackType

    from perfsuite.models.export import OnnxArtifact
    from perfsuite.models.torch_model import ModelSpec


# describe() keys that say how a session runs (a change makes its numbers incomparable); the
# others carry versions (compared separately) or file names.
# The reference every other session's outputs are compared with (drift) and its speed measured
# against (speedup): torch eager in fp32 on the same device.
REFERENCE_BACKEND = "torch"
REFERENCE_PRECISION = "fp32"

RECIPE_KEYS = ("provider", "threads", "exporter", "opset", "dtype", "cuda_graph",
               "memory_format", "recipe", "buffers")


@dataclass(frozen=True)
class BackendOptions:
    """Settings and services every backend receives from the suite."""

    cpu_threads: int = 0  # 0: every core this process may use
    channels_last: bool = False  # torch CUDA-graph sessions: NHWC memory format
    tf32: bool = False
    trt_workspace_bytes: int = 1 << 30
    trt_cuda_graph: bool = False  # replay TensorRT execution as a CUDA graph
    trt_host_buffers: bool = False  # TensorRT I/O in host memory: for TensorRT emulators only
    trtexec: str = ""  # the trtexec program to use ("": PATH, then JetPack's)
    torch_python: str = ""  # an interpreter to run torch sessions in ("": this process)
    device_setting: str = "auto"  # the configured device, for a worker with its own torch
    timer: str = ""  # pytest-benchmark's timer as 'module.attr', for workers ("": perf_counter)
    ort_spinning: bool = True  # ONNX Runtime's threads spin between runs (off under --perf-ab)
    cache: Any = None  # the ArtifactCache engines are stored in
    progress: Callable[[str], None] = field(default=lambda message: None)


class ModelArtifacts(ABC):
    """What a backend may ask for about one model; each item is built at most once."""

    spec: ModelSpec

    @abstractmethod
    def torch_model(self) -> object:
        """The fp32 CPU torch.nn.Module in eval mode (shared: copy before changing it)."""

    @abstractmethod
    def onnx(self, precision: str, max_opset: int | None = None) -> OnnxArtifact:
        """The cached ONNX export for `precision` ('fp32' or 'fp16'), at the configured opset
        or `max_opset` when that is lower (an older TensorRT parser)."""


@dataclass(frozen=True)
class ToolTimings:
    """Per-inference seconds a backend's own tool measured (trtexec --exportTimes)."""

    e2e_s: tuple[float, ...]  # host to device, compute, device to host
    gpu_s: tuple[float, ...] | None  # GPU compute; None off a GPU
    enqueue_s: tuple[float, ...] | None  # the host's launch; None where the tool's is unusable
    notes: tuple[str, ...] = ()  # what the tool's numbers cannot say, shown with the result


class Runner(ABC):
    timed_by_tool: ClassVar[bool] = False  # tool_timings() times it, not perfsuite's loop

    def __init__(self, case: CaseSpec, input_shape: tuple[int, ...], artifact_bytes: int) -> None:
        self.case = case
        self.input_shape = input_shape
        self.artifact_bytes = artifact_bytes  # what this runner loads: weights, ONNX, engine
        self.closed = False

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs (fp32, on the host) for host `inputs`; returns after the device finished."""
        if self.closed:
            raise InternalError(f"{self.case.id} | runner is closed; prepare a new one.")
        if tuple(inputs.shape) != self.input_shape:
            raise PerfsuiteError(
                f"{self.case.id} | input shape {tuple(inputs.shape)} does not match the "
                f"runner's {self.input_shape}."
            )
        return self._run(inputs)

    @abstractmethod
    def _run(self, inputs: np.ndarray) -> np.ndarray: ...

    def device_enqueue(self, inputs: np.ndarray) -> Callable[[], object] | None:
        """A callable that launches one inference on the current CUDA stream, inputs already on
        the device, without synchronising; None where the runner has no CUDA device."""
        return None

    def tool_timings(self, inputs: np.ndarray, rounds: int, warmup_s: float) -> ToolTimings | None:
        """`rounds` inferences timed by the backend's own tool after `warmup_s` of warm-up;
        None (the default): perfsuite times `run` itself."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """What exactly runs: provider, exporter, opset, dtype, TF32, graphs; plain strings."""

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Backend(ABC):
    name: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]]
    # distributions whose versions shape its numbers (recorded with every baseline)
    packages: ClassVar[tuple[str, ...]] = ()
    extras: ClassVar[dict[str, str]] = {}  # module -> the `perfsuite[extra]` that installs it
    # the ONNX exports its sessions read, by precision (a run with one of these precisions
    # exports that file and records its size); () for a backend that reads no ONNX
    onnx_precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    # the devices its sessions run on (a run on another skips them)
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register_extras(cls.extras)  # install hints name this backend's extra

    def __init__(self, options: BackendOptions = BackendOptions()) -> None:
        self.options = options

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """Whether the packages this backend needs are installed; never imports them."""

    @abstractmethod
    def prepare(
        self, spec: ModelSpec, artifacts: ModelArtifacts, precision: str, device: str
    ) -> Runner:
        """A ready runner; raises BackendUnavailable when this device cannot run `precision`."""
