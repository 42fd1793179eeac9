"""A `tensorrt` stand-in generated from a real API snapshot (tests/data/trt_api/<version>.json).

Only the snapshot's names exist: a class, enum member or method the emulated version lacks raises
AttributeError exactly where the real module would. Behaviour comes from onnxruntime: the
"engine" is the ONNX model plus the build recipe, serialized; `execute_async_v3` reads the input
tensors at the addresses given by `set_tensor_address` and writes the outputs there (host memory
through ctypes, CUDA memory through cudaMemcpy when a GPU is present).

    trt = emulated_tensorrt("11.4.0.106")      # then: sys.modules["tensorrt"] = trt
"""

from __future__ import annotations

import ctypes
import enum
import glob
import importlib.machinery
import json
import os
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

SNAPSHOTS = Path(__file__).resolve().parents[1] / "data" / "trt_api"
MAGIC = b"PSEMUENG"
_NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT64": np.int64, "INT32": np.int32}
_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 7: "INT64", 6: "INT32"}


def versions() -> list[str]:
    return sorted(p.stem for p in SNAPSHOTS.glob("*.json"))


# -- memory access ------------------------------------------------------------------------------
class Memory:
    """Copies between numpy arrays and raw addresses (host, or CUDA through cudaMemcpy)."""

    def __init__(self) -> None:
        self._cudart = _load_cudart()

    def read(self, address: int, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=dtype)
        self._copy(out.ctypes.data, address, out.nbytes)
        return out

    def write(self, address: int, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array)
        self._copy(address, data.ctypes.data, data.nbytes)

    def synchronize(self) -> None:
        if self._cudart is not None:
            self._cudart.cudaDeviceSynchronize()

    def _copy(self, dst: int, src: int, nbytes: int) -> None:
        if self._cudart is None:
            ctypes.memmove(dst, src, nbytes)
            return
        status = self._cudart.cudaMemcpy(ctypes.c_void_p(dst), ctypes.c_void_p(src),
                                         ctypes.c_size_t(nbytes), 4)  # cudaMemcpyDefault
        if status != 0:
            raise RuntimeError(f"emulator cudaMemcpy failed with status {status}")


def _load_cudart() -> Any:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    roots = [os.path.dirname(torch.__file__), *sys.path]
    for root in roots:
        for found in sorted(glob.glob(os.path.join(root, "**", "libcudart.so*"), recursive=True)):
            return ctypes.CDLL(found)
    return ctypes.CDLL("libcudart.so")


# -- behaviour -----------------------------------------------------------------------------------
class Logger:
    VERBOSE, INFO, WARNING, ERROR, INTERNAL_ERROR = 4, 3, 2, 1, 0

    def __init__(self, min_severity: int = 2) -> None:
        self.min_severity = min_severity

    def log(self, severity: int, message: str) -> None:
        if severity <= self.min_severity:
            print(f"[emulated TensorRT] {message}")


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

    def create_network(self, flags: int = 0) -> Any:
        return self._trt.INetworkDefinition(flags)

    def create_builder_config(self) -> Any:
        return self._trt.IBuilderConfig()

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        if network._onnx_path is None:
            return None
        import onnx

        model = onnx.load(network._onnx_path)  # external data is read from beside the file
        header = {"version": self._trt.__version__, "flags": sorted(config._flags),
                  "network_flags": network._flags, "workspace": config._workspace}
        config._timing_cache._entries[network._onnx_path] = header
        blob = json.dumps(header).encode()
        return self._trt.IHostMemory(MAGIC + struct.pack("<I", len(blob)) + blob
                                     + model.SerializeToString())


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

    def parse_from_file(self, path: str) -> bool:
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
        self._network._onnx_path = path
        return True

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> Any:
        return self._trt.ParserError(self._errors[index])


class ITimingCache(Emulated):
    def __init__(self, data: bytes = b"") -> None:
        self._entries: dict[str, Any] = json.loads(data.decode()) if data else {}

    def serialize(self) -> bytes:
        return json.dumps(self._entries, sort_keys=True).encode()

    def combine(self, other: ITimingCache, ignore_mismatch: bool) -> bool:
        self._entries.update(other._entries)
        return True


class IBuilderConfig(Emulated):
    def __init__(self) -> None:
        self._flags: set[str] = {"TF32"}  # TensorRT enables TF32 by default
        self._workspace = 0
        self._timing_cache = self._trt.ITimingCache()
        self.builder_optimization_level = 3

    def set_flag(self, flag: enum.Enum) -> None:
        self._flags.add(flag.name)

    def clear_flag(self, flag: enum.Enum) -> None:
        self._flags.discard(flag.name)

    def get_flag(self, flag: enum.Enum) -> bool:
        return flag.name in self._flags

    def set_memory_pool_limit(self, pool: enum.Enum, size: int) -> None:
        self._workspace = size

    def create_timing_cache(self, data: bytes) -> Any:
        return self._trt.ITimingCache(bytes(data))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
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

    def deserialize_cuda_engine(self, data: Any) -> Any:
        raw = bytes(data)
        if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 4:
            return None  # as the real runtime: None for a plan it cannot read
        (length,) = struct.unpack("<I", raw[len(MAGIC):len(MAGIC) + 4])
        try:
            header = json.loads(raw[len(MAGIC) + 4:len(MAGIC) + 4 + length])
        except ValueError:
            return None
        if header["version"] != self._trt.__version__:
            return None  # plans are tied to the exact TensorRT version
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

    @property
    def device_memory_size(self) -> int:
        return 0

    @property
    def device_memory_size_v2(self) -> int:
        return 0


class IExecutionContext(Emulated):
    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self._addresses: dict[str, int] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._memory = Memory()

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self._shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, address: int) -> bool:
        self._addresses[name] = int(address)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        engine = self._engine
        self._memory.synchronize()  # inputs were enqueued on some stream; let them land
        feeds = {}
        for name, mode, _ in engine._io:
            if mode == "INPUT":
                dtype = _NUMPY[engine.get_tensor_dtype(name).name]
                shape = self._shapes.get(name, engine.get_tensor_shape(name))
                feeds[name] = self._memory.read(self._addresses[name], dtype, shape)
        outputs = engine._session.run(None, feeds)
        for (name, mode, _), value in zip([e for e in engine._io if e[1] == "OUTPUT"], outputs):
            self._memory.write(self._addresses[name], value)
        return True


BEHAVIOUR: dict[str, type] = {cls.__name__: cls for cls in (
    Logger, ParserError, Builder, INetworkDefinition, OnnxParser, ITimingCache, IBuilderConfig,
    IHostMemory, Runtime, ICudaEngine, IExecutionContext)}


# -- the module ----------------------------------------------------------------------------------
class _Restricted(type):
    """Class-level attribute access limited to the snapshot's member names."""

    def __getattribute__(cls, name: str) -> Any:
        allowed = type.__getattribute__(cls, "_allowed")
        if not name.startswith("_") and name not in allowed:
            version = type.__getattribute__(cls, "_version")
            raise AttributeError(f"type object 'tensorrt.{cls.__name__}' has no attribute "
                                 f"{name!r} (emulated TensorRT {version})")
        return type.__getattribute__(cls, name)

    def __getattr__(cls, name: str) -> Any:  # in the real API, not emulated
        if name in type.__getattribute__(cls, "_allowed"):
            return _unimplemented(cls.__name__, name)
        version = type.__getattribute__(cls, "_version")
        raise AttributeError(f"type object 'tensorrt.{cls.__name__}' has no attribute {name!r} "
                             f"(emulated TensorRT {version})")


def _unimplemented(owner: str, name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"the TensorRT emulator does not implement {owner}.{name}")

    return call


def _restricted(base: type, allowed: list[str], version: str, module: ModuleType) -> type:
    def __getattribute__(self: Any, name: str) -> Any:
        if not name.startswith("_") and name not in allowed:
            raise AttributeError(f"'tensorrt.{base.__name__}' object has no attribute {name!r} "
                                 f"(emulated TensorRT {version})")
        return object.__getattribute__(self, name)

    def __getattr__(self: Any, name: str) -> Any:  # in the real API, not emulated
        if name in allowed:
            return _unimplemented(base.__name__, name)
        raise AttributeError(f"'tensorrt.{base.__name__}' object has no attribute {name!r} "
                             f"(emulated TensorRT {version})")

    namespace = {"__getattribute__": __getattribute__, "__getattr__": __getattr__,
                 "_allowed": set(allowed),
                 "_version": version, "_trt": module}
    return _Restricted(base.__name__, (base,), namespace)


class _Placeholder(Emulated):
    """A class the emulator has no behaviour for: it exists, but cannot be used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"the TensorRT emulator does not implement {type(self).__name__}")


def emulated_tensorrt(version: str) -> ModuleType:
    api = json.loads((SNAPSHOTS / f"{version}.json").read_text())
    module = ModuleType("tensorrt", f"Emulated TensorRT {version} (perfsuite tests/fakes)")
    module.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    module.__version__ = api["__version__"]
    for name, members in api["__enums__"].items():
        setattr(module, name, enum.IntEnum(name, members, start=0))
    for name, members in api["__classes__"].items():
        base = BEHAVIOUR.get(name) or type(name, (_Placeholder,), {})
        setattr(module, name, _restricted(base, members, version, module))
    for name in api["__module__"]:
        setattr(module, name, getattr(module.DataType, "FLOAT", None))  # aliases; unused
    return module
