"""TensorRT for RTX: the `tensorrt` backend's builder and runner on NVIDIA's `tensorrt_rtx` module.

TensorRT-RTX has TensorRT 10's Python API, strongly typed only (no BuilderFlag.FP16: an fp16
engine is built from the fp16 ONNX), with no timing cache (its calls are deprecated no-ops) and
ahead-of-time builds for a named GPU generation (`ComputeCapability.SM86`), which work with no
GPU at all. Its runtime runs only on the generations its `ComputeCapability` enum names (8.0,
8.6, 8.9, 12.x in 1.7): elsewhere, and without a GPU, the engine is built for
`AHEAD_OF_TIME_TARGET`, its size is reported, and the backend skips saying why.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from perfsuite.backends.base import CaseSpec, ModelArtifacts, Runner
from perfsuite.backends.tensorrt.engine import TENSORRT_RTX, check_name_based_api, plan_recipe
from perfsuite.backends.tensorrt.runner import EngineFromOnnx, TensorRTBackend, TensorRTRunner
from perfsuite.errors import BuiltNotRunnable
from perfsuite.lazy import is_installed, require
from perfsuite.machine.fingerprint import gpu_facts
from perfsuite.models.torch_model import ModelSpec

AHEAD_OF_TIME_TARGET = "SM86"  # Ampere RTX / A10 class: what a machine without one builds for
MODULES = ("tensorrt_rtx", "tensorrt_rtx_bindings")  # the metapackage's name, the wheel's


def rtx_module_name() -> str:
    return next((m for m in MODULES if is_installed(m)), MODULES[0])


def targets(trt: Any) -> list[str]:
    """The GPU generations this TensorRT-RTX builds for: SM75, SM80, ... (from its enum)."""
    members = getattr(trt.ComputeCapability, "__members__", {})
    return sorted((m for m in members if re.fullmatch(r"SM\d+", m)), key=lambda m: int(m[2:]))


def runtime_target(trt: Any, device: str) -> tuple[str, str]:
    """(the target to build for, why the engine cannot run here or "")."""
    names = ", ".join(f"{int(t[2:]) // 10}.{int(t[2:]) % 10}" for t in targets(trt))
    if device != "cuda":
        return AHEAD_OF_TIME_TARGET, (f"this run's device is {device}; TensorRT-RTX runs on "
                                      f"CUDA GPUs of compute capability {names}")
    facts = gpu_facts()
    capability = str(facts.get("compute_capability") or "unknown")
    wanted = "SM" + capability.replace(".", "")
    if wanted in targets(trt):
        return wanted, ""
    return AHEAD_OF_TIME_TARGET, (
        f"compute capability {capability} ({facts.get('gpu_name', 'this GPU')}) is not supported "
        f"by TensorRT-RTX {trt.__version__}, which runs on compute capability {names}")


class TensorRTRtxBackend(TensorRTBackend):
    name: ClassVar[str] = "tensorrt-rtx"
    onnx_precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")
    packages: ClassVar[tuple[str, ...]] = ("tensorrt-rtx-cu12-bindings", "tensorrt-rtx-cu12-libs")
    extras: ClassVar[dict[str, str]] = {m: "rtx" for m in MODULES}

    def available(self) -> tuple[bool, str]:
        if not is_installed(rtx_module_name()):
            return False, ("TensorRT-RTX is not installed (for RTX and A100-class GPUs: "
                           "pip install 'perfsuite[rtx]')")
        return True, ""

    def prepare(self, spec: ModelSpec, artifacts: ModelArtifacts, precision: str,
                device: str) -> Runner:
        options = self.options
        trt = require(rtx_module_name())
        check_name_based_api(trt)
        target, refused = runtime_target(trt, device)
        recipe = plan_recipe(trt, precision, options.tf32, options.trt_workspace_bytes,
                             compute_capability=target)
        engines = EngineFromOnnx(trt, artifacts, recipe, options.cache, options.progress,
                                 TENSORRT_RTX)
        case = CaseSpec(spec.name, self.name, precision, device)
        if refused:
            size = engines.engine_path(load=False).stat().st_size
            raise BuiltNotRunnable(
                f"TensorRT-RTX {trt.__version__} built the {precision} engine "
                f"({size / 1e6:.1f} MB, for {target}) but cannot run it here: {refused}",
                artifact_bytes=size,
                details={"runtime": f"TensorRT-RTX {trt.__version__}",
                         "recipe": recipe.describe()})
        return TensorRTRunner(case, spec, trt, engines(), recipe, device, options.trt_cuda_graph,
                              options.progress)
