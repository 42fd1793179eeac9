"""The TensorRT backend with pycuda buffers on a CPU: the emulated TensorRT and a pycuda driver on
host memory (fakes/pycuda_driver.py) stand in, so the backend's choices (recipe, device, stream,
buffers, its refusals and their words) fail a test here when they break. Teardown order is in
test_tensorrt_defects.py."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from fakes.pycuda_driver import FakePycudaDriver
from fakes.tensorrt_emulator import emulated_tensorrt
from tiny_run import tiny_perf_run

from perfsuite.backends.base import BackendOptions, CaseSpec
from perfsuite.backends.tensorrt import pycuda as tensorrt_pycuda
from perfsuite.backends.tensorrt.engine import EngineBuildError, plan_recipe
from perfsuite.backends.tensorrt.pycuda import TensorRTPycudaBackend
from perfsuite.errors import BackendUnavailable
from perfsuite.run.workshop import PerfRun

BUFFERS = "pycuda page-locked host + mem_alloc (primary context)"


@pytest.fixture
def perf(tmp_path):
    yield from tiny_perf_run(tmp_path)


@pytest.fixture
def fakes(monkeypatch):
    """The emulated TensorRT 10.3 and a fake pycuda driver, torch seeing no CUDA device."""
    trt, driver = emulated_tensorrt("10.3.0"), FakePycudaDriver()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", SimpleNamespace(driver=driver))
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return SimpleNamespace(trt=trt, driver=driver)


def backend(perf: PerfRun, messages: list[str], **options) -> TensorRTPycudaBackend:
    return TensorRTPycudaBackend(BackendOptions(cache=perf.cache, progress=messages.append,
                                                **options))


def prepare(perf: PerfRun, chosen: TensorRTPycudaBackend, precision: str):
    artifacts = perf.artifacts("tiny")
    try:
        return chosen.prepare(artifacts.spec, artifacts, precision, "cuda")
    except BackendUnavailable as exc:  # the plugin would turn it into a skip
        pytest.fail(f"unexpectedly unavailable: {exc}")


def ort_outputs(perf: PerfRun, precision: str, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime

    onnx = perf.artifacts("tiny").onnx(precision)
    session = onnxruntime.InferenceSession(str(onnx.path), providers=["CPUExecutionProvider"])
    dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
    feed = {session.get_inputs()[0].name: inputs.astype(dtype)}
    return np.asarray(session.run(None, feed)[0], dtype=np.float32)


def test_the_backend_needs_tensorrt_then_pycuda(monkeypatch):
    installed = {"tensorrt", "pycuda"}
    monkeypatch.setattr(tensorrt_pycuda, "is_installed", lambda name: name in installed)
    assert TensorRTPycudaBackend().available() == (True, "")
    installed.discard("pycuda")
    assert TensorRTPycudaBackend().available() == (
        False, "pycuda is not installed (pip install 'perfsuite[trt]')")
    installed.discard("tensorrt")
    assert TensorRTPycudaBackend().available() == (
        False, "TensorRT is not installed (on a Jetson it comes with JetPack)")


def test_a_cpu_run_is_refused_by_name(perf):
    artifacts = perf.artifacts("tiny")
    with pytest.raises(BackendUnavailable) as raised:
        TensorRTPycudaBackend().prepare(artifacts.spec, artifacts, "fp32", "cpu")
    assert str(raised.value) == "pycuda needs a CUDA device; this run's device is cpu"


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_an_engine_runs_through_page_locked_buffers_on_the_runners_stream(perf, fakes, precision):
    messages: list[str] = []
    chosen = backend(perf, messages, tf32=True, trt_workspace_bytes=64 << 20)
    runner = prepare(perf, chosen, precision)
    recipe = plan_recipe(fakes.trt, precision, True, 64 << 20)
    assert runner.case == CaseSpec("tiny", "tensorrt-pycuda", precision, "cuda")
    assert runner.describe() == {"runtime": "TensorRT 10.3.0", "recipe": recipe.describe(),
                                 "buffers": BUFFERS}
    (engine,) = perf.cache.root.rglob("model.engine")
    assert runner.artifact_bytes == engine.stat().st_size
    assert any(engine.parent.name in m or "building" in m for m in messages), messages
    assert fakes.driver.devices == [0], "torch sees no device: pycuda takes device 0"
    inputs = perf.inputs("tiny")[0]
    outputs = runner.run(inputs)
    assert outputs.dtype == np.float32 and outputs.shape == (1, 10)
    # the emulator runs the engine's ONNX in onnxruntime: fp32 gives the same numbers bit for
    # bit; an FP16-flag engine also rounds weights and I/O through fp16
    expected = ort_outputs(perf, "fp32", inputs)
    if recipe.fp16_flag:
        np.testing.assert_allclose(outputs, expected, atol=2e-2)
        assert not np.array_equal(outputs, expected), "an fp16 engine computed in fp32"
    else:
        np.testing.assert_array_equal(outputs, ort_outputs(perf, precision, inputs))
    stream = id(runner._stream)
    assert fakes.driver.copies == [("htod", stream), ("dtoh", stream)]
    runner.close()


def test_a_failed_execution_is_named_with_its_case(perf, fakes):
    runner = prepare(perf, backend(perf, []), "fp32")
    runner._context.execute_async_v3 = lambda handle: False
    with pytest.raises(EngineBuildError) as raised:
        runner.run(perf.inputs("tiny")[0])
    assert str(raised.value) == "tiny-tensorrt-pycuda-fp32 | execute_async_v3 reported failure."
    assert fakes.driver.stack == [], "the context is popped after a failure too"
    runner.close()


def test_a_setup_that_fails_before_its_stream_raises_its_own_error(perf, fakes, monkeypatch):
    prepare(perf, backend(perf, []), "fp32").close()  # the engine is cached now
    engine_type = fakes.trt.ICudaEngine

    def refuse(self):
        raise RuntimeError("out of memory for an execution context")

    monkeypatch.setattr(engine_type, "create_execution_context", refuse)
    with pytest.raises(RuntimeError, match=r"^out of memory for an execution context$"):
        prepare(perf, backend(perf, []), "fp32")
    assert fakes.driver.stack == []


def test_release_waits_for_the_stream_before_freeing(perf, fakes):
    runner = prepare(perf, backend(perf, []), "fp32")
    runner.run(perf.inputs("tiny")[0])
    start = len(fakes.driver.events)
    runner.close()
    events = [event for event, _ in fakes.driver.events[start:]]
    assert events.index("stream synchronized") < events.index("device freed")
