"""CUDA memory for the TensorRT emulator: copies between numpy arrays and raw addresses, in
stream order on a GPU (through the CUDA runtime, by ctypes), by memmove on the host."""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import time
from typing import Any

import numpy as np

# The CPU stand-in for torch.cuda (fakes/cpu_cuda.py) registers itself here while installed, so
# the TensorRT emulator records executions on a capturing stream and logs its launches.
CAPTURING: dict[str, Any] = {}


def capturing(stream: int) -> Any:
    """The graph capturing on `stream` under the CPU stand-in, else None."""
    cuda = CAPTURING.get("cuda")
    return cuda.launched_on(int(stream)) if cuda is not None else None


def note(event: str, stream: int) -> None:
    cuda = CAPTURING.get("cuda")
    if cuda is not None:
        cuda.log.append((event, int(stream)))


class Memory:
    """Copies between numpy arrays and raw addresses: host memory through ctypes; CUDA memory
    in stream order, as TensorRT works: `execute_async_v3` waits for what was enqueued on its
    stream before it, and its outputs land only after `OUTPUT_DELAY_S` more on that stream, so
    a read that does not synchronise that stream first sees the old contents."""

    OUTPUT_DELAY_S = 0.02

    def __init__(self) -> None:
        self._cudart = _load_cudart()
        self._staging: dict[int, tuple[int, int]] = {}  # address -> (pinned pointer, nbytes)

    def read(self, address: int, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=dtype)
        self._copy(out.ctypes.data, address, out.nbytes)
        return out

    def write(self, address: int, array: np.ndarray, stream: int) -> None:
        data = np.ascontiguousarray(array)
        if self._cudart is None:
            ctypes.memmove(address, data.ctypes.data, data.nbytes)
            return
        pinned = self._pinned(address, data.nbytes)
        ctypes.memmove(pinned, data.ctypes.data, data.nbytes)
        self._check(self._cudart.cudaLaunchHostFunc(ctypes.c_void_p(stream), _DELAY, None))
        self._check(self._cudart.cudaMemcpyAsync(ctypes.c_void_p(address), ctypes.c_void_p(pinned),
                                                 ctypes.c_size_t(data.nbytes), 4,
                                                 ctypes.c_void_p(stream)))

    def wait_for(self, stream: int) -> None:
        """Everything enqueued on `stream` so far has run (inputs copied there have landed)."""
        if self._cudart is not None:
            self._check(self._cudart.cudaStreamSynchronize(ctypes.c_void_p(stream)))

    def _pinned(self, address: int, nbytes: int) -> int:
        pointer, size = self._staging.get(address, (0, 0))
        if size < nbytes:
            new = ctypes.c_void_p()
            self._check(self._cudart.cudaMallocHost(ctypes.byref(new), ctypes.c_size_t(nbytes)))
            pointer = int(new.value or 0)
            self._staging[address] = (pointer, nbytes)
        return pointer

    def _copy(self, dst: int, src: int, nbytes: int) -> None:
        if self._cudart is None:
            ctypes.memmove(dst, src, nbytes)
            return
        self._check(self._cudart.cudaMemcpy(ctypes.c_void_p(dst), ctypes.c_void_p(src),
                                            ctypes.c_size_t(nbytes), 4))  # cudaMemcpyDefault

    @staticmethod
    def _check(status: int) -> None:
        if status != 0:
            raise RuntimeError(f"emulated TensorRT: CUDA call failed with status {status}")


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _DELAY(_: Any) -> None:
    time.sleep(Memory.OUTPUT_DELAY_S)


def _load_cudart() -> Any:
    torch = sys.modules.get("torch")
    if torch is None or "cuda" in CAPTURING or not torch.cuda.is_available():
        return None
    roots = [os.path.dirname(torch.__file__), *sys.path]
    for root in roots:
        for found in sorted(glob.glob(os.path.join(root, "**", "libcudart.so*"), recursive=True)):
            return ctypes.CDLL(found)
    return ctypes.CDLL("libcudart.so")
