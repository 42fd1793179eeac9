"""TensorRT engines from the cached ONNX: the precision recipe, the build, the caches.

Written against the real Python APIs of TensorRT 8.5/8.6, 10.x and 11.x (tests/data/trt_api
snapshots); every version-specific call is feature-detected, never inferred from a version
string alone:
- explicit batch: `NetworkDefinitionCreationFlag.EXPLICIT_BATCH` is required before 10.0,
  ignored in 10.x and gone in 11.x, so it is set only where it exists and TensorRT < 10;
- fp16: `BuilderFlag.FP16` on the fp32 ONNX where the flag exists (8.x-10.x, weak typing);
  TensorRT 11 removed it, so there an fp16 engine is a strongly typed network built from the fp16
  ONNX. The recipe is recorded in `describe()` and the results;
- TF32 is set or cleared explicitly (TensorRT enables it by default);
- workspace through `set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)`;
- a persistent timing cache, merged under a file lock and replaced atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfsuite.errors import BackendUnavailable, PerfsuiteError
from perfsuite.models.artifacts import file_lock
from perfsuite.models.export import OnnxArtifact
from perfsuite.progress import step

ENGINE_FILE = "model.engine"


class EngineBuildError(PerfsuiteError):
    """TensorRT could not parse the ONNX or build an engine from it."""


@dataclass(frozen=True)
class EngineFamily:
    """What the shared builder code does differently for TensorRT and TensorRT-RTX."""

    name: str  # in messages
    cache_kind: str  # the artifact cache's folder for its engines
    timing_cache: bool  # TensorRT-RTX deprecates timing caches as no-ops
    versioned_parser: bool  # the ONNX opset follows the version (TensorRT 8.x parsers)


TENSORRT = EngineFamily("TensorRT", "tensorrt", timing_cache=True, versioned_parser=True)
TENSORRT_RTX = EngineFamily("TensorRT-RTX", "tensorrt-rtx", timing_cache=False,
                            versioned_parser=False)


@dataclass(frozen=True)
class EngineRecipe:
    precision: str  # what the user asked for: fp32 or fp16
    onnx_precision: str  # which ONNX export is parsed
    fp16_flag: bool  # BuilderFlag.FP16 (weak typing)
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED set
    explicit_batch: bool  # NetworkDefinitionCreationFlag.EXPLICIT_BATCH set
    tf32: bool
    workspace_bytes: int
    optimization_level: int | None
    compute_capability: str = ""  # ahead-of-time target (TensorRT-RTX): "SM86"; "": this GPU

    def describe(self) -> str:
        if self.precision == "fp32":
            how = "fp32 ONNX, no reduced-precision flags"
        elif self.fp16_flag:
            how = "fp32 ONNX + BuilderFlag.FP16 (weakly typed)"
        else:
            how = "fp16 ONNX, strongly typed network"
        target = f"; built for {self.compute_capability}" if self.compute_capability else ""
        return f"{self.precision}: {how}; TF32 {'on' if self.tf32 else 'off'}{target}"

    def key(self) -> dict[str, str]:
        return {f"recipe_{k}": str(v) for k, v in self.__dict__.items()}


def dtype_name(trt_dtype: Any) -> str:
    """'FLOAT', 'HALF', ... for a tensorrt.DataType member (its name, whatever the binding)."""
    return str(getattr(trt_dtype, "name", str(trt_dtype).split(".")[-1]))


def major_version(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


# The newest ONNX opset each TensorRT's ONNX parser imports whole (onnx-tensorrt's
# docs/operators.md per release): 8.2 reads opsets up to 13; 8.4 and 8.5 read 17 but not its
# LayerNormalization (torch exports LayerNorm as that op from opset 17), first imported by 8.6.
PARSER_MAX_OPSET = ((8, 4, 13), (8, 6, 16))


def parser_max_opset(major: int, minor: int) -> int | None:
    """The opset to export at for this TensorRT (None: the configured one will do)."""
    for below_major, below_minor, opset in PARSER_MAX_OPSET:
        if (major, minor) < (below_major, below_minor):
            return opset
    return None


def check_name_based_api(trt: Any) -> None:
    """The Python backends address I/O tensors by name (TensorRT 8.5+); older bindings (JetPack
    4's 8.2, JetPack 5.0's 8.4) are skipped, pointing at the trtexec backend."""
    engine_type = getattr(trt, "ICudaEngine", None)
    if engine_type is None or not hasattr(engine_type, "num_io_tensors"):
        raise BackendUnavailable(
            f"TensorRT {getattr(trt, '__version__', '?')} predates the name-based I/O API "
            "(TensorRT 8.5) the tensorrt backends use; the trtexec backend runs TensorRT 8.2 "
            "and later: --perf-backends=torch,trtexec")


def plan_recipe(trt: Any, precision: str, tf32: bool, workspace_bytes: int,
                optimization_level: int | None = None, compute_capability: str = ""
                ) -> EngineRecipe:
    """The build recipe this TensorRT supports for `precision`."""
    creation = trt.NetworkDefinitionCreationFlag
    has_fp16_flag = hasattr(trt.BuilderFlag, "FP16")
    weak_fp16 = precision == "fp16" and has_fp16_flag
    strongly_typed = precision == "fp16" and not has_fp16_flag
    return EngineRecipe(
        precision=precision,
        onnx_precision="fp16" if strongly_typed else "fp32",
        fp16_flag=weak_fp16,
        strongly_typed=strongly_typed and hasattr(creation, "STRONGLY_TYPED"),
        explicit_batch=hasattr(creation, "EXPLICIT_BATCH") and major_version(trt) < 10,
        tf32=tf32,
        workspace_bytes=workspace_bytes,
        optimization_level=optimization_level,
        compute_capability=compute_capability,
    )


def onnx_digest(onnx: OnnxArtifact) -> str:
    """sha256 over the ONNX file and its external data files (the whole entry directory)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in onnx.path.parent.iterdir() if p.is_file()):
        if path.name.startswith("perfsuite-"):
            continue
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


_LOGGERS: dict[int, tuple[Any, Any]] = {}


def trt_logger(trt: Any) -> Any:
    """The one logger every builder, parser and runtime of this TensorRT module is given:
    TensorRT keeps a process-wide logger and warns when a later object brings another."""
    if id(trt) not in _LOGGERS:  # the module is kept beside its logger, so its id stays its own
        _LOGGERS[id(trt)] = (trt, trt.Logger(trt.Logger.WARNING))
    return _LOGGERS[id(trt)][1]


def build_engine(trt: Any, onnx_path: Path, recipe: EngineRecipe, timing_cache: Path | None,
                 progress: Callable[[str], None], family: EngineFamily = TENSORRT) -> bytes:
    """Serialized engine bytes; EngineBuildError carries the parser's or builder's messages.
    `timing_cache` None: no timing cache (TensorRT-RTX deprecates them as no-ops)."""
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if recipe.explicit_batch:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if recipe.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # by path: external data is found beside it
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise EngineBuildError(f"TensorRT {trt.__version__} | cannot parse {onnx_path}: "
                               + ("; ".join(errors) or "no parser message"))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, recipe.workspace_bytes)
    if recipe.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if hasattr(trt.BuilderFlag, "TF32"):
        if recipe.tf32:
            config.set_flag(trt.BuilderFlag.TF32)
        else:
            config.clear_flag(trt.BuilderFlag.TF32)
    if recipe.optimization_level is not None:
        config.builder_optimization_level = recipe.optimization_level
    if recipe.compute_capability:
        set_compute_capability(trt, config, recipe.compute_capability)
    with contextlib.ExitStack() as stack:
        if timing_cache is not None:
            stack.enter_context(file_lock(timing_cache.with_name(timing_cache.name + ".lock")))
            _attach_timing_cache(config, timing_cache, progress)
        hint = " (Jetson builds take minutes)" if family is TENSORRT else ""
        with step(progress, f"building {family.name} {recipe.precision} engine from "
                            f"{onnx_path.name}{hint}"):
            serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(f"TensorRT {trt.__version__} | build_serialized_network "
                                   f"returned None for {onnx_path} ({recipe.describe()}); "
                                   "see the TensorRT log above.")
        if timing_cache is not None:
            _save_timing_cache(config, timing_cache, progress)
    return bytes(serialized)


def set_compute_capability(trt: Any, config: Any, name: str) -> None:
    """Build ahead of time for one GPU generation (TensorRT-RTX: `ComputeCapability.SM86`)."""
    config.num_compute_capabilities = 1
    config.set_compute_capability(getattr(trt.ComputeCapability, name), 0)


def _read(path: Path, progress: Callable[[str], None]) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        progress(f"timing cache {path} cannot be read ({exc.strerror}); building without it")
        return b""


def _timing_cache_from(config: Any, data: bytes) -> Any:
    """The cache `data` holds, or None where TensorRT cannot read it."""
    try:
        return config.create_timing_cache(data)
    except Exception:  # pybind11 raises where C++ returned an error
        return None


def _attach_timing_cache(config: Any, path: Path, progress: Callable[[str], None]) -> None:
    """The build starts from the cache on disk, or from an empty one where that cache is
    damaged or was made by another GPU or TensorRT (set_timing_cache then refuses it)."""
    data = _read(path, progress)
    cache = _timing_cache_from(config, data) if data else None
    if data and (cache is None or not config.set_timing_cache(cache, False)):
        progress(f"timing cache {path} is damaged or from another GPU or TensorRT; building "
                 "with an empty one, which replaces it")
        cache = None
    if cache is None:
        config.set_timing_cache(config.create_timing_cache(b""), False)


def _save_timing_cache(config: Any, path: Path, progress: Callable[[str], None]) -> None:
    """Merge what this build learned into the cache on disk (replacing one that cannot be
    merged: damaged or foreign), then replace the file atomically."""
    learned = config.get_timing_cache()
    if learned is None:
        progress(f"TensorRT kept no timing cache for this build; {path} is unchanged")
        return
    data = _read(path, progress)
    on_disk = _timing_cache_from(config, data) if data else None
    merged = on_disk if on_disk is not None and on_disk.combine(learned, False) else learned
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "wb") as stream:
        stream.write(bytes(merged.serialize()))
    try:
        os.replace(temporary, path)
    except OSError as exc:  # e.g. a folder stands where the file should be: leave it alone
        os.unlink(temporary)
        progress(f"timing cache {path} cannot be replaced ({exc.strerror}); it is unchanged")
