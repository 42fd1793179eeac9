"""The CUDA-graph backend and the TensorRT runner's stream and graph branches, on a CPU: torch.cuda
stands in through fakes/cpu_cuda.py (typed against the real torch.cuda), TensorRT through the
emulator. The real-GPU tests of the same code stay in test_tensorrt_defects.py and the suite."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fakes.cpu_cuda import DEVICE_NAME, CpuCuda
from fakes.tensorrt_emulator import emulated_tensorrt
from tiny_models import TINY_CONFIG

from perfsuite.backends import BACKEND_TYPES
from perfsuite.config.settings import load_config
from perfsuite.machine import device as device_checks
from perfsuite.run.workshop import PerfRun

CUDA_CONFIG = TINY_CONFIG.replace('backends = ["torch", "onnxruntime"]',
                                  'backends = ["torch", "torch-cudagraph", "tensorrt"]') \
    .replace('device = "cpu"', 'device = "cuda"')


@pytest.fixture
def cuda(monkeypatch):
    fake = CpuCuda(torch).install(monkeypatch)
    device_checks._torch_device_problem.cache_clear()
    yield fake
    fake.remove_hooks()
    device_checks._torch_device_problem.cache_clear()


def make_perf(root: Path, extra: str = "", top: str = "") -> PerfRun:
    config = CUDA_CONFIG.replace('device = "cuda"\n', f'device = "cuda"\n{top}\n')
    (root / "pyproject.toml").write_text(config + extra)
    env = {"PERFSUITE_CACHE_DIR": str(root / "cache")}
    return PerfRun(load_config(root, list(BACKEND_TYPES), environ=env))


def eager(perf: PerfRun, inputs: np.ndarray, dtype=torch.float32) -> np.ndarray:
    model = perf.artifacts("tiny").torch_model().to(dtype).eval()
    with torch.inference_mode():
        return model(torch.from_numpy(inputs).to(dtype)).float().numpy()


def two_inputs(perf: PerfRun) -> list[np.ndarray]:
    first = perf.inputs("tiny")[0]
    return [first, np.ascontiguousarray(first[..., ::-1] * 2.0 + 0.5, dtype=np.float32)]


# -- the stand-in is typed against torch.cuda ------------------------------------------------
@pytest.mark.parametrize("name", ["Stream", "CUDAGraph", "graph", "stream", "synchronize",
                                  "current_stream", "get_device_name", "get_device_capability",
                                  "get_device_properties", "is_bf16_supported"])
def test_each_stand_in_takes_the_real_signature(monkeypatch, name):
    real = getattr(torch.cuda, name)
    fake = getattr(CpuCuda(torch).install(monkeypatch).torch.cuda, name)

    def parameters(thing):
        target = thing.__new__ if inspect.isclass(thing) and "__new__" in vars(thing) else \
            thing.__init__ if inspect.isclass(thing) else thing
        return {p.name: p for p in inspect.signature(target).parameters.values()
                if p.name not in ("self", "cls") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}

    real_parameters, fake_parameters = parameters(real), parameters(fake)
    assert set(fake_parameters) <= set(real_parameters), (name, fake_parameters, real_parameters)
    required = {n for n, p in real_parameters.items() if p.default is p.empty}
    assert required <= set(fake_parameters), (name, required)
    for both in set(fake_parameters) & set(real_parameters):
        real_default = real_parameters[both].default
        assert real_default is inspect.Parameter.empty or \
            fake_parameters[both].default == real_default, (name, both)


def test_captured_work_runs_only_when_replayed(cuda):
    model = torch.nn.Linear(4, 2).eval()
    static_in = torch.ones(1, 4)
    side = torch.cuda.Stream()
    with torch.inference_mode():
        with torch.cuda.stream(side):
            model(static_in)  # warm-up
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = model(static_in)
    assert torch.isnan(static_out).all(), "captured, not run"
    static_in.copy_(torch.full((1, 4), 2.0))
    graph.replay()
    assert torch.allclose(static_out, model(torch.full((1, 4), 2.0)))


def test_a_model_first_called_under_capture_fails_as_cuda_does(cuda):
    model = torch.nn.Linear(4, 2).eval()
    with pytest.raises(RuntimeError, match="operation not permitted when stream is capturing"):
        with torch.inference_mode(), torch.cuda.graph(torch.cuda.CUDAGraph()):
            model(torch.ones(1, 4))
    with torch.inference_mode():
        model(torch.ones(1, 4))  # on the default stream: not a warm-up torch accepts
    with pytest.raises(RuntimeError, match="operation not permitted"):
        with torch.inference_mode(), torch.cuda.graph(torch.cuda.CUDAGraph()):
            model(torch.ones(1, 4))


# -- torch CUDA graph backend ----------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_graph_runner_replays_each_new_input(cuda, tmp_path, precision):
    perf = make_perf(tmp_path)
    runner = perf.runner(perf.case("tiny", "torch-cudagraph", precision))
    dtype = torch.float32 if precision == "fp32" else torch.float16
    tolerance = 1e-5 if precision == "fp32" else 2e-2
    for inputs in two_inputs(perf) * 2:
        assert np.allclose(runner.run(inputs), eager(perf, inputs, dtype), atol=tolerance)
    assert [event for event, _ in cuda.log].count("replay") == 4
    details = runner.describe()
    assert details["cuda_graph"] == "on" and details["dtype"] == str(dtype)
    assert details["device"] == "cuda" and "CUDA graph replay" in details["runtime"]
    perf.close()


def test_cuda_graph_device_enqueue_copies_then_replays(cuda, tmp_path):
    perf = make_perf(tmp_path)
    runner = perf.runner(perf.case("tiny", "torch-cudagraph", "fp32"))
    for inputs in two_inputs(perf):
        launch = runner.device_enqueue(inputs)
        before = len(cuda.log)
        launch()
        assert cuda.log[before:] == [("replay", cuda.log[before][1])]
        assert np.allclose(runner._static_out.numpy(), eager(perf, inputs), atol=1e-5)
    perf.close()


def test_cuda_graph_capture_follows_warm_up_on_a_side_stream(cuda, tmp_path):
    perf = make_perf(tmp_path)
    runner = perf.runner(perf.case("tiny", "torch-cudagraph", "fp32"))
    graph = runner._graph
    assert graph.stream is not cuda.default and len(cuda.warmed) == 1
    assert ("synchronize all", 0) in cuda.log, "capture ends with a device synchronisation"
    runner.close()
    with pytest.raises(Exception, match="closed"):
        runner.run(perf.inputs("tiny")[0])
    perf.close()


def test_cuda_graph_channels_last_and_its_refusal_off_cuda(cuda, tmp_path):
    perf = make_perf(tmp_path, top="channels_last = true")
    runner = perf.runner(perf.case("tiny", "torch-cudagraph", "fp32"))
    assert runner.describe()["memory_format"] == "channels_last"
    assert runner._static_in.is_contiguous(memory_format=torch.channels_last)
    inputs = perf.inputs("tiny")[0]
    assert np.allclose(runner.run(inputs), eager(perf, inputs), atol=1e-5)
    backend = BACKEND_TYPES["torch-cudagraph"]()
    with pytest.raises(Exception, match="CUDA graphs need a CUDA device; this run's device is cpu"):
        backend.prepare(perf.artifacts("tiny").spec, perf.artifacts("tiny"), "fp32", "cpu")
    perf.close()


# -- TensorRT runner on a stream, with and without a graph ------------------------------------
@pytest.mark.parametrize("cuda_graph", [True, False])
def test_tensorrt_runner_orders_its_stream(cuda, tmp_path, monkeypatch, cuda_graph):
    monkeypatch.setitem(sys.modules, "tensorrt", emulated_tensorrt("10.3.0", device=DEVICE_NAME))
    extra = f"\n[tool.perfsuite.tensorrt]\ncuda_graph = {str(cuda_graph).lower()}\n"
    perf = make_perf(tmp_path, extra)
    runner = perf.runner(perf.case("tiny", "tensorrt", "fp32"))
    assert runner.describe()["cuda_graph"] == ("on" if cuda_graph else "off")
    assert runner.describe()["buffers"] == "torch cuda"
    stream = runner._stream.cuda_stream
    assert stream != 0, "a dedicated stream, not the default one"
    launch = "replay" if cuda_graph else "execute"
    for inputs in two_inputs(perf):
        before = len(cuda.log)
        outputs = runner.run(inputs)
        assert cuda.log[before:] == ([("replay", stream), ("execute", stream)] if cuda_graph
                                     else [("execute", stream)]) + [("synchronize", stream)]
        assert np.allclose(outputs, eager(perf, inputs), rtol=1e-4, atol=1e-5)
        enqueue = runner.device_enqueue(inputs)
        before = len(cuda.log)
        enqueue()
        events = cuda.log[before:]
        assert events[0] == ("wait for 0x0", stream), "our stream waits for the event stream"
        assert events[1] == (launch, stream)
        assert events[-1] == (f"wait for {stream:#x}", 0), "the event stream waits for ours"
    perf.close()


def test_tensorrt_capture_without_a_first_run_falls_back(cuda, tmp_path, monkeypatch):
    """TensorRT asks for one enqueue before capture; the runner makes it. Skipped, the capture
    fails and the runner says so and runs with plain launches."""
    monkeypatch.setitem(sys.modules, "tensorrt", emulated_tensorrt("10.3.0", device=DEVICE_NAME))
    from perfsuite.backends.tensorrt import runner as tensorrt_backend

    monkeypatch.setattr(tensorrt_backend.TensorRTRunner, "_capture", lambda self:
                        tensorrt_backend.capture_graph(self._torch, self._stream, self._execute))
    perf = make_perf(tmp_path, "\n[tool.perfsuite.tensorrt]\ncuda_graph = true\n")
    messages: list[str] = []
    perf.progress = messages.append
    runner = perf.runner(perf.case("tiny", "tensorrt", "fp32"))
    described = runner.describe()
    assert described["cuda_graph"] == "off (capture failed)"
    why = described["cuda_graph_refused"]
    assert why.startswith("CUDA error: operation not permitted when stream is capturing")
    assert f"tiny-tensorrt-fp32: CUDA graph capture failed ({why}); running with plain " \
           "launches" in messages
    inputs = perf.inputs("tiny")[0]
    assert np.allclose(runner.run(inputs), eager(perf, inputs), rtol=1e-4, atol=1e-5)
    perf.close()
