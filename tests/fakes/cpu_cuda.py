"""torch.cuda on a CPU: streams, CUDA graphs and "cuda" tensors in host memory, so the CUDA-graph
backend and the TensorRT runner's stream and graph branches run on a machine without a GPU.

The fakes take the real torch.cuda signatures (tests/unit/machine/test_cuda_on_cpu.py checks them) and are
strict where CUDA is:
- a graph records the work launched while its stream captures and does not run it: the captured
  outputs hold NaN until the first replay, and a replay runs the recorded work again on whatever
  the static inputs hold then;
- a model called for the first time under capture fails as CUDA does (lazy cuBLAS/cuDNN set-up is
  not permitted while a stream captures: torch's docs ask for warm-up on a side stream first); the
  TensorRT emulator refuses an execution under capture before one ran (fakes/emulated_cuda.py);
- every launch, replay, wait and synchronisation is logged with its stream, for stream-order tests.

    cuda = CpuCuda(torch).install(monkeypatch)    # undone with the monkeypatch
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from fakes import emulated_cuda

DEVICE_NAME = "Emulated GPU (CPU)"


class _DeviceType(type):
    """`torch.device` replaced: "cuda" devices become the CPU; isinstance still works."""

    real: Any = None

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.real)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        made = cls.real(*args, **kwargs)
        return cls.real("cpu") if made.type == "cuda" else made


class CpuCuda:
    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.log: list[tuple[str, int]] = []  # (event, stream handle)
        self._handles = itertools.count(0x1000)
        self.default = self._stream(handle=0)
        self.current = self.default
        self.capturing: FakeGraph | None = None
        self.warmed: set[int] = set()  # models that ran outside a capture, on a side stream
        self._depth = 0

    # -- torch.cuda, typed as the real one ---------------------------------------------------
    def install(self, monkeypatch: Any) -> CpuCuda:
        torch, fake = self.torch, self

        class Stream:
            def __new__(cls, device: Any = None, priority: int = 0, **kwargs: Any) -> Any:
                return fake._stream(next(fake._handles))

        class CUDAGraph:
            def __new__(cls, **kwargs: Any) -> Any:  # torch 2.7 added keep_graph
                return FakeGraph(fake)

        def graph(cuda_graph: Any, pool: Any = None, stream: Any = None,
                  capture_error_mode: str = "global", **kwargs: Any) -> Any:
            return fake._capture(cuda_graph, stream, capture_error_mode)

        def stream(stream: Any) -> Any:
            return fake._use(stream)

        def synchronize(device: Any = None) -> None:
            fake.log.append(("synchronize all", 0))

        def current_stream(device: Any = None) -> Any:
            return fake.current

        properties = SimpleNamespace(name=DEVICE_NAME, major=9, minor=0, total_memory=80 << 30,
                                     multi_processor_count=132)
        for name, value in {
                "is_available": lambda: True, "Stream": Stream, "CUDAGraph": CUDAGraph,
                "graph": graph, "stream": stream, "synchronize": synchronize,
                "current_stream": current_stream, "current_device": lambda: 0,
                "get_device_name": lambda device=None: DEVICE_NAME,
                "get_device_capability": lambda device=None: (9, 0),
                "get_device_properties": lambda device=None: properties,
                "is_bf16_supported": lambda **kwargs: True}.items():
            monkeypatch.setattr(torch.cuda, name, value)
        _DeviceType.real = torch.device if not isinstance(torch.device, _DeviceType) else \
            _DeviceType.real
        monkeypatch.setattr(torch, "device", _DeviceType("device", (), {}))
        for factory in ("empty", "zeros", "ones"):
            monkeypatch.setattr(torch, factory, _on_host(getattr(torch, factory)))
        hooks = (torch.nn.modules.module.register_module_forward_pre_hook(self._pre_forward),
                 torch.nn.modules.module.register_module_forward_hook(self._forward))
        monkeypatch.setitem(emulated_cuda.CAPTURING, "cuda", self)
        monkeypatch.setattr(self, "_hooks", hooks, raising=False)
        return self

    def remove_hooks(self) -> None:
        for hook in getattr(self, "_hooks", ()):
            hook.remove()

    def _stream(self, handle: int) -> FakeStream:
        return FakeStream(self, handle)

    @contextmanager
    def _use(self, stream: FakeStream | None) -> Iterator[None]:
        before = self.current
        self.current = stream if stream is not None else before
        try:
            yield
        finally:
            self.current = before

    @contextmanager
    def _capture(self, graph: FakeGraph, stream: FakeStream | None,
                 mode: str) -> Iterator[None]:
        if mode not in ("global", "thread_local", "relaxed"):
            raise ValueError(f"unknown capture_error_mode {mode!r}")
        side = stream if stream is not None else self._stream(next(self._handles))
        if side is self.default:
            raise RuntimeError("CUDA error: operation not permitted on the legacy stream while "
                               "capturing (capture needs a side stream)")
        graph.stream = side
        self.capturing = graph
        try:
            with self._use(side):
                yield
        finally:
            self.capturing = None
        graph.seal()

    def launched_on(self, handle: int) -> FakeGraph | None:
        """The graph capturing on stream `handle` (the TensorRT emulator asks), else None."""
        graph = self.capturing
        return graph if graph is not None and graph.stream.cuda_stream == handle else None

    # -- models called under capture ---------------------------------------------------------
    def _pre_forward(self, module: Any, args: Any) -> None:
        if self._depth == 0 and self.capturing is not None and id(module) not in self.warmed:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing "
                               "(emulated: the model's first call, with its lazy set-up, is "
                               "under capture; warm it up on a side stream first)")
        self._depth += 1

    def _forward(self, module: Any, args: Any, output: Any) -> None:
        self._depth -= 1
        if self._depth:
            return
        if self.capturing is not None:
            self.capturing.record_model(module, args, output)
        elif self.current is not self.default:
            self.warmed.add(id(module))


class FakeStream:
    def __init__(self, cuda: CpuCuda, handle: int) -> None:
        self._cuda, self.cuda_stream = cuda, handle

    def wait_stream(self, stream: FakeStream) -> None:
        self._cuda.log.append((f"wait for {stream.cuda_stream:#x}", self.cuda_stream))

    def synchronize(self) -> None:
        self._cuda.log.append(("synchronize", self.cuda_stream))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeStream) and other.cuda_stream == self.cuda_stream

    def __hash__(self) -> int:
        return self.cuda_stream


class FakeGraph:
    def __init__(self, cuda: CpuCuda) -> None:
        self._cuda = cuda
        self.stream: Any = None
        self._work: list[Callable[[], None]] = []
        self._sealed = False

    def record(self, launch: Callable[[], None]) -> None:
        self._work.append(launch)

    def record_model(self, module: Any, args: Any, output: Any) -> None:
        torch = self._cuda.torch

        def launch() -> None:
            with torch.inference_mode():
                output.copy_(module(*args))

        launch.outputs = [output]  # type: ignore[attr-defined]
        self._work.append(launch)

    def seal(self) -> None:
        """After capture: nothing recorded has run yet, as on a GPU (outputs are NaN)."""
        if not self._work:
            raise RuntimeError("CUDA error: the captured graph is empty")
        self._sealed = True
        torch = self._cuda.torch
        for launch in self._work:
            for tensor in getattr(launch, "outputs", ()):
                if tensor.is_floating_point():
                    with torch.inference_mode():
                        tensor.fill_(math.nan)

    def replay(self) -> None:
        if not self._sealed:
            raise RuntimeError("CUDA error: replay of a graph that was not captured")
        self._cuda.log.append(("replay", self.stream.cuda_stream))
        for launch in self._work:
            launch()


def _on_host(factory: Callable[..., Any]) -> Callable[..., Any]:
    def made(*args: Any, **kwargs: Any) -> Any:
        device = kwargs.get("device")
        if device is not None and str(device).startswith("cuda"):
            kwargs["device"] = "cpu"
        kwargs.pop("pin_memory", None)
        return factory(*args, **kwargs)

    return made
