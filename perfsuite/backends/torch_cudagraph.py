"""torch CUDA graph: the model captured once after warm-up, then replayed.

Batch-1 eager inference is launch-bound: the host issues a hundred small kernels per call and the
GPU idles between them. Replaying a captured graph issues them as one launch; on an H100 this is
the closest measurable stand-in for a TensorRT engine. Capture happens on a side stream after
warm-up iterations (lazy cuDNN/cuBLAS initialisation must not be captured); inputs and outputs
live in static device buffers that every replay reuses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from perfsuite.backends.base import Backend, CaseSpec, ModelArtifacts, Runner
from perfsuite.errors import BackendUnavailable
from perfsuite.lazy import require
from perfsuite.machine.device import check_torch_device, torch_available, torch_dtype
from perfsuite.measure.sizes import state_dict_bytes
from perfsuite.models.torch_model import ModelSpec

CAPTURE_WARMUP_RUNS = 3


class TorchCudaGraphRunner(Runner):
    def __init__(self, case: CaseSpec, spec: ModelSpec, model: Any, channels_last: bool) -> None:
        torch = require("torch")
        self._torch = torch
        self._dtype = torch_dtype(case.precision)
        self._channels_last = channels_last and len(spec.input_shape) == 4
        layout = torch.channels_last if self._channels_last else torch.contiguous_format
        device = torch.device(case.device)
        self._model: Any = copy.deepcopy(model).to(device=device, dtype=self._dtype).eval()
        self._model = self._model.to(memory_format=layout)
        self._static_in = torch.zeros(spec.input_shape, dtype=self._dtype, device=device)
        self._static_in = self._static_in.contiguous(memory_format=layout)
        self._graph, self._static_out = self._capture()
        super().__init__(case, spec.input_shape, state_dict_bytes(self._model))

    def _capture(self) -> tuple[Any, Any]:
        torch = self._torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode():
            with torch.cuda.stream(side):
                for _ in range(CAPTURE_WARMUP_RUNS):
                    self._model(self._static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._model(self._static_in)
        torch.cuda.synchronize()
        return graph, static_out

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        self._static_in.copy_(self._torch.from_numpy(inputs))
        self._graph.replay()
        # .cpu() waits for the replay: the call returns only when the work is done.
        return self._static_out.float().cpu().numpy()  # type: ignore[no-any-return]

    def device_enqueue(self, inputs: np.ndarray) -> Callable[[], object] | None:
        self._static_in.copy_(self._torch.from_numpy(inputs))
        return self._graph.replay  # type: ignore[no-any-return]

    def describe(self) -> dict[str, str]:
        torch = self._torch
        return {"runtime": f"torch {torch.__version__} CUDA graph replay",
                "dtype": str(self._dtype), "device": "cuda",
                "tf32": str(torch.backends.cudnn.allow_tf32), "cuda_graph": "on",
                "memory_format": "channels_last" if self._channels_last else "contiguous"}

    def close(self) -> None:
        self._graph = self._static_out = self._static_in = self._model = None
        super().close()


class TorchCudaGraphBackend(Backend):
    name: ClassVar[str] = "torch-cudagraph"
    devices: ClassVar[tuple[str, ...]] = ("cuda",)
    onnx_precisions: ClassVar[tuple[str, ...]] = ()
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")

    def available(self) -> tuple[bool, str]:
        return torch_available()

    def prepare(
        self, spec: ModelSpec, artifacts: ModelArtifacts, precision: str, device: str
    ) -> Runner:
        if device != "cuda":
            raise BackendUnavailable(f"CUDA graphs need a CUDA device; this run's device is {device}")
        check_torch_device(device, precision)
        case = CaseSpec(spec.name, self.name, precision, device)
        return TorchCudaGraphRunner(case, spec, artifacts.torch_model(), self.options.channels_last)
