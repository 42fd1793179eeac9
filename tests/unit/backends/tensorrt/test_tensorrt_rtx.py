"""The tensorrt-rtx backend with the real TensorRT-RTX builder (`pip install 'perfsuite[rtx]'`,
part of the test extra on x86-64): engines are parsed and built ahead of time through
perfsuite's builder code on a machine with no GPU; where its runtime cannot run them, the
backend reports their size and skips saying why."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from fakes.tensorrt_emulator import emulated_tensorrt
from tiny_models import TINY_CONFIG

from perfsuite.backends import BACKEND_TYPES
from perfsuite.backends.base import BackendOptions, CaseSpec
from perfsuite.backends.tensorrt import rtx as rtx
from perfsuite.backends.tensorrt.engine import (
    TENSORRT_RTX,
    EngineBuildError,
    build_engine,
    plan_recipe,
)
from perfsuite.config.settings import load_config
from perfsuite.errors import BuiltNotRunnable
from perfsuite.lazy import is_installed
from perfsuite.run.workshop import PerfRun

RTX_CONFIG = TINY_CONFIG.replace('backends = ["torch", "onnxruntime"]',
                                 'backends = ["torch", "tensorrt-rtx"]')
needs_rtx = pytest.mark.skipif(not is_installed(rtx.rtx_module_name()),
                               reason="TensorRT-RTX is not installed (x86-64 only: "
                                      "pip install 'perfsuite[rtx]')")


def make_perf(root: Path) -> PerfRun:
    (root / "pyproject.toml").write_text(RTX_CONFIG)
    env = {"PERFSUITE_CACHE_DIR": str(root / "cache")}
    return PerfRun(load_config(root, list(BACKEND_TYPES), environ=env))


@needs_rtx
def test_real_engines_are_built_without_a_gpu_and_their_size_reported(tmp_path):
    perf = make_perf(tmp_path)
    messages: list[str] = []
    perf.progress = messages.append
    for precision in ("fp32", "fp16"):
        case = perf.case("tiny", "tensorrt-rtx", precision)
        with pytest.raises(BuiltNotRunnable, match=rf"built the {precision} engine \(.* MB, "
                                                   r"for SM86\) but cannot run it here: this "
                                                   r"run's device is cpu"):
            perf.runner(case)
    rows = {r.case.precision: r for r in perf.results()}
    engines = {p.parent.name.split("-")[1]: p.stat().st_size
               for p in (tmp_path / "cache" / "tensorrt-rtx").glob("tiny-*/model.engine")}
    assert {k: rows[k].artifact_bytes for k in rows} == engines and set(engines) == {"fp32", "fp16"}
    assert rows["fp16"].details["recipe"].startswith("fp16: fp16 ONNX, strongly typed network")
    assert any(m.startswith("building TensorRT-RTX fp32 engine") for m in messages)
    again = make_perf(tmp_path)  # a second session takes the engines from the cache
    again.progress = messages.append
    with pytest.raises(BuiltNotRunnable):
        again.runner(again.case("tiny", "tensorrt-rtx", "fp32"))
    assert any(m.startswith("reusing cached TensorRT engine") for m in messages)


@needs_rtx
def test_parse_failures_carry_the_parsers_messages(tmp_path):
    trt = sys.modules.get(rtx.rtx_module_name()) or __import__(rtx.rtx_module_name())
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not an onnx model")
    recipe = plan_recipe(trt, "fp32", tf32=False, workspace_bytes=1 << 28,
                         compute_capability="SM86")
    with pytest.raises(EngineBuildError, match=r"cannot parse .*broken\.onnx: .*ONNX model"):
        build_engine(trt, broken, recipe, None, lambda m: None)


@needs_rtx
@pytest.mark.parametrize(("capability", "target", "refused"), [
    ("8.6", "SM86", ""), ("12.0", "SM120", ""),
    ("9.0", "SM86", "compute capability 9.0 (NVIDIA H100 80GB HBM3) is not supported"),
])
def test_the_gpu_decides_the_target(monkeypatch, capability, target, refused):
    trt = __import__(rtx.rtx_module_name())
    monkeypatch.setattr(rtx, "gpu_facts", lambda: {"gpu_name": "NVIDIA H100 80GB HBM3",
                                                   "compute_capability": capability})
    chosen, why = rtx.runtime_target(trt, "cuda")
    assert chosen == target and (refused in why if refused else why == "")


def test_without_tensorrt_rtx_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(rtx, "is_installed", lambda module: False)
    assert BACKEND_TYPES["tensorrt-rtx"]().available() == (
        False, "TensorRT-RTX is not installed (for RTX and A100-class GPUs: "
               "pip install 'perfsuite[rtx]')")
    monkeypatch.setattr(rtx, "is_installed", lambda module: module == "tensorrt_rtx_bindings")
    assert BACKEND_TYPES["tensorrt-rtx"]().available() == (True, "")


@pytest.mark.parametrize(("installed", "module"), [
    ((), "tensorrt_rtx"), (("tensorrt_rtx_bindings",), "tensorrt_rtx_bindings"),
    (("tensorrt_rtx", "tensorrt_rtx_bindings"), "tensorrt_rtx")])
def test_the_module_is_the_metapackages_then_the_wheels(monkeypatch, installed, module):
    monkeypatch.setattr(rtx, "is_installed", lambda name: name in installed)
    assert rtx.rtx_module_name() == module


def fake_rtx(*members: str) -> SimpleNamespace:
    capability = enum.Enum("ComputeCapability", {name: i for i, name in enumerate(members)})
    return SimpleNamespace(__version__="1.2.3", ComputeCapability=capability)


def test_targets_are_the_enums_sm_members_in_numeric_order():
    assert rtx.targets(fake_rtx("CURRENT", "SM120", "SM86", "SM75", "SM100", "SM89")) == [
        "SM75", "SM86", "SM89", "SM100", "SM120"]
    assert rtx.targets(SimpleNamespace(ComputeCapability=object())) == []


def test_the_refusals_name_the_device_and_the_generations_it_runs_on(monkeypatch):
    trt = fake_rtx("SM120", "SM75", "SM86")
    assert rtx.runtime_target(trt, "cpu") == (
        "SM86", "this run's device is cpu; TensorRT-RTX runs on CUDA GPUs of compute "
                "capability 7.5, 8.6, 12.0")
    monkeypatch.setattr(rtx, "gpu_facts", lambda: {})
    assert rtx.runtime_target(trt, "cuda") == (
        "SM86", "compute capability unknown (this GPU) is not supported by TensorRT-RTX 1.2.3, "
                "which runs on compute capability 7.5, 8.6, 12.0")
    monkeypatch.setattr(rtx, "gpu_facts", lambda: {"compute_capability": "12.0"})
    assert rtx.runtime_target(trt, "cuda") == ("SM120", "")


@needs_rtx
@pytest.mark.parametrize("tf32", [True, False])
def test_an_engine_built_for_another_gpu_is_reported_exactly(tmp_path, tf32):
    trt = __import__(rtx.rtx_module_name())
    perf = make_perf(tmp_path)
    artifacts = perf.artifacts("tiny")
    backend = rtx.TensorRTRtxBackend(BackendOptions(cache=perf.cache, tf32=tf32,
                                                    trt_workspace_bytes=1 << 24))
    with pytest.raises(BuiltNotRunnable) as raised:
        backend.prepare(artifacts.spec, artifacts, "fp32", "cpu")
    (engine,) = (tmp_path / "cache" / "tensorrt-rtx").glob("tiny-*/model.engine")
    size = engine.stat().st_size
    recipe = plan_recipe(trt, "fp32", tf32, 1 << 24, compute_capability="SM86")
    _, why = rtx.runtime_target(trt, "cpu")
    assert str(raised.value) == (f"TensorRT-RTX {trt.__version__} built the fp32 engine "
                                 f"({size / 1e6:.1f} MB, for SM86) but cannot run it here: {why}")
    assert raised.value.artifact_bytes == size
    assert raised.value.details == {"runtime": f"TensorRT-RTX {trt.__version__}",
                                    "recipe": recipe.describe()}
    assert recipe.describe().endswith(f"TF32 {'on' if tf32 else 'off'}; built for SM86")
    perf.close()


@needs_rtx
def test_the_emulators_builder_config_checks_are_the_real_bindings(tmp_path):
    """The checks fakes/tensorrt_emulator.py makes of BuilderFlag and MemoryPoolType arguments
    are the real bindings' own (TensorRT-RTX shares TensorRT's builder API)."""
    import importlib

    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from fakes.tensorrt_emulator import emulated_tensorrt

    real = importlib.import_module(rtx.rtx_module_name())
    for trt in (real, emulated_tensorrt("10.16.1.11")):
        config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
        for pool, size in ((trt.BuilderFlag.TF32, 1), (trt.MemoryPoolType.WORKSPACE, -1),
                           (trt.MemoryPoolType.WORKSPACE, 1.5)):
            with pytest.raises(TypeError, match="set_memory_pool_limit.*incompatible"):
                config.set_memory_pool_limit(pool, size)
        for flag in (trt.MemoryPoolType.WORKSPACE, "TF32", 0):
            with pytest.raises(TypeError, match="set_flag.*incompatible"):
                config.set_flag(flag)
        assert config.get_flag(trt.BuilderFlag.TF32), f"{trt.__name__}: TF32 on by default"
        assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) > 1 << 30, \
            "WORKSPACE defaults to the device's memory"
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)
        assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 20


def test_on_a_supported_gpu_the_engine_goes_to_the_tensorrt_runner(tmp_path, monkeypatch):
    """The runnable path, with the GPU's answers and the runner replaced by recorders."""
    trt = emulated_tensorrt("11.4.0.106")  # strongly typed, no FP16 flag: as TensorRT-RTX
    monkeypatch.setattr(rtx, "require", lambda name: trt)
    monkeypatch.setattr(rtx, "runtime_target", lambda module, device: ("SM89", ""))
    built, ran = [], []

    class Engines:
        def __init__(self, *args):
            built.append(args)

        def __call__(self):
            return "loaded engine"

    monkeypatch.setattr(rtx, "EngineFromOnnx", Engines)
    monkeypatch.setattr(rtx, "TensorRTRunner", lambda *args: ran.append(args) or "runner")
    perf = make_perf(tmp_path)
    artifacts = perf.artifacts("tiny")
    progress = [].append
    options = BackendOptions(cache=perf.cache, tf32=True, trt_workspace_bytes=1 << 24,
                             trt_cuda_graph=True, progress=progress)
    assert rtx.TensorRTRtxBackend(options).prepare(artifacts.spec, artifacts, "fp16",
                                                   "cuda") == "runner"
    recipe = plan_recipe(trt, "fp16", True, 1 << 24, compute_capability="SM89")
    assert built == [(trt, artifacts, recipe, perf.cache, progress, TENSORRT_RTX)]
    assert ran == [(CaseSpec("tiny", "tensorrt-rtx", "fp16", "cuda"), artifacts.spec, trt,
                    "loaded engine", recipe, "cuda", True, progress)]
    perf.close()
