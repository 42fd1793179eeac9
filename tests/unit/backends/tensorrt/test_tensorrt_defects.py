"""TensorRT defects a review against NVIDIA's sources found, each shown by the emulator: timing
caches, the global logger, engine cache keys, host buffers, CUDA graph capture, pycuda teardown,
enum values and stream order."""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from fakes.pycuda_driver import FakePycudaDriver
from fakes.tensorrt_emulator import BEHAVIOUR, emulated_tensorrt, versions
from tiny_models import TINY_CONFIG

from perfsuite.backends import BACKEND_TYPES, CaseSpec
from perfsuite.backends.tensorrt import runner as tensorrt_backend
from perfsuite.backends.tensorrt.engine import build_engine, plan_recipe
from perfsuite.backends.tensorrt.pycuda import PycudaRunner
from perfsuite.backends.tensorrt.runner import EngineFromOnnx
from perfsuite.config.settings import load_config
from perfsuite.errors import BackendUnavailable
from perfsuite.run.workshop import PerfRun

TRT_CONFIG = TINY_CONFIG.replace('backends = ["torch", "onnxruntime"]',
                                 'backends = ["torch", "tensorrt"]') + \
    "\n[tool.perfsuite.tensorrt]\nhost_buffers = true\n"


def make_perf(root: Path, config: str = TRT_CONFIG) -> PerfRun:
    (root / "pyproject.toml").write_text(config)
    env = {"PERFSUITE_CACHE_DIR": str(root / "cache")}
    return PerfRun(load_config(root, list(BACKEND_TYPES), environ=env))


def build(trt, perf: PerfRun, timing_cache: Path, messages: list[str] | None = None) -> bytes:
    onnx = perf.artifacts("tiny").onnx("fp32")
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    sink = messages.append if messages is not None else (lambda m: None)
    return build_engine(trt, onnx.path, recipe, timing_cache, sink)


# -- timing cache --------------------------------------------------------------------------
def test_a_timing_cache_from_another_gpu_is_replaced_not_fatal(tmp_path):
    perf, cache = make_perf(tmp_path), tmp_path / "timing.cache"
    build(emulated_tensorrt("10.3.0", device="GPU A"), perf, cache)
    assert json.loads(cache.read_bytes())["device"] == "GPU A"
    messages: list[str] = []
    engine = build(emulated_tensorrt("10.3.0", device="GPU B"), perf, cache, messages)
    assert engine  # the foreign cache was refused (set_timing_cache -> False): no TypeError
    assert any("another GPU" in m for m in messages)
    assert json.loads(cache.read_bytes())["device"] == "GPU B"


def test_a_damaged_or_unreadable_timing_cache_does_not_fail_builds(tmp_path):
    perf, cache = make_perf(tmp_path), tmp_path / "timing.cache"
    trt = emulated_tensorrt("8.6.1")
    cache.write_bytes(b"\x00garbage")
    messages: list[str] = []
    assert build(trt, perf, cache, messages)
    assert any("damaged" in m for m in messages)
    assert json.loads(cache.read_bytes())["device"] == trt._device  # replaced with a good one
    folder = tmp_path / "folder.cache"
    folder.mkdir()
    (folder / "keep").write_text("mine")
    messages.clear()
    assert build(trt, perf, folder, messages)
    assert any("cannot be read" in m for m in messages)
    assert (folder / "keep").read_text() == "mine", "nothing of the user's is replaced"


def test_timing_cache_files_are_per_gpu(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", emulated_tensorrt("10.3.0"))
    names = set()
    for gpu in ("NVIDIA A100", "NVIDIA H100"):
        monkeypatch.setattr(tensorrt_backend, "gpu_facts", lambda gpu=gpu: {
            "gpu_name": gpu, "compute_capability": "8.0", "cuda": "12.1"})
        perf = make_perf(tmp_path)
        perf.runner(perf.case("tiny", "tensorrt", "fp32"))
        names |= {p.name for p in (tmp_path / "cache" / "tensorrt").glob("timing-*.cache")}
    assert names == {"timing-10.3.0-NVIDIA-A100-cc8.0.cache", "timing-10.3.0-NVIDIA-H100-cc8.0.cache"}


# -- one logger, one deserialization, the engine key -----------------------------------------
@pytest.mark.parametrize("version", versions())
def test_one_logger_for_every_builder_and_runtime(tmp_path, monkeypatch, version):
    trt = emulated_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    perf = make_perf(tmp_path)
    for precision in ("fp32", "fp16"):
        perf.runner(perf.case("tiny", "tensorrt", precision))
    assert trt._logger is not None
    assert trt._logger_warnings == []


def test_a_cache_hit_deserializes_the_engine_once(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", emulated_tensorrt("10.16.1.11"))
    make_perf(tmp_path).runner(CaseSpec("tiny", "tensorrt", "fp32", "cpu"))
    trt = emulated_tensorrt("10.16.1.11")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    runner = make_perf(tmp_path).runner(CaseSpec("tiny", "tensorrt", "fp32", "cpu"))
    assert runner.run(np.zeros(runner.input_shape, np.float32)).shape == (1, 10)
    assert trt._deserializations == 1


def dist_info(root: Path, name: str, version: str) -> None:
    folder = root / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_engine_key_tells_tensorrt_builds_apart_not_torchs_cuda(tmp_path, monkeypatch):
    trt = emulated_tensorrt("10.3.0")
    perf = make_perf(tmp_path)
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    keys = []
    for build_name, torch_cuda in (("tensorrt-cu12", "12.1"), ("tensorrt-cu13", "12.1"),
                                   ("tensorrt-cu13", "12.4")):
        site = tmp_path / f"site-{build_name}-{torch_cuda}"
        dist_info(site, build_name, "10.3.0")
        monkeypatch.setattr(sys, "path", [str(site), *sys.path])
        monkeypatch.setattr(tensorrt_backend, "gpu_facts", lambda cuda=torch_cuda: {
            "gpu_name": "GPU", "compute_capability": "8.7", "cuda": cuda})
        keys.append(EngineFromOnnx(trt, perf.artifacts("tiny"), recipe, perf.cache,
                                   lambda m: None).key())
        monkeypatch.undo()
    assert keys[0] != keys[1], "tensorrt-cu12 and -cu13 engines share __version__, not a key"
    assert keys[1] == keys[2], "torch's CUDA version does not touch TensorRT's engines"


# -- host buffers, CUDA graph capture --------------------------------------------------------
def test_host_buffers_are_refused_for_a_real_tensorrt(tmp_path, monkeypatch):
    real_like = emulated_tensorrt("10.3.0")
    del real_like.__perfsuite_host_memory__  # a real TensorRT cannot take host pointers
    monkeypatch.setitem(sys.modules, "tensorrt", real_like)
    perf = make_perf(tmp_path)
    with pytest.raises(BackendUnavailable, match="host_buffers = true is for TensorRT emulators"):
        perf.runner(perf.case("tiny", "tensorrt", "fp32"))


class FakeGraphTorch:
    """torch.cuda's graph API, whose capture fails as CUDA's does for a forbidden operation."""

    def __init__(self, refuse: bool) -> None:
        self.refuse, self.modes, self.synchronized = refuse, [], 0
        fake = self

        class Graph:
            pass

        class Capture:
            def __init__(self, graph, stream=None, capture_error_mode="global"):
                fake.modes.append(capture_error_mode)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                if fake.refuse:
                    raise RuntimeError("CUDA error: operation not permitted when stream is "
                                       "capturing\nmore detail")
                return False

        self.cuda = SimpleNamespace(CUDAGraph=Graph, graph=Capture)

    def synchronize(self) -> None:
        self.synchronized += 1


def test_cuda_graph_capture_falls_back_to_plain_launches():
    refused = FakeGraphTorch(refuse=True)
    capture_graph = tensorrt_backend.capture_graph
    graph, why = capture_graph(refused, refused, lambda: None)
    assert graph is None and why == "CUDA error: operation not permitted when stream is capturing"
    assert refused.synchronized == 1 and refused.modes == ["thread_local"]
    accepted = FakeGraphTorch(refuse=False)
    graph, why = capture_graph(accepted, accepted, lambda: None)
    assert graph is not None and why == ""


# -- pycuda teardown ---------------------------------------------------------------------------
def pycuda_runner(tmp_path, monkeypatch, driver: FakePycudaDriver):
    trt = emulated_tensorrt("10.3.0")
    monkeypatch.setitem(sys.modules, "pycuda", SimpleNamespace(driver=driver))
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    perf = make_perf(tmp_path)
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    artifacts = perf.artifacts("tiny")
    loaded = EngineFromOnnx(trt, artifacts, recipe, perf.cache, lambda m: None)()
    case = CaseSpec("tiny", "tensorrt-pycuda", "fp32", "cuda")
    return lambda: PycudaRunner(case, artifacts.spec, trt, loaded, recipe)


def test_pycuda_frees_everything_before_detaching_the_context(tmp_path, monkeypatch):
    driver = FakePycudaDriver()
    runner = pycuda_runner(tmp_path, monkeypatch, driver)()
    assert runner.run(np.ones(runner.input_shape, np.float32)).shape == (1, 10)
    runner.close()
    events = [event for event, _ in driver.events]
    detach = events.index("detach")
    for freed in ("device freed", "host freed", "stream destroyed"):
        assert freed in events[:detach], f"{freed} after the context was detached: {events}"
    assert all(current for event, current in driver.events
               if event in ("device freed", "host freed", "stream destroyed"))
    assert driver.stack == []


def test_pycuda_failed_setup_gives_back_the_context(tmp_path, monkeypatch):
    driver = FakePycudaDriver(fail_alloc_after=1)
    with pytest.raises(MemoryError):
        pycuda_runner(tmp_path, monkeypatch, driver)()
    events = [event for event, _ in driver.events]
    assert events[-2:] == ["pop", "detach"] and driver.stack == []
    assert "device freed" in events and "host freed" in events


def test_pycuda_uses_torchs_current_device(tmp_path, monkeypatch):
    driver = FakePycudaDriver()
    make_runner = pycuda_runner(tmp_path, monkeypatch, driver)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    make_runner().close()
    assert driver.devices == [1]


# -- emulator fidelity -------------------------------------------------------------------------
@pytest.mark.parametrize("version", versions())
def test_enums_carry_the_real_values_and_are_not_ints(version):
    trt = emulated_tensorrt(version)
    api = json.loads((Path(__file__).resolve().parents[3] / "data" / "trt_api" /
                      f"{version}.json").read_text())
    assert int(trt.DataType.HALF) == api["__enum_values__"]["DataType"]["HALF"] == 1
    assert int(trt.DataType.FLOAT) == 0 and not isinstance(trt.DataType.HALF, int)
    assert trt.float16 is trt.DataType.HALF and trt.float32 is trt.DataType.FLOAT
    assert trt.DataType.HALF.itemsize == 2 and trt.nptype(trt.DataType.HALF) is np.float16
    assert trt.volume((1, 3, 2)) == 6
    creation = trt.NetworkDefinitionCreationFlag
    for member, value in api["__enum_values__"]["NetworkDefinitionCreationFlag"].items():
        assert int(creation[member]) == value


@pytest.mark.parametrize("version", versions())
def test_network_flags_reach_the_builder_by_their_real_bits(tmp_path, monkeypatch, version):
    trt = emulated_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    perf = make_perf(tmp_path)
    perf.runner(perf.case("tiny", "tensorrt", "fp16"))
    (engine,) = (tmp_path / "cache" / "tensorrt").glob("tiny-fp16-*/model.engine")
    header = trt.Runtime(trt._logger).deserialize_cuda_engine(engine.read_bytes())._header
    recipe = plan_recipe(trt, "fp16", tf32=False, workspace_bytes=1)
    expected = 0
    for wanted, member in ((recipe.explicit_batch, "EXPLICIT_BATCH"),
                           (recipe.strongly_typed, "STRONGLY_TYPED")):
        if wanted:
            expected |= 1 << int(trt.NetworkDefinitionCreationFlag[member])
    assert header["network_flags"] == expected


def test_emulated_tensorrt_refuses_what_real_tensorrt_refuses(tmp_path):
    trt = emulated_tensorrt("10.3.0", device="GPU A")
    perf = make_perf(tmp_path)
    builder = trt.Builder(trt.Logger())
    creation = trt.NetworkDefinitionCreationFlag
    network = builder.create_network(1 << int(creation.STRONGLY_TYPED))
    trt.OnnxParser(network, trt.Logger()).parse_from_file(str(perf.artifacts("tiny")
                                                              .onnx("fp32").path))
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    assert builder.build_serialized_network(network, config) is None, "FP16 + STRONGLY_TYPED"
    assert builder.create_network(1 << 7) is None, "unknown network flag bits"
    engine = build(trt, perf, tmp_path / "t.cache")
    other_gpu = emulated_tensorrt("10.3.0", device="GPU B")
    assert other_gpu.Runtime(other_gpu.Logger()).deserialize_cuda_engine(engine) is None
    assert trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine) is not None
    assert trt._logger_warnings, "a second logger is warned about"


def test_an_op_the_parser_does_not_know_fails_the_parse_with_its_message(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from perfsuite.backends.tensorrt.engine import EngineBuildError

    graph = helper.make_graph(
        [helper.make_node("FancyActivation", ["x"], ["y"], domain="com.example")], "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    trt = emulated_tensorrt("10.3.0")
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    with pytest.raises(EngineBuildError, match="No importer registered for op: FancyActivation"):
        build_engine(trt, path, recipe, tmp_path / "t.cache", lambda m: None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="stream order needs a CUDA device")
def test_emulated_execution_is_stream_ordered(tmp_path, monkeypatch):
    trt = emulated_tensorrt("10.3.0")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    perf = make_perf(tmp_path)
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    loaded = EngineFromOnnx(trt, perf.artifacts("tiny"), recipe, perf.cache, lambda m: None)()
    context = loaded.engine.create_execution_context()
    x = torch.from_numpy(perf.inputs("tiny")[0]).cuda()
    out = torch.zeros((1, 10), device="cuda")
    context.set_tensor_address(loaded.engine.get_tensor_name(0), x.data_ptr())
    context.set_tensor_address(loaded.engine.get_tensor_name(1), out.data_ptr())
    stream = torch.cuda.Stream()
    assert context.execute_async_v3(stream.cuda_stream)
    assert not out.cpu().any(), "read before the stream is synchronised: the old contents"
    stream.synchronize()
    assert out.cpu().abs().sum() > 0, "after synchronising: the outputs"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_an_engine_that_cannot_be_captured_runs_with_plain_launches(tmp_path, monkeypatch):
    # The emulated engine synchronises its stream inside execute_async_v3, which CUDA forbids
    # during stream capture: the capture fails as it does for such operations in a real engine.
    monkeypatch.setitem(sys.modules, "tensorrt", emulated_tensorrt("10.3.0"))
    config = TRT_CONFIG.replace("host_buffers = true", "cuda_graph = true")
    perf = make_perf(tmp_path, config.replace('device = "cpu"', 'device = "cuda"'))
    case = perf.case("tiny", "tensorrt", "fp32")
    messages: list[str] = []
    perf.progress = messages.append
    details = perf.runner(case).describe()
    assert details["cuda_graph"] == "off (capture failed)", details
    assert any("CUDA graph capture failed" in m and "plain launches" in m for m in messages)
    assert details["cuda_graph_refused"]  # CUDA's own words, first line
    reference = perf.outputs(perf.case("tiny", "torch", "fp32"))
    assert np.allclose(perf.outputs(case), reference, rtol=1e-3, atol=1e-4)


def _overloads(doc: str) -> list[list[tuple[str, bool]]]:
    """(name, has a default) of each parameter, self left out, for each overload in a pybind11
    signature docstring."""
    found = []
    for line in doc.splitlines():
        match = re.match(r"^(?:\d+\. )?\w+\((.*)\) ->", line.strip())
        if match is None:
            continue
        parameters, depth, current = [], 0, ""
        for char in match.group(1) + ",":
            depth += 1 if char in "[(<" else -1 if char in "])>" else 0
            if char == "," and depth == 0:
                parameters.append((current.split(":")[0].strip(), "=" in current))
                current = ""
            else:
                current += char
        found.append([p for p in parameters if p[0] and p[0] != "self"])
    return found


def _takes(ours: list[str], overload: list[tuple[str, bool]]) -> bool:
    """The emulator's parameters are the overload's, or its leading ones with the rest optional."""
    names = [name for name, _ in overload]
    return names[:len(ours)] == ours and all(default for _, default in overload[len(ours):])


@pytest.mark.parametrize("version", versions())
def test_the_emulator_keeps_each_versions_signatures(version):
    api = json.loads((Path(__file__).resolve().parents[3] / "data" / "trt_api" /
                      f"{version}.json").read_text())
    checked = 0
    for name, behaviour in BEHAVIOUR.items():
        real = api["__signatures__"].get(name, {})
        for member, value in vars(behaviour).items():
            if member not in real or member.startswith("_"):  # constructors are not public
                continue
            kind = real[member]["kind"]
            if isinstance(value, property):
                assert kind == "property", f"{version} {name}.{member} is a {kind}"
            elif callable(value):
                assert kind == "method", f"{version} {name}.{member} is a {kind}"
                ours = [p for p in inspect.signature(value).parameters if p != "self"]
                assert any(_takes(ours, o) for o in _overloads(real[member]["doc"])), (
                    f"{version} {name}.{member}{tuple(ours)}: {real[member]['doc']}")
            checked += 1
    assert checked >= 20, checked
