"""The TensorRT builder and runners under every emulated TensorRT version."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from fakes.tensorrt_emulator import emulated_tensorrt, versions
from tiny_models import TINY_CONFIG

from perfsuite.backends import BACKEND_TYPES
from perfsuite.backends.tensorrt.engine import (
    EngineBuildError,
    build_engine,
    plan_recipe,
)
from perfsuite.config.settings import load_config
from perfsuite.measure.agreement import compare
from perfsuite.run.workshop import PerfRun

VERSIONS = versions()
TRT_CONFIG = TINY_CONFIG.replace('backends = ["torch", "onnxruntime"]',
                                 'backends = ["torch", "tensorrt"]') + \
    "\n[tool.perfsuite.tensorrt]\nhost_buffers = true\n"


@pytest.fixture(params=VERSIONS)
def trt(request, monkeypatch):
    module = emulated_tensorrt(request.param)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    return module


def make_perf(root: Path, cache: Path) -> PerfRun:
    (root / "pyproject.toml").write_text(TRT_CONFIG)
    env = {"PERFSUITE_CACHE_DIR": str(cache)}
    return PerfRun(load_config(root, list(BACKEND_TYPES), environ=env))


def test_snapshots_cover_the_required_versions():
    assert {"8.6.1", "10.3.0", "11.4.0.106"} <= set(VERSIONS) and len(VERSIONS) >= 4


@pytest.mark.parametrize(("version", "fp16_flag", "strongly_typed", "explicit_batch"), [
    ("8.6.1", True, False, True), ("10.3.0", True, False, False),
    ("10.16.1.11", True, False, False), ("11.4.0.106", False, True, False),
])
def test_recipe_follows_each_versions_api(version, fp16_flag, strongly_typed, explicit_batch):
    recipe = plan_recipe(emulated_tensorrt(version), "fp16", tf32=False, workspace_bytes=1 << 20)
    assert (recipe.fp16_flag, recipe.strongly_typed, recipe.explicit_batch) == \
        (fp16_flag, strongly_typed, explicit_batch)
    assert recipe.onnx_precision == ("fp16" if strongly_typed else "fp32")
    expected = "strongly typed" if strongly_typed else "BuilderFlag.FP16"
    assert expected in recipe.describe()


def test_names_the_version_lacks_fail():
    trt11 = emulated_tensorrt("11.4.0.106")
    with pytest.raises(AttributeError, match="FP16"):
        trt11.BuilderFlag.FP16  # noqa: B018
    with pytest.raises(AttributeError, match="EXPLICIT_BATCH"):
        trt11.NetworkDefinitionCreationFlag.EXPLICIT_BATCH  # noqa: B018
    with pytest.raises(AttributeError, match="device_memory_size'.*11.4.0.106"):
        trt11.ICudaEngine.device_memory_size  # noqa: B018
    trt8 = emulated_tensorrt("8.6.1")
    with pytest.raises(AttributeError, match="execute_async_v3|no attribute"):
        trt8.IExecutionContext.enqueue_v3  # noqa: B018
    assert trt8.BuilderFlag.FP16 is not None and trt8.IExecutionContext.execute_async_v2


def test_engines_build_run_and_agree(trt, tmp_path):
    perf = make_perf(tmp_path, tmp_path / "cache")
    reference = perf.outputs(perf.case("tiny", "torch", "fp32"))
    for precision in ("fp32", "fp16"):
        case = perf.case("tiny", "tensorrt", precision)
        runner = perf.runner(case)
        assert runner.artifact_bytes > 0
        assert "TensorRT " + trt.__version__ == runner.describe()["runtime"]
        diff = compare(perf.outputs(case), reference, perf.config.agreement.tolerances[precision])
        assert diff, f"{trt.__version__} {precision}: {diff}"
    assert list((tmp_path / "cache" / "tensorrt").glob(f"timing-{trt.__version__}-*.cache"))
    perf.close()


def engine_header(trt, cache: Path, precision: str) -> dict:
    (engine,) = (cache / "tensorrt").glob(f"tiny-{precision}-*/model.engine")
    return trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine.read_bytes())._header


def test_fp16_engines_hold_and_compute_fp16(trt, tmp_path):
    """An "fp16" engine built without FP16 (or from the fp32 ONNX where TensorRT 11 needs the
    fp16 one) is the fp32 engine again: the same size and outputs that match torch fp32."""
    perf = make_perf(tmp_path, tmp_path / "cache")
    reference = perf.outputs(perf.case("tiny", "torch", "fp32"))
    sizes, drift = {}, {}
    for precision in ("fp32", "fp16"):
        case = perf.case("tiny", "tensorrt", precision)
        sizes[precision] = perf.runner(case).artifact_bytes
        drift[precision] = float(np.abs(perf.outputs(case) - reference).max())
    assert sizes["fp16"] < 0.8 * sizes["fp32"], sizes
    assert drift["fp32"] < 1e-5 < 1e-4 < drift["fp16"], drift
    perf.close()


def test_the_workspace_limit_reaches_the_workspace_pool(trt, tmp_path):
    activation = {}
    for workspace_mb in (1, 64):
        root = tmp_path / str(workspace_mb)
        root.mkdir()
        (root / "pyproject.toml").write_text(TRT_CONFIG + f"workspace_mb = {workspace_mb}\n")
        env = {"PERFSUITE_CACHE_DIR": str(root / "cache")}
        perf = PerfRun(load_config(root, list(BACKEND_TYPES), environ=env))
        runner = perf.runner(perf.case("tiny", "tensorrt", "fp32"))
        activation[workspace_mb] = int(runner.describe()["activation_bytes"])
        header = engine_header(trt, root / "cache", "fp32")
        assert header["pools"] == {"WORKSPACE": workspace_mb << 20}, header["pools"]
        perf.close()
    assert activation[1] < activation[64], "the scratch an engine takes follows its workspace"


@pytest.mark.parametrize("version", VERSIONS)
def test_the_emulated_builder_config_checks_its_arguments(version):
    trt = emulated_tensorrt(version)
    config = trt.Builder(trt.Logger()).create_builder_config()
    other = emulated_tensorrt(version)
    for wrong in (trt.MemoryPoolType.WORKSPACE, other.BuilderFlag.TF32, "TF32", 0):
        with pytest.raises(TypeError, match="set_flag.*incompatible"):
            config.set_flag(wrong)
    for pool, size in ((trt.BuilderFlag.TF32, 1), (other.MemoryPoolType.WORKSPACE, 1),
                       (trt.MemoryPoolType.WORKSPACE, -1), (trt.MemoryPoolType.WORKSPACE, 1.5)):
        with pytest.raises(TypeError, match="set_memory_pool_limit.*incompatible"):
            config.set_memory_pool_limit(pool, size)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) > 1 << 30
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 20
    assert config.get_flag(trt.BuilderFlag.TF32), "TensorRT enables TF32 by default"


def test_engine_cache_hit_and_corrupt_engine_rebuild(trt, tmp_path):
    cache = tmp_path / "cache"
    first = make_perf(tmp_path, cache)
    first.runner(first.case("tiny", "tensorrt", "fp32"))
    (engine,) = (cache / "tensorrt").glob("tiny-fp32-*/model.engine")
    stamp = engine.stat().st_mtime_ns
    messages: list[str] = []
    second = make_perf(tmp_path, cache)
    second.progress = messages.append
    second.runner(second.case("tiny", "tensorrt", "fp32"))
    assert engine.stat().st_mtime_ns == stamp
    assert any("reusing cached TensorRT engine" in m for m in messages)
    engine.write_bytes(b"not an engine")
    third = make_perf(tmp_path, cache)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runner = third.runner(third.case("tiny", "tensorrt", "fp32"))
    assert any("cannot deserialize" in str(w.message) for w in caught)
    assert runner.run(third.inputs("tiny")[0]).shape == (1, 10)
    assert list((cache / "tensorrt").glob("tiny-fp32-*.corrupt-1/model.engine"))


def test_another_tensorrt_version_is_a_cache_miss(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    for version in ("10.3.0", "10.16.1.11"):
        monkeypatch.setitem(sys.modules, "tensorrt", emulated_tensorrt(version))
        perf = make_perf(tmp_path, cache)
        perf.runner(perf.case("tiny", "tensorrt", "fp32"))
    assert len(list((cache / "tensorrt").glob("tiny-fp32-*/model.engine"))) == 2


def test_parser_errors_are_reported(tmp_path):
    trt = emulated_tensorrt("8.6.1")
    perf = make_perf(tmp_path, tmp_path / "cache")
    onnx = perf.artifacts("tiny").onnx("fp32")
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    implicit = type(recipe)(**{**recipe.__dict__, "explicit_batch": False})
    with pytest.raises(EngineBuildError, match="cannot parse .*explicit batch"):
        build_engine(trt, onnx.path, implicit, tmp_path / "timing.cache", lambda m: None)


def test_build_reports_progress_and_tf32_is_explicit(tmp_path):
    trt = emulated_tensorrt("10.3.0")
    perf = make_perf(tmp_path, tmp_path / "cache")
    onnx = perf.artifacts("tiny").onnx("fp32")
    messages: list[str] = []
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 20)
    engine = build_engine(trt, onnx.path, recipe, tmp_path / "t.cache", messages.append)
    header = trt.Runtime(trt.Logger()).deserialize_cuda_engine(engine)._header
    assert "TF32" not in header["flags"], "TF32 is cleared explicitly (TensorRT's default is on)"
    assert messages[0].startswith("building TensorRT fp32 engine") and "done in" in messages[-1]


def test_without_tensorrt_the_backend_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    ok, reason = BACKEND_TYPES["tensorrt"]().available()
    assert not ok and "TensorRT is not installed" in reason


def test_host_buffers_are_refused_for_real_tensorrt_on_cpu(tmp_path, trt):
    (tmp_path / "pyproject.toml").write_text(TINY_CONFIG.replace('"onnxruntime"]', '"tensorrt"]'))
    perf = PerfRun(load_config(tmp_path, list(BACKEND_TYPES),
                                   environ={"PERFSUITE_CACHE_DIR": str(tmp_path / "c")}))
    with pytest.raises(Exception, match="TensorRT needs a CUDA device"):
        perf.runner(perf.case("tiny", "tensorrt", "fp32"))
    assert np.isfinite(perf.outputs(perf.case("tiny", "torch", "fp32"))).all()


def test_tensorrt_before_8_5_is_skipped_pointing_at_trtexec():
    from types import SimpleNamespace

    from perfsuite.backends.tensorrt.engine import check_name_based_api, parser_max_opset
    from perfsuite.errors import BackendUnavailable

    jetpack4 = SimpleNamespace(__version__="8.2.1.8", ICudaEngine=type("ICudaEngine", (), {}))
    with pytest.raises(BackendUnavailable, match=r"TensorRT 8\.2\.1\.8 predates .* trtexec"):
        check_name_based_api(jetpack4)
    assert [parser_max_opset(*v) for v in ((8, 2), (8, 5), (8, 6), (10, 3))] == [13, 16, None,
                                                                                  None]
