"""From an API snapshot to Python objects: classes limited to a version's members, enums with
their real values (pybind11-like: not ints), module-level names bound as the real package binds
them."""

from __future__ import annotations

import enum
from types import ModuleType
from typing import Any

import numpy as np


class Restricted(type):
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
            return unimplemented(cls.__name__, name)
        version = type.__getattribute__(cls, "_version")
        raise AttributeError(f"type object 'tensorrt.{cls.__name__}' has no attribute {name!r} "
                             f"(emulated TensorRT {version})")


def unimplemented(owner: str, name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"the TensorRT emulator does not implement {owner}.{name}")

    return call


def restricted(base: type, allowed: list[str], version: str, module: ModuleType) -> type:
    def __getattribute__(self: Any, name: str) -> Any:
        if not name.startswith("_") and name not in allowed:
            raise AttributeError(f"'tensorrt.{base.__name__}' object has no attribute {name!r} "
                                 f"(emulated TensorRT {version})")
        return object.__getattribute__(self, name)

    def __getattr__(self: Any, name: str) -> Any:  # in the real API, not emulated
        if name in allowed:
            return unimplemented(base.__name__, name)
        raise AttributeError(f"'tensorrt.{base.__name__}' object has no attribute {name!r} "
                             f"(emulated TensorRT {version})")

    namespace = {"__getattribute__": __getattribute__, "__getattr__": __getattr__,
                 "_allowed": set(allowed),
                 "_version": version, "_trt": module}
    return Restricted(base.__name__, (base,), namespace)


class Pybind11Enum(enum.Enum):
    """Like TensorRT's pybind11 enums: real values, int() works, but members are not ints."""

    def __int__(self) -> int:
        return int(self.value)

    __index__ = __int__

    def __hash__(self) -> int:
        return hash(self.value)


NUMPY_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32,
               "INT64": np.int64, "BOOL": np.bool_, "UINT8": np.uint8}


def make_enums(api: dict[str, Any]) -> dict[str, type]:
    """Each enum with its real member values (older snapshots: numbered in order)."""
    values = api.get("__enum_values__", {})
    made = {}
    for name, members in api["__enums__"].items():
        numbered = values.get(name) or {m: i for i, m in enumerate(members)}
        made[name] = Pybind11Enum(name, dict(numbered))  # type: ignore[call-overload]
    itemsize = api.get("__datatype_itemsize__", {})
    if "DataType" in made:  # tensorrt/__init__.py adds it: a lookup in a table
        made["DataType"].itemsize = property(  # type: ignore[attr-defined]
            lambda self: itemsize.get(self.name))
    return made


def bind_module_names(module: ModuleType, api: dict[str, Any]) -> None:
    """Module-level names as the real __init__.py binds them: float16 is DataType.HALF, ..."""
    for name, bound in api.get("__module_bindings__", {}).items():
        owner, _, member = str(bound).partition(".")
        enum_type = getattr(module, owner, None)
        if member and isinstance(enum_type, type) and member in getattr(enum_type,
                                                                       "__members__", {}):
            setattr(module, name, enum_type[member])
    module.nptype = lambda dtype: NUMPY_TYPES[dtype.name]  # type: ignore[attr-defined]
    module.volume = lambda shape: int(np.prod(list(shape), dtype=np.int64))  # type: ignore[attr-defined]
