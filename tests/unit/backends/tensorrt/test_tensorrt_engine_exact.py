"""The shared TensorRT engine builder, exactly: the recipe's words and cache key, the flags and
settings an engine is built with (read back from the emulated engine's header), the builder's
error messages and the timing cache's file handling. Mutation testing found these unchecked."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from fakes.tensorrt_emulator import MAGIC, emulated_tensorrt
from tiny_run import tiny_perf_run

from perfsuite.backends.base import BackendOptions, CaseSpec
from perfsuite.backends.tensorrt import engine as tensorrt_engine
from perfsuite.backends.tensorrt import runner as tensorrt_backend
from perfsuite.backends.tensorrt.engine import (
    TENSORRT,
    TENSORRT_RTX,
    EngineBuildError,
    EngineRecipe,
    build_engine,
    check_name_based_api,
    dtype_name,
    onnx_digest,
    plan_recipe,
)
from perfsuite.backends.tensorrt.runner import EngineFromOnnx, TensorRTBackend, capture_graph, device_slug
from perfsuite.errors import BackendUnavailable


@pytest.fixture
def perf(tmp_path):
    yield from tiny_perf_run(tmp_path)


def header(engine: bytes) -> dict:
    """What the emulated builder recorded about a build (flags, pools, level)."""
    assert engine[:len(MAGIC)] == MAGIC
    (length,) = struct.unpack("<I", engine[len(MAGIC):len(MAGIC) + 4])
    return json.loads(engine[len(MAGIC) + 4:len(MAGIC) + 4 + length])


# -- the recipe --------------------------------------------------------------------------------
def test_each_recipe_says_how_its_engine_computes():
    weak = plan_recipe(emulated_tensorrt("10.3.0"), "fp16", tf32=True, workspace_bytes=1 << 20)
    assert weak.describe() == "fp16: fp32 ONNX + BuilderFlag.FP16 (weakly typed); TF32 on"
    strong = plan_recipe(emulated_tensorrt("11.4.0.106"), "fp16", tf32=False,
                         workspace_bytes=1 << 20, compute_capability="SM86")
    assert strong.describe() == "fp16: fp16 ONNX, strongly typed network; TF32 off; built for SM86"
    full = plan_recipe(emulated_tensorrt("8.6.1"), "fp32", tf32=False, workspace_bytes=1 << 20)
    assert full.describe() == "fp32: fp32 ONNX, no reduced-precision flags; TF32 off"


def test_a_recipe_carries_every_setting_into_its_cache_key():
    recipe = plan_recipe(emulated_tensorrt("8.6.1"), "fp16", tf32=True, workspace_bytes=3 << 20,
                         optimization_level=2, compute_capability="SM89")
    assert recipe == EngineRecipe(precision="fp16", onnx_precision="fp32", fp16_flag=True,
                                  strongly_typed=False, explicit_batch=True, tf32=True,
                                  workspace_bytes=3 << 20, optimization_level=2,
                                  compute_capability="SM89")
    assert recipe.key() == {
        "recipe_precision": "fp16", "recipe_onnx_precision": "fp32", "recipe_fp16_flag": "True",
        "recipe_strongly_typed": "False", "recipe_explicit_batch": "True", "recipe_tf32": "True",
        "recipe_workspace_bytes": str(3 << 20), "recipe_optimization_level": "2",
        "recipe_compute_capability": "SM89"}


def test_a_data_type_is_named_whatever_the_binding_prints():
    trt = emulated_tensorrt("10.3.0")
    assert dtype_name(trt.DataType.HALF) == "HALF"

    class Printed:  # a binding whose members have no .name, only a printed form
        def __str__(self) -> str:
            return "DataType.FLOAT"

    assert dtype_name(Printed()) == "FLOAT"


@pytest.mark.parametrize(("module", "version"), [
    (SimpleNamespace(__version__="8.2.1", ICudaEngine=type("ICudaEngine", (), {})), "8.2.1"),
    (SimpleNamespace(), "?"),
])
def test_bindings_before_the_name_based_api_point_at_trtexec(module, version):
    with pytest.raises(BackendUnavailable) as raised:
        check_name_based_api(module)
    assert str(raised.value) == (
        f"TensorRT {version} predates the name-based I/O API (TensorRT 8.5) the tensorrt "
        "backends use; the trtexec backend runs TensorRT 8.2 and later: "
        "--perf-backends=torch,trtexec")
    check_name_based_api(emulated_tensorrt("8.5.2.2"))  # has it: no error


def test_the_digest_covers_the_model_files_and_not_perfsuites_own(tmp_path):
    folder = tmp_path / "entry"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"graph")
    (folder / "weights.bin").write_bytes(b"data")
    onnx = SimpleNamespace(path=folder / "model.onnx")
    before = onnx_digest(onnx)
    (folder / "perfsuite-entry.json").write_text("{}")  # sorts between the two
    assert onnx_digest(onnx) == before
    (folder / "weights.bin").write_bytes(b"DATA")
    assert onnx_digest(onnx) != before


# -- the build ---------------------------------------------------------------------------------
@pytest.mark.parametrize("tf32", [True, False])
def test_an_engine_is_built_with_the_recipes_settings(perf, tmp_path, tf32):
    trt = emulated_tensorrt("10.3.0")
    recipe = plan_recipe(trt, "fp16", tf32=tf32, workspace_bytes=5 << 20, optimization_level=1)
    messages: list[str] = []
    built = header(build_engine(trt, perf.artifacts("tiny").onnx("fp32").path, recipe,
                                tmp_path / "timing.cache", messages.append))
    assert built["flags"] == (["FP16", "TF32"] if tf32 else ["FP16"])
    assert (built["workspace"], built["optimization_level"]) == (5 << 20, 1)
    assert messages[0] == ("building TensorRT fp16 engine from model.onnx "
                           "(Jetson builds take minutes) ...")


def test_an_rtx_build_has_no_jetson_hint_and_no_timing_cache(perf, monkeypatch):
    trt = emulated_tensorrt("11.4.0.106")
    recipe = plan_recipe(trt, "fp16", tf32=False, workspace_bytes=1 << 20)
    locks: list[Path] = []
    monkeypatch.setattr(tensorrt_engine, "file_lock", lambda path: locks.append(path))
    messages: list[str] = []
    built = header(build_engine(trt, perf.artifacts("tiny").onnx("fp16").path, recipe, None,
                                messages.append, TENSORRT_RTX))
    assert built["network_flags"] == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert messages[0] == "building TensorRT-RTX fp16 engine from model.onnx ..."
    assert locks == []


def test_the_timing_cache_is_locked_beside_itself(perf, tmp_path, monkeypatch):
    import contextlib

    locks: list[Path] = []

    @contextlib.contextmanager
    def recording(path):
        locks.append(path)
        yield

    monkeypatch.setattr(tensorrt_engine, "file_lock", recording)
    trt = emulated_tensorrt("10.3.0")
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    build_engine(trt, perf.artifacts("tiny").onnx("fp32").path, recipe,
                 tmp_path / "timing.cache", lambda m: None, TENSORRT)
    assert locks == [tmp_path / "timing.cache.lock"]


def test_parser_and_builder_failures_say_what_failed(perf, tmp_path, monkeypatch):
    trt = emulated_tensorrt("10.3.0")
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    missing = tmp_path / "missing.onnx"
    with pytest.raises(EngineBuildError) as raised:
        build_engine(trt, missing, recipe, None, lambda m: None)
    assert str(raised.value) == f"TensorRT 10.3.0 | cannot parse {missing}: cannot open {missing}"

    class Silent:  # a parser that fails without a message
        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            return False

        num_errors = 0

    with pytest.raises(EngineBuildError) as raised:
        build_engine(SimpleNamespace(**{**vars(trt), "OnnxParser": Silent}), missing, recipe, None,
                     lambda m: None)
    assert str(raised.value) == f"TensorRT 10.3.0 | cannot parse {missing}: no parser message"

    class TwoErrors(Silent):
        num_errors = 2

        def get_error(self, index):
            return SimpleNamespace(desc=lambda: f"error {index}")

    with pytest.raises(EngineBuildError) as raised:
        build_engine(SimpleNamespace(**{**vars(trt), "OnnxParser": TwoErrors}), missing, recipe,
                     None, lambda m: None)
    assert str(raised.value).endswith(": error 0; error 1")

    onnx = perf.artifacts("tiny").onnx("fp32").path
    fp16 = plan_recipe(trt, "fp16", tf32=True, workspace_bytes=1 << 20)
    monkeypatch.setattr(trt.Builder, "build_serialized_network", lambda self, network, config: None)
    with pytest.raises(EngineBuildError) as raised:
        build_engine(trt, onnx, fp16, None, lambda m: None)
    assert str(raised.value) == (
        f"TensorRT 10.3.0 | build_serialized_network returned None for {onnx} "
        "(fp16: fp32 ONNX + BuilderFlag.FP16 (weakly typed); TF32 on); see the TensorRT log above.")


# -- the timing cache --------------------------------------------------------------------------
def test_a_build_without_a_learned_cache_leaves_the_file_alone(tmp_path):
    path = tmp_path / "timing.cache"
    path.write_bytes(b"kept")
    messages: list[str] = []
    tensorrt_engine._save_timing_cache(SimpleNamespace(get_timing_cache=lambda: None), path,
                                       messages.append)
    assert messages == [f"TensorRT kept no timing cache for this build; {path} is unchanged"]
    assert path.read_bytes() == b"kept"


def test_a_cache_that_cannot_be_replaced_is_left_and_said(perf, tmp_path):
    trt = emulated_tensorrt("10.3.0")
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    (tmp_path / "caches").mkdir()
    path = tmp_path / "caches" / "timing.cache"
    path.mkdir()  # a folder stands where the cache file would go
    (path / "mine.txt").write_text("user data")
    messages: list[str] = []
    build_engine(trt, perf.artifacts("tiny").onnx("fp32").path, recipe, path, messages.append)
    assert any(m.startswith(f"timing cache {path} cannot be replaced (") and
               m.endswith("); it is unchanged") for m in messages), messages
    assert (path / "mine.txt").read_text() == "user data"
    left = sorted(p.name for p in path.parent.iterdir())
    assert left in (["timing.cache"], ["timing.cache", "timing.cache.lock"]), left


def test_learned_timings_are_merged_into_the_cache_on_disk(perf, tmp_path):
    trt = emulated_tensorrt("10.3.0")
    path = tmp_path / "timing.cache"
    onnx32 = perf.artifacts("tiny").onnx("fp32").path
    for precision in ("fp32", "fp16"):
        recipe = plan_recipe(trt, precision, tf32=False, workspace_bytes=1 << 20)
        build_engine(trt, onnx32, recipe, path, lambda m: None)
    entries = json.loads(path.read_bytes())["entries"]
    assert [entry["flags"] for entry in entries.values()] == [["FP16"]], \
        "one network: the second build's timings replace the first's under its key"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".timing.cache.")]


# -- the TensorRT backend, its engine cache key and its runner ---------------------------------
def test_tensorrt_availability_says_where_it_comes_from(monkeypatch):
    monkeypatch.setattr(tensorrt_backend, "is_installed", lambda name: name != "tensorrt")
    assert TensorRTBackend().available() == (
        False, "TensorRT is not installed (on a Jetson it comes with JetPack; elsewhere pip "
               "install tensorrt)")
    monkeypatch.setattr(tensorrt_backend, "is_installed", lambda name: name == "tensorrt")
    assert TensorRTBackend().available() == (True, "")


def test_host_buffers_are_refused_for_a_real_tensorrt(perf, monkeypatch):
    trt = emulated_tensorrt("10.3.0")
    monkeypatch.setattr(trt, "__perfsuite_host_memory__", False, raising=False)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    artifacts = perf.artifacts("tiny")
    with pytest.raises(BackendUnavailable) as raised:
        TensorRTBackend(BackendOptions(trt_host_buffers=True)).prepare(
            artifacts.spec, artifacts, "fp32", "cpu")
    assert str(raised.value) == (
        "TensorRT 10.3.0 needs CUDA buffers; [tool.perfsuite.tensorrt] host_buffers = true is "
        "for TensorRT emulators only: remove it, or run with --perf-device cuda")


@pytest.mark.parametrize(("version", "memory"), [("10.3.0", "device_memory_size_v2"),
                                                 ("11.4.0.106", "device_memory_size_v2"),
                                                 ("8.6.1", "device_memory_size")])
def test_a_tensorrt_runner_on_host_buffers_describes_itself(perf, monkeypatch, version, memory):
    trt = emulated_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    artifacts = perf.artifacts("tiny")
    backend = TensorRTBackend(BackendOptions(trt_host_buffers=True, tf32=True, cache=perf.cache,
                                             trt_workspace_bytes=1 << 22))
    try:
        runner = backend.prepare(artifacts.spec, artifacts, "fp16", "cpu")
    except BackendUnavailable as exc:
        pytest.fail(f"unexpectedly unavailable: {exc}")
    assert runner.case == CaseSpec("tiny", "tensorrt", "fp16", "cpu")
    recipe = plan_recipe(trt, "fp16", True, 1 << 22)
    assert runner.describe() == {
        "runtime": f"TensorRT {version}", "recipe": recipe.describe(), "cuda_graph": "off",
        "buffers": "torch host", "activation_bytes": str(getattr(runner._engine, memory))}
    assert runner._host_in.dtype == runner._input.dtype
    assert runner._host_out.dtype == runner._output.dtype
    outputs = runner.run(perf.inputs("tiny")[0])
    assert outputs.dtype == np.float32 and outputs.shape == (1, 10)
    runner.close()


def test_the_engine_key_holds_the_gpu_the_distributions_and_the_board(perf, monkeypatch):
    trt = emulated_tensorrt("10.3.0")
    monkeypatch.setattr(tensorrt_backend, "gpu_facts", lambda: {
        "gpu_name": "NVIDIA H200", "compute_capability": "9.0", "driver": "570.1", "cuda": "12.8"})
    monkeypatch.setattr(tensorrt_backend, "board_release", lambda: {"l4t": "36.4.0"})
    monkeypatch.setattr(tensorrt_backend, "tensorrt_distributions", lambda: "tensorrt-cu12 10.3.0")
    recipe = plan_recipe(trt, "fp32", False, 1 << 20)
    engines = EngineFromOnnx(trt, perf.artifacts("tiny"), recipe, perf.cache, lambda m: None)
    assert engines.key() == {
        "onnx_sha256": onnx_digest(perf.artifacts("tiny").onnx("fp32")), "tensorrt": "10.3.0",
        "tensorrt_distributions": "tensorrt-cu12 10.3.0", "l4t": "36.4.0",
        "gpu_name": "NVIDIA H200", "compute_capability": "9.0", **recipe.key()}


def test_distributions_are_named_normalised_and_sorted(monkeypatch):
    def dist(name, version):
        return SimpleNamespace(metadata={"Name": name}, version=version)

    monkeypatch.setattr(tensorrt_backend.metadata, "distributions", lambda: [
        dist("TensorRT_cu12.libs", "10.3.0"), dist("numpy", "2.0"), dist(None, "1"),
        dist("tensorrt-cu12", "10.3.0")])
    assert tensorrt_backend.tensorrt_distributions() == \
        "tensorrt-cu12 10.3.0, tensorrt-cu12-libs 10.3.0"


def test_the_device_slug_names_the_target_or_the_gpu(monkeypatch):
    trt = emulated_tensorrt("10.3.0")
    assert device_slug(plan_recipe(trt, "fp32", False, 1, compute_capability="SM89")) == "SM89"
    recipe = plan_recipe(trt, "fp32", False, 1)
    monkeypatch.setattr(tensorrt_backend, "gpu_facts", lambda: {})
    assert device_slug(recipe) == "no-gpu"
    monkeypatch.setattr(tensorrt_backend, "gpu_facts", lambda: {
        "gpu_name": "-NVIDIA H200 (141GB)-", "compute_capability": "9.0"})
    assert device_slug(recipe) == "NVIDIA-H200-141GB-cc9.0"


@pytest.mark.parametrize(("version", "family", "opset"), [
    ("8.5.2.2", TENSORRT, 16), ("8.6.1", TENSORRT, None), ("10.3.0", TENSORRT_RTX, None)])
def test_older_parsers_get_an_older_opset(version, family, opset):
    asked = []
    artifacts = SimpleNamespace(onnx=lambda precision, max_opset=None: asked.append(
        (precision, max_opset)) or "exported")
    trt = emulated_tensorrt(version)
    engines = EngineFromOnnx(trt, artifacts, plan_recipe(trt, "fp32", False, 1), None,
                             lambda m: None, family)
    assert engines.onnx() == "exported" and asked == [("fp32", opset)]


def test_an_engine_path_loads_the_engine_unless_told_not_to(perf):
    trt = emulated_tensorrt("10.3.0")
    recipe = plan_recipe(trt, "fp32", False, 1 << 20)
    engines = EngineFromOnnx(trt, perf.artifacts("tiny"), recipe, perf.cache, lambda m: None)
    engines.engine_path(load=False)
    assert engines.loaded is None
    path = engines.engine_path()
    assert engines.loaded is not None and engines.loaded.size_bytes == path.stat().st_size
    assert isinstance(engines.loaded.runtime, trt.Runtime), "the runtime must outlive the engine"


def test_a_capture_on_an_older_torch_passes_no_error_mode():
    captured = []

    class Capture:  # torch.cuda.graph before capture_error_mode existed
        def __init__(self, graph, stream=None):
            captured.append(graph)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    old = SimpleNamespace(cuda=SimpleNamespace(CUDAGraph=object, graph=Capture))
    graph, why = capture_graph(old, SimpleNamespace(synchronize=lambda: None), lambda: None)
    assert (why, graph) == ("", captured[0])


@pytest.mark.parametrize(("error", "why"), [(RuntimeError(""), "RuntimeError"),
                                            (RuntimeError("  first\nsecond"), "first")])
def test_a_refused_capture_is_named_by_its_first_line(error, why):
    class Capture:
        def __init__(self, graph, stream=None, capture_error_mode="global"):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            raise error

    torch_like = SimpleNamespace(cuda=SimpleNamespace(CUDAGraph=object, graph=Capture))
    assert capture_graph(torch_like, SimpleNamespace(synchronize=lambda: None),
                         lambda: None) == (None, why)


def host_runner(perf, monkeypatch, version="10.3.0"):
    trt = emulated_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    artifacts = perf.artifacts("tiny")
    backend = TensorRTBackend(BackendOptions(trt_host_buffers=True, cache=perf.cache))
    return trt, lambda: backend.prepare(artifacts.spec, artifacts, "fp32", "cpu")


def test_a_failed_execution_and_refused_bindings_are_named(perf, monkeypatch):
    trt, prepare = host_runner(perf, monkeypatch)
    runner = prepare()
    runner._context.execute_async_v3 = lambda handle: False
    with pytest.raises(EngineBuildError) as raised:
        runner.run(perf.inputs("tiny")[0])
    assert str(raised.value) == "tiny-tensorrt-fp32 | execute_async_v3 reported failure."
    runner.close()
    shape = tuple(perf.inputs("tiny")[0].shape)
    context = trt.IExecutionContext
    monkeypatch.setattr(context, "set_input_shape", lambda self, name, dims: False)
    with pytest.raises(EngineBuildError) as raised:
        prepare()
    assert str(raised.value) == (f"tiny-tensorrt-fp32 | TensorRT refused the shape {shape} for "
                                 "input 'input' (see TensorRT's log above).")
    monkeypatch.setattr(context, "set_input_shape", lambda self, name, dims: True)
    monkeypatch.setattr(context, "set_tensor_address", lambda self, name, address: False)
    with pytest.raises(EngineBuildError) as raised:
        prepare()
    assert str(raised.value) == ("tiny-tensorrt-fp32 | TensorRT refused the address of tensor "
                                 "'input' (see TensorRT's log above).")
