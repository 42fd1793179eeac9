"""A `tensorrt` stand-in generated from a real API snapshot (tests/data/trt_api/<version>.json).

Only the snapshot's names exist: a class, enum member or method the emulated version lacks raises
AttributeError exactly where the real module would. Behaviour comes from onnxruntime: the
"engine" is the ONNX model plus the build recipe, serialized; `execute_async_v3` reads the input
tensors at the addresses given by `set_tensor_address` and writes the outputs there (host memory
through ctypes; CUDA memory in stream order: fakes/emulated_cuda.py). Snapshot to classes and
enums: fakes/emulated_api.py.

    trt = emulated_tensorrt("11.4.0.106")      # then: sys.modules["tensorrt"] = trt
"""

from __future__ import annotations

import enum
import importlib.machinery
import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from fakes.emulated_api import bind_module_names, make_enums, restricted
from fakes.emulated_cuda import Memory, capturing, note

SNAPSHOTS = Path(__file__).resolve().parents[1] / "data" / "trt_api"
MAGIC = b"PSEMUENG"
_NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT64": np.int64, "INT32": np.int32}
_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 7: "INT64", 6: "INT32"}
DEVICE_MEMORY_BYTES = 80 << 30  # the emulated GPU's memory: WORKSPACE's default limit
TACTIC_SCRATCH_BYTES = 4 << 20  # what the emulated tactics would like as scratch


def versions() -> list[str]:
    return sorted(p.stem for p in SNAPSHOTS.glob("*.json"))


# -- behaviour -----------------------------------------------------------------------------------
class Logger:
    VERBOSE, INFO, WARNING, ERROR, INTERNAL_ERROR = 4, 3, 2, 1, 0

    def __init__(self, min_severity: int = 2) -> None:
        self.min_severity = min_severity

    def log(self, severity: int, msg: str) -> None:
        if severity <= self.min_severity:
            print(f"[emulated TensorRT] {msg}")


def _register_logger(trt: Any, logger: Any, creator: str) -> None:
    """TensorRT keeps one process-wide logger: the first builder, runtime or parser sets it and
    a later one bringing another logger gets a warning (recorded in `trt._logger_warnings`)."""
    if trt._logger is None:
        trt._logger = logger
    elif logger is not trt._logger:
        message = (f"The logger passed into {creator} differs from one already provided for an "
                   "existing builder, runtime, or refitter; the existing one stays in use")
        trt._logger_warnings.append(message)
        trt._logger.log(Logger.WARNING, message)


class ParserError:
    def __init__(self, message: str) -> None:
        self._message = message

    def desc(self) -> str:
        return self._message


class Emulated:
    """Base of every behaviour class; `_trt` is the emulated module that made it."""

    _trt: Any = None


class Builder(Emulated):
    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        _register_logger(self._trt, logger, "createInferBuilder")

    def create_network(self, flags: int = 0) -> Any:
        known = 0
        for member in self._trt.NetworkDefinitionCreationFlag:
            known |= 1 << int(member)
        if flags & ~known:
            self.logger.log(Logger.ERROR, f"invalid network creation flags {flags:#x} (emulated)")
            return None
        return self._trt.INetworkDefinition(flags)

    def create_builder_config(self) -> Any:
        return self._trt.IBuilderConfig()

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        if network._onnx_path is None:
            return None
        trt = self._trt
        creation = trt.NetworkDefinitionCreationFlag
        strongly_typed = "STRONGLY_TYPED" in creation.__members__ and \
            network._flags & (1 << int(creation.STRONGLY_TYPED))
        typing_flags = sorted(config._flags & {"FP16", "BF16", "INT8", "FP8"})
        if strongly_typed and typing_flags:
            self.logger.log(Logger.ERROR, f"BuilderFlag {typing_flags[0]} is not allowed with a "
                                          "strongly typed network (emulated check)")
            return None
        import onnx

        model = onnx.load(network._onnx_path)  # external data is read from beside the file
        weak_fp16 = "FP16" in config._flags and not strongly_typed
        if weak_fp16:
            model = _fp16_weights(model)
        header = {"version": trt.__version__, "flags": sorted(config._flags),
                  "network_flags": network._flags, "pools": dict(config._pools),
                  "workspace": config._limit("WORKSPACE"), "weak_fp16": weak_fp16,
                  "optimization_level": config._optimization_level,
                  "device": trt._device}
        if config._timing_cache is not None:
            config._timing_cache._entries[network._onnx_path] = header
        blob = json.dumps(header).encode()
        return self._trt.IHostMemory(MAGIC + struct.pack("<I", len(blob)) + blob
                                     + model.SerializeToString())


def _fp16_weights(model: Any) -> Any:
    """What `BuilderFlag.FP16` does to a weakly typed network, as far as its numbers show: the
    weights are stored in fp16 (the plan shrinks) and the layers compute in fp16 (their outputs
    drift), while the engine's I/O keeps the network's fp32. Each fp32 initializer becomes an
    fp16 one read through a Cast; `IExecutionContext` rounds inputs and outputs to fp16."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts = []
    for initializer in list(graph.initializer):
        if initializer.data_type != TensorProto.FLOAT:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(initializer).astype(np.float16),
                                       initializer.name + "__fp16")
        graph.initializer.remove(initializer)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [initializer.name],
                                      to=TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model

class INetworkDefinition(Emulated):
    def __init__(self, flags: int) -> None:
        self._flags = flags
        self._onnx_path: str | None = None

    @property
    def num_inputs(self) -> int:
        return 1 if self._onnx_path else 0


class OnnxParser(Emulated):
    def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
        self._network = network
        self._errors: list[str] = []

    def parse_from_file(self, model: str) -> bool:
        path = model
        trt = self._trt
        creation = trt.NetworkDefinitionCreationFlag
        if int(trt.__version__.split(".")[0]) < 10:
            explicit = 1 << int(creation.EXPLICIT_BATCH)
            if not self._network._flags & explicit:
                self._errors.append("Network must have explicit batch dimensions (emulated "
                                    "TensorRT < 10 check)")
                return False
        if not Path(path).is_file():
            self._errors.append(f"cannot open {path}")
            return False
        import onnx

        graph = onnx.load(path, load_external_data=False).graph
        foreign = [node.op_type for node in graph.node if node.domain not in ("", "ai.onnx")]
        if foreign:
            self._errors.append(f"No importer registered for op: {foreign[0]}")
            return False
        self._network._onnx_path = path
        return True

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> Any:
        return self._trt.ParserError(self._errors[index])


class ITimingCache(Emulated):
    """Timings for one device and TensorRT version, as real caches are."""

    def __init__(self, entries: dict[str, Any], device: str, version: str) -> None:
        self._entries, self._device, self._version = entries, device, version

    @classmethod
    def _read(cls, trt: Any, data: bytes) -> Any:
        if not data:
            return trt.ITimingCache({}, trt._device, trt.__version__)
        try:
            blob = json.loads(bytes(data).decode())
            return trt.ITimingCache(dict(blob["entries"]), str(blob["device"]),
                                    str(blob["version"]))
        except (ValueError, KeyError, TypeError):
            return None  # real TensorRT logs an error and returns no cache

    def _foreign(self) -> bool:
        return (self._device, self._version) != (self._trt._device, self._trt.__version__)

    def serialize(self) -> bytes:
        return json.dumps({"device": self._device, "version": self._version,
                           "entries": self._entries}, sort_keys=True).encode()

    def combine(self, input_cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if not isinstance(input_cache, ITimingCache):
            raise TypeError("combine(): incompatible function arguments (emulated pybind11)")
        if (input_cache._device, input_cache._version) != (self._device, self._version) \
                and not ignore_mismatch:
            return False
        self._entries.update(input_cache._entries)
        return True


class IBuilderConfig(Emulated):
    """Flags and memory pools checked as the bindings check them: a member of another enum (or
    another TensorRT module's) is a pybind11 TypeError, a negative or non-integer pool size too.
    Unset pools read their defaults (WORKSPACE: the device's memory, as TensorRT documents).
    The real TensorRT-RTX 1.7 bindings behave so (test_tensorrt_rtx.py checks both alike)."""

    def __init__(self) -> None:
        self._flags: set[str] = {"TF32"}  # TensorRT enables TF32 by default
        self._pools: dict[str, int] = {}
        self._timing_cache: Any = None
        self._optimization_level = 3

    @property
    def builder_optimization_level(self) -> int:
        return self._optimization_level

    @builder_optimization_level.setter
    def builder_optimization_level(self, level: int) -> None:
        # a pybind11 int property: None or a float is a TypeError; TensorRT accepts 0 to 5
        if not isinstance(level, int) or isinstance(level, bool):
            raise TypeError("builder_optimization_level: incompatible type "
                            f"{type(level).__name__} (emulated pybind11)")
        self._optimization_level = level

    def _flag(self, flag: Any, method: str) -> str:
        if not isinstance(flag, self._trt.BuilderFlag):
            raise TypeError(f"{method}(): incompatible function arguments: {flag!r} is not a "
                            f"tensorrt.BuilderFlag of TensorRT {self._trt.__version__} (emulated)")
        return str(flag.name)

    def set_flag(self, flag: enum.Enum) -> None:
        self._flags.add(self._flag(flag, "set_flag"))

    def clear_flag(self, flag: enum.Enum) -> None:
        self._flags.discard(self._flag(flag, "clear_flag"))

    def get_flag(self, flag: enum.Enum) -> bool:
        return self._flag(flag, "get_flag") in self._flags

    def _pool(self, pool: Any, method: str) -> str:
        if not isinstance(pool, self._trt.MemoryPoolType):
            raise TypeError(f"{method}(): incompatible function arguments: {pool!r} is not a "
                            f"tensorrt.MemoryPoolType of TensorRT {self._trt.__version__} "
                            "(emulated)")
        return str(pool.name)

    def set_memory_pool_limit(self, pool: enum.Enum, pool_size: int) -> None:
        name = self._pool(pool, "set_memory_pool_limit")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
            raise TypeError("set_memory_pool_limit(): incompatible function arguments: pool_size "
                            f"must be a size_t, got {pool_size!r} (emulated)")
        self._pools[name] = pool_size

    def get_memory_pool_limit(self, pool: enum.Enum) -> int:
        return self._limit(self._pool(pool, "get_memory_pool_limit"))

    def _limit(self, name: str) -> int:
        if name in self._pools:
            return self._pools[name]
        return DEVICE_MEMORY_BYTES if name in ("WORKSPACE", "TACTIC_DRAM") else 0

    def create_timing_cache(self, serialized_timing_cache: bytes) -> Any:
        if not isinstance(serialized_timing_cache, (bytes, bytearray, memoryview)):
            raise TypeError("create_timing_cache(): incompatible function arguments: a buffer, "
                            f"not {type(serialized_timing_cache).__name__} (emulated pybind11)")
        return ITimingCache._read(self._trt, serialized_timing_cache)

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if not isinstance(cache, ITimingCache):
            raise TypeError("set_timing_cache(): incompatible function arguments (emulated)")
        if cache._foreign() and not ignore_mismatch:
            self._timing_cache = None  # refused: the build runs without a cache
            return False
        self._timing_cache = cache
        return True

    def get_timing_cache(self) -> Any:
        return self._timing_cache


class IHostMemory(Emulated):
    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def nbytes(self) -> int:
        return len(self._data)

    def __bytes__(self) -> bytes:
        return self._data

    def __buffer__(self, flags: int) -> memoryview:
        return memoryview(self._data)


class Runtime(Emulated):
    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        _register_logger(self._trt, logger, "createInferRuntime")

    def deserialize_cuda_engine(self, serialized_engine: Any) -> Any:
        raw = bytes(serialized_engine)
        if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 4:
            return None  # as the real runtime: None for a plan it cannot read
        (length,) = struct.unpack("<I", raw[len(MAGIC):len(MAGIC) + 4])
        try:
            header = json.loads(raw[len(MAGIC) + 4:len(MAGIC) + 4 + length])
        except ValueError:
            return None
        self._trt._deserializations += 1
        if header["version"] != self._trt.__version__:
            return None  # plans are tied to the exact TensorRT version
        if header.get("device") != self._trt._device:
            self.logger.log(Logger.ERROR, "the engine was built for another device (emulated)")
            return None
        return self._trt.ICudaEngine(raw, raw[len(MAGIC) + 4 + length:], header)


class ICudaEngine(Emulated):
    def __init__(self, raw: bytes, onnx_bytes: bytes, header: dict[str, Any]) -> None:
        import onnx
        import onnxruntime

        self._raw, self._header = raw, header
        self._session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        graph = onnx.load_from_string(onnx_bytes).graph
        self._io = [(i.name, "INPUT", i.type.tensor_type) for i in graph.input] + \
                   [(o.name, "OUTPUT", o.type.tensor_type) for o in graph.output]

    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    def get_tensor_name(self, index: int) -> str:
        return self._io[index][0]

    def _find(self, name: str) -> tuple[str, str, Any]:
        return next(entry for entry in self._io if entry[0] == name)

    def get_tensor_mode(self, name: str) -> Any:
        return self._trt.TensorIOMode[self._find(name)[1]]

    def get_tensor_dtype(self, name: str) -> Any:
        return self._trt.DataType[_ONNX_TO_TRT[self._find(name)[2].elem_type]]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(d.dim_value for d in self._find(name)[2].shape.dim)

    def create_execution_context(self) -> Any:
        return self._trt.IExecutionContext(self)

    def serialize(self) -> Any:
        return self._trt.IHostMemory(self._raw)

    def _device_memory(self) -> int:
        """Activations (the I/O tensors, twice over) plus the tactics' scratch, which the
        WORKSPACE limit caps: the one way a workspace limit shows in an engine."""
        sizes = [4 * int(np.prod(self.get_tensor_shape(name) or (1,))) for name, _, _ in self._io]
        return 2 * sum(sizes) + min(TACTIC_SCRATCH_BYTES, int(self._header["workspace"]))

    @property
    def device_memory_size(self) -> int:
        return self._device_memory()

    @property
    def device_memory_size_v2(self) -> int:
        return self._device_memory()


class IExecutionContext(Emulated):
    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self._addresses: dict[str, int] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._memory = Memory()
        self._ran = False  # TensorRT asks for one enqueue before a CUDA graph capture

    # TensorRT's context answers a bad name, shape or missing address with False and an error in
    # its log (IExecutionContext::setInputShape, setTensorAddress, enqueueV3 in NvInferRuntime.h);
    # a stream handle that is not an int is a pybind11 TypeError.
    def _refuse(self, message: str) -> bool:
        if self._trt._logger is not None:
            self._trt._logger.log(Logger.ERROR, f"{message} (emulated)")
        return False

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        inputs = [n for n, mode, _ in self._engine._io if mode == "INPUT"]
        if name not in inputs:
            return self._refuse(f"setInputShape: {name!r} is not an input tensor of the engine")
        built = tuple(self._engine.get_tensor_shape(name))
        if len(shape) != len(built) or any(b not in (-1, d) for b, d in zip(built, shape)):
            return self._refuse(f"setInputShape: {tuple(shape)} is outside the engine's "
                                f"optimization profile for {name!r}")
        self._shapes[name] = tuple(shape)
        self._ran = False  # the first execution after a shape change may allocate
        return True

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if name not in [n for n, _, _ in self._engine._io]:
            return self._refuse(f"setTensorAddress: {name!r} is not an I/O tensor of the engine")
        self._addresses[name] = int(memory)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        if not isinstance(stream_handle, int) or isinstance(stream_handle, bool):
            raise TypeError("execute_async_v3(): incompatible function arguments: stream_handle "
                            f"must be an int, not {stream_handle!r} (emulated pybind11)")
        unbound = [n for n, _, _ in self._engine._io if n not in self._addresses]
        if unbound:
            return self._refuse(f"enqueueV3: no address set for tensor {unbound[0]!r}")
        graph = capturing(stream_handle)
        if graph is not None:  # under CUDA graph capture: recorded, run by each replay
            if not self._ran:
                raise RuntimeError("CUDA error: operation not permitted when stream is capturing "
                                   "(emulated: TensorRT asks for one enqueue before capture)")
            graph.record(lambda: self._execute(stream_handle))
            return True
        self._ran = True
        return self._execute(stream_handle)

    def _execute(self, stream_handle: int) -> bool:
        note("execute", stream_handle)
        engine = self._engine
        self._memory.wait_for(stream_handle)  # stream order: what was enqueued before us ran
        feeds = {}
        for name, mode, _ in engine._io:
            if mode == "INPUT":
                dtype = _NUMPY[engine.get_tensor_dtype(name).name]
                shape = self._shapes.get(name, engine.get_tensor_shape(name))
                feeds[name] = self._memory.read(self._addresses[name], dtype, shape)
        if engine._header.get("weak_fp16"):  # fp16 layers behind fp32 I/O
            feeds = {name: _fp16_rounded(value) for name, value in feeds.items()}
        outputs = engine._session.run(None, feeds)
        if engine._header.get("weak_fp16"):
            outputs = [_fp16_rounded(value) for value in outputs]
        for (name, _mode, _), value in zip([e for e in engine._io if e[1] == "OUTPUT"], outputs):
            self._memory.write(self._addresses[name], value, stream_handle)
        return True


def _fp16_rounded(value: np.ndarray) -> np.ndarray:
    if value.dtype != np.float32:
        return value
    return value.astype(np.float16).astype(np.float32)


BEHAVIOUR: dict[str, type] = {cls.__name__: cls for cls in (
    Logger, ParserError, Builder, INetworkDefinition, OnnxParser, ITimingCache, IBuilderConfig,
    IHostMemory, Runtime, ICudaEngine, IExecutionContext)}


class _Placeholder(Emulated):
    """A class the emulator has no behaviour for: it exists, but cannot be used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"the TensorRT emulator does not implement {type(self).__name__}")


def emulated_tensorrt(version: str, device: str = "emulated GPU 0") -> ModuleType:
    """The emulated `tensorrt` module of `version`, on a GPU identified as `device` (engines and
    timing caches carry it; another device refuses them, as real TensorRT does)."""
    api = json.loads((SNAPSHOTS / f"{version}.json").read_text())
    module = ModuleType("tensorrt", f"Emulated TensorRT {version} (perfsuite tests/fakes)")
    module.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    module.__version__ = api["__version__"]
    module.__perfsuite_host_memory__ = True  # type: ignore[attr-defined]  # runs on host buffers
    module._device = device  # type: ignore[attr-defined]
    module._logger = None  # type: ignore[attr-defined]  # the process-wide logger, once set
    module._logger_warnings = []  # type: ignore[attr-defined]
    module._deserializations = 0  # type: ignore[attr-defined]
    for name, made in make_enums(api).items():
        setattr(module, name, made)
    for name, members in api["__classes__"].items():
        base = BEHAVIOUR.get(name) or type(name, (_Placeholder,), {})
        setattr(module, name, restricted(base, members, version, module))
    bind_module_names(module, api)
    return module
