"""torch eager: the reference (fp32) and the blog post's fp16 run, plus bf16."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from perfsuite.backends.base import Backend, CaseSpec, ModelArtifacts, Runner
from perfsuite.backends.torch_worker import PRECISIONS as WORKER_PRECISIONS
from perfsuite.backends.torch_worker import start_worker_runner
from perfsuite.errors import BackendUnavailable
from perfsuite.lazy import require
from perfsuite.machine.device import check_torch_device, torch_available, torch_dtype
from perfsuite.measure.sizes import state_dict_bytes
from perfsuite.models.torch_model import ModelSpec


class TorchEagerRunner(Runner):
    def __init__(self, case: CaseSpec, spec: ModelSpec, model: Any) -> None:
        torch = require("torch")
        self._torch = torch
        self._dtype = torch_dtype(case.precision)
        self._device = torch.device(case.device)
        self._model = copy.deepcopy(model).to(device=self._device, dtype=self._dtype).eval()
        super().__init__(case, spec.input_shape, state_dict_bytes(self._model))

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(inputs).to(device=self._device, dtype=self._dtype)
            # .cpu() waits for the device: the call returns only when the work is done.
            return self._model(x).float().cpu().numpy()  # type: ignore[no-any-return]

    def device_enqueue(self, inputs: np.ndarray) -> Callable[[], object] | None:
        if self.case.device != "cuda":
            return None
        torch = self._torch
        x = torch.from_numpy(inputs).to(device=self._device, dtype=self._dtype)

        def enqueue() -> object:
            with torch.inference_mode():
                return self._model(x)

        return enqueue

    def describe(self) -> dict[str, str]:
        torch = self._torch
        details = {"runtime": f"torch {torch.__version__} eager", "dtype": str(self._dtype),
                   "device": str(self._device), "threads": str(torch.get_num_threads())}
        if self.case.device == "cuda":
            details["tf32"] = str(torch.backends.cudnn.allow_tf32)
            details["cuda_graph"] = "off"
        return details

    def close(self) -> None:
        self._model = None
        super().close()


class TorchEagerBackend(Backend):
    name: ClassVar[str] = "torch"
    onnx_precisions: ClassVar[tuple[str, ...]] = ()
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")

    def available(self) -> tuple[bool, str]:
        return torch_available()  # the weights are made here, for a worker too

    def prepare(
        self, spec: ModelSpec, artifacts: ModelArtifacts, precision: str, device: str
    ) -> Runner:
        python = self.options.torch_python
        if python:  # [tool.perfsuite.torch] python: the session lives in that interpreter
            if precision not in WORKER_PRECISIONS:
                raise BackendUnavailable(f"{precision} is not run by the torch worker ({python}); "
                                         f"it runs {', '.join(WORKER_PRECISIONS)}")
            sample = np.zeros(spec.input_shape, dtype=np.float32)
            return start_worker_runner(python, spec, artifacts.torch_model(), precision, device,
                                       self.options.device_setting, self.options.cpu_threads,
                                       self.options.timer, sample, self.options.tf32)
        check_torch_device(device, precision)
        case = CaseSpec(spec.name, self.name, precision, device)
        return TorchEagerRunner(case, spec, artifacts.torch_model())
