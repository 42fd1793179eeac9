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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfsuite.artifacts import file_lock
from perfsuite.errors import BackendUnavailable, PerfsuiteError
from perfsuite.export import OnnxArtifact

ENGINE_FILE = "model.engine"
PROGRESS_EVERY_S = 15.0


class EngineBuildError(PerfsuiteError):
    """TensorRT could not parse the ONNX or build an engine from it."""


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

    def describe(self) -> str:
        if self.precision == "fp32":
            how = "fp32 ONNX, no reduced-precision flags"
        elif self.fp16_flag:
            how = "fp32 ONNX + BuilderFlag.FP16 (weakly typed)"
        else:
            how = "fp16 ONNX, strongly typed network"
        return f"{self.precision}: {how}; TF32 {'on' if self.tf32 else 'off'}"

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
                optimization_level: int | None = None) -> EngineRecipe:
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


def build_engine(trt: Any, onnx_path: Path, recipe: EngineRecipe, timing_cache: Path,
                 progress: Callable[[str], None]) -> bytes:
    """Serialized engine bytes; EngineBuildError carries the parser's or builder's messages."""
    logger = trt.Logger(trt.Logger.WARNING)
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
    if recipe.tf32:
        config.set_flag(trt.BuilderFlag.TF32)
    else:
        config.clear_flag(trt.BuilderFlag.TF32)
    if recipe.optimization_level is not None:
        config.builder_optimization_level = recipe.optimization_level
    with file_lock(timing_cache.with_name(timing_cache.name + ".lock")):
        cache = config.create_timing_cache(_read(timing_cache))
        config.set_timing_cache(cache, False)
        with _ticker(progress, f"building TensorRT {recipe.precision} engine from {onnx_path.name}"):
            serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(f"TensorRT {trt.__version__} | build_serialized_network "
                                   f"returned None for {onnx_path} ({recipe.describe()}); "
                                   "see the TensorRT log above.")
        _save_timing_cache(config.create_timing_cache(_read(timing_cache)),
                           config.get_timing_cache(), timing_cache)
    return bytes(serialized)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _save_timing_cache(on_disk: Any, fresh: Any, path: Path) -> None:
    """Merge what this build learned into the cache on disk, then replace it atomically."""
    on_disk.combine(fresh, False)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "wb") as stream:
        stream.write(bytes(on_disk.serialize()))
    os.replace(temporary, path)


@contextlib.contextmanager
def _ticker(progress: Callable[[str], None], what: str) -> Iterator[None]:
    """Say what is being built, then how long it has been running, every PROGRESS_EVERY_S."""
    progress(f"{what} (Jetson builds take minutes)")
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(PROGRESS_EVERY_S):
            progress(f"{what}: {time.monotonic() - started:.0f} s so far")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        progress(f"{what}: done in {time.monotonic() - started:.1f} s")
