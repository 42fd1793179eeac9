"""ONNX Runtime: the CPU provider, or the CUDA provider when onnxruntime-gpu is installed."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from perfsuite.backends.base import Backend, CaseSpec, ModelArtifacts, Runner
from perfsuite.errors import BackendUnavailable
from perfsuite.lazy import is_installed, require
from perfsuite.machine.device import available_cpu_threads
from perfsuite.models.export import OnnxArtifact
from perfsuite.models.torch_model import ModelSpec

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
_INPUT_DTYPES = {"fp32": np.float32, "fp16": np.float16}


class OrtRunner(Runner):
    def __init__(self, case: CaseSpec, spec: ModelSpec, onnx: OnnxArtifact, threads: int,
                 spinning: bool = True) -> None:
        super().__init__(case, spec.input_shape, onnx.size_bytes)
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if not spinning:  # two sessions taking turns (A/B) would fight over the cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._spinning = spinning
        self._provider = PROVIDERS[case.device]
        self._threads = threads
        self._onnx = onnx
        self._version = ort.__version__
        self._session: Any = ort.InferenceSession(
            str(onnx.path), sess_options=options, providers=[self._provider]
        )
        self._input_name = self._session.get_inputs()[0].name
        self._input_dtype = _INPUT_DTYPES[case.precision]

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        feed = {self._input_name: inputs.astype(self._input_dtype, copy=False)}
        return np.asarray(self._session.run(None, feed)[0], dtype=np.float32)

    def describe(self) -> dict[str, str]:
        return {
            "runtime": f"onnxruntime {self._version}",
            "provider": self._provider,
            "threads": str(self._threads),
            "spinning": "on" if self._spinning else "off",
            "onnx": self._onnx.path.name,
            "exporter": self._onnx.exporter,
            "opset": str(self._onnx.opset),
        }

    def close(self) -> None:
        self._session = None
        super().close()


class OnnxRuntimeBackend(Backend):
    name: ClassVar[str] = "onnxruntime"
    onnx_precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")
    packages: ClassVar[tuple[str, ...]] = ("onnxruntime", "onnxruntime-gpu")
    extras: ClassVar[dict[str, str]] = {"onnxruntime": "ort"}

    def available(self) -> tuple[bool, str]:
        if not is_installed("onnxruntime"):
            return False, "onnxruntime is not installed (pip install 'perfsuite[ort]')"
        return True, ""

    def prepare(
        self, spec: ModelSpec, artifacts: ModelArtifacts, precision: str, device: str
    ) -> Runner:
        provider = PROVIDERS[device]
        installed = require("onnxruntime").get_available_providers()
        if provider not in installed:
            raise BackendUnavailable(
                f"onnxruntime has no {provider} here (providers: {', '.join(installed)}); "
                "install onnxruntime-gpu for CUDA"
            )
        case = CaseSpec(spec.name, self.name, precision, device)
        threads = self.options.cpu_threads or available_cpu_threads()
        return OrtRunner(case, spec, artifacts.onnx(precision), threads,
                         self.options.ort_spinning)
