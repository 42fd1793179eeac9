"""A `pycuda.driver` stand-in on host memory that records what a CUDA context would see.

Every allocation, free, stream creation and destruction, push, pop and detach is appended to
`events` with whether a context was current at that moment, so a test can check the order a
runner tears down in (a real free after `detach` works on a destroyed context and leaks).

    driver = FakePycudaDriver(); sys.modules["pycuda.driver"] = driver
"""

from __future__ import annotations

import ctypes
from types import ModuleType
from typing import Any

import numpy as np


class FakePycudaDriver(ModuleType):
    def __init__(self, fail_alloc_after: int | None = None) -> None:
        super().__init__("pycuda.driver")
        self.events: list[tuple[str, bool]] = []
        self.stack: list[Any] = []
        self.devices: list[int] = []
        self.copies: list[tuple[str, int | None]] = []  # (direction, id of its stream or None)
        self._allocations = 0
        self._fail_alloc_after = fail_alloc_after
        driver = self

        class Context:
            def push(self) -> None:
                driver.stack.append(self)
                driver.record("push")

            def pop(self) -> None:
                driver.stack.pop()
                driver.record("pop")

            def detach(self) -> None:
                driver.record("detach")

        class Device:
            def __init__(self, index: int) -> None:
                driver.devices.append(index)

            def retain_primary_context(self) -> Context:
                return Context()

        class Stream:
            handle = 0

            def __init__(self) -> None:
                driver.record("stream created")

            def synchronize(self) -> None:
                driver.record("stream synchronized")

            def __del__(self) -> None:
                driver.record("stream destroyed")

        self.Device, self.Stream, self.Context = Device, Stream, Context

    def record(self, event: str) -> None:
        self.events.append((event, bool(self.stack)))

    def init(self) -> None:
        self.record("init")

    def pagelocked_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        allocation = HostAllocation(self, int(np.prod(shape)) * np.dtype(dtype).itemsize)
        return np.ndarray(shape, dtype=dtype, buffer=allocation)

    def mem_alloc(self, nbytes: int) -> DeviceAllocation:
        self._allocations += 1
        if self._fail_alloc_after is not None and self._allocations > self._fail_alloc_after:
            raise MemoryError("fake pycuda: out of device memory")
        return DeviceAllocation(self, nbytes)

    # pycuda's signatures: memcpy_htod_async(dest, src, stream=None) copies src.nbytes,
    # memcpy_dtoh_async(dest, src, stream=None) dest.nbytes; no stream means the default stream.
    # Each copy is logged with its stream; a size that overruns the allocation (silent memory
    # corruption on a GPU) raises here.
    def memcpy_htod_async(self, dst: DeviceAllocation, src: np.ndarray, stream: Any = None) -> None:
        self._copy("htod", dst, src.nbytes, stream)
        ctypes.memmove(int(dst), src.ctypes.data, src.nbytes)

    def memcpy_dtoh_async(self, dst: np.ndarray, src: DeviceAllocation, stream: Any = None) -> None:
        self._copy("dtoh", src, dst.nbytes, stream)
        ctypes.memmove(dst.ctypes.data, int(src), dst.nbytes)

    def _copy(self, direction: str, allocation: DeviceAllocation, nbytes: int, stream: Any) -> None:
        if nbytes > allocation.nbytes:
            raise RuntimeError(f"fake pycuda: {direction} copy of {nbytes} bytes overruns a "
                               f"{allocation.nbytes}-byte allocation")
        self.copies.append((direction, None if stream is None else id(stream)))  # no reference:
        # a stream must still be destroyed when its runner lets go of it


class HostAllocation(bytearray):
    """Page-locked host memory: the `.base` of what pagelocked_empty returns, with `free()`."""

    def __init__(self, driver: FakePycudaDriver, nbytes: int) -> None:
        super().__init__(nbytes)
        self._driver, self._freed = driver, False
        driver.record("host allocated")

    def free(self) -> None:
        if not self._freed:
            self._freed = True
            self._driver.record("host freed")

    def __del__(self) -> None:
        self.free()


class DeviceAllocation:
    """Device memory (host bytes here): `int()` is its address, `free()` gives it back."""

    def __init__(self, driver: FakePycudaDriver, nbytes: int) -> None:
        self._driver, self._freed, self.nbytes = driver, False, nbytes
        self._buffer = (ctypes.c_char * max(nbytes, 1))()
        driver.record("device allocated")

    def __int__(self) -> int:
        return ctypes.addressof(self._buffer)

    def free(self) -> None:
        if not self._freed:
            self._freed = True
            self._driver.record("device freed")

    def __del__(self) -> None:
        self.free()
