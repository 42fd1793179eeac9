"""The CPU runners (ONNX Runtime, torch eager) and the torch CUDA-graph runner, exactly: the session
options each one sets, the describe() rows that key tables and baselines, the worker hand-off and
the refusals with their words. Mutation testing (benchmarks/mutation.sh) found these unchecked."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fakes.cpu_cuda import CpuCuda
from tiny_run import tiny_perf_run

from perfsuite.backends import onnxruntime as ort_backend
from perfsuite.backends import torch_eager
from perfsuite.backends.base import BackendOptions, CaseSpec
from perfsuite.backends.onnxruntime import OnnxRuntimeBackend, OrtRunner
from perfsuite.backends.torch_cudagraph import TorchCudaGraphBackend
from perfsuite.backends.torch_eager import TorchEagerBackend, TorchEagerRunner
from perfsuite.errors import BackendUnavailable
from perfsuite.machine import device as device_checks
from perfsuite.machine.device import available_cpu_threads
from perfsuite.measure.sizes import state_dict_bytes
from perfsuite.run.workshop import PerfRun


@pytest.fixture
def perf(tmp_path):
    yield from tiny_perf_run(tmp_path)


def made(factory, *args, **kwargs):
    """What `factory` returns; BackendUnavailable fails the test (the plugin would skip it)."""
    try:
        return factory(*args, **kwargs)
    except BackendUnavailable as exc:
        pytest.fail(f"unexpectedly unavailable: {exc}")


def prepared(backend, perf: PerfRun, precision: str, device: str = "cpu"):
    artifacts = perf.artifacts("tiny")
    return made(backend.prepare, artifacts.spec, artifacts, precision, device)


def session_options(runner: OrtRunner):
    return runner._session.get_session_options()


def spinning_entry(runner: OrtRunner) -> str:
    try:
        return str(session_options(runner).get_session_config_entry(
            "session.intra_op.allow_spinning"))
    except Exception:  # onnxruntime raises when the entry was never set
        return "unset"


# -- ONNX Runtime ------------------------------------------------------------------------------
@pytest.mark.parametrize("spinning", [True, False])
def test_an_onnxruntime_session_has_the_threads_provider_and_spinning_asked_for(perf, spinning):
    import onnxruntime

    onnx = perf.artifacts("tiny").onnx("fp32")
    case = CaseSpec("tiny", "onnxruntime", "fp32", "cpu")
    args = (case, perf.artifacts("tiny").spec, onnx, 3) + (() if spinning else (False,))
    runner = made(OrtRunner, *args)
    options = session_options(runner)
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)
    assert spinning_entry(runner) == ("unset" if spinning else "0")
    assert runner._session.get_providers() == ["CPUExecutionProvider"]
    assert runner.describe() == {
        "runtime": f"onnxruntime {onnxruntime.__version__}", "provider": "CPUExecutionProvider",
        "threads": "3", "spinning": "on" if spinning else "off", "onnx": onnx.path.name,
        "exporter": onnx.exporter, "opset": str(onnx.opset)}
    assert runner.artifact_bytes == onnx.size_bytes
    runner.close()


def test_an_onnxruntime_run_feeds_fp32_inputs_without_a_copy(perf):
    runner = prepared(OnnxRuntimeBackend(), perf, "fp32")
    fed = []
    real = runner._session

    class Recording:
        def run(self, names, feed):
            fed.append(feed)
            return real.run(names, feed)

    runner._session = Recording()
    inputs = perf.inputs("tiny")[0]
    outputs = runner.run(inputs)
    assert outputs.dtype == np.float32 and outputs.shape == (1, 10)
    (feed,) = fed
    assert list(feed) == [real.get_inputs()[0].name] and feed[real.get_inputs()[0].name] is inputs
    runner._session = real
    runner.close()


@pytest.mark.parametrize(("cpu_threads", "spinning"), [(0, True), (2, False)])
def test_the_onnxruntime_backend_passes_its_options_to_the_session(perf, cpu_threads, spinning):
    backend = OnnxRuntimeBackend(BackendOptions(cpu_threads=cpu_threads, ort_spinning=spinning))
    runner = prepared(backend, perf, "fp16")
    assert runner.case == CaseSpec("tiny", "onnxruntime", "fp16", "cpu")
    threads = cpu_threads or available_cpu_threads()
    assert session_options(runner).intra_op_num_threads == threads
    described = runner.describe()
    assert (described["threads"], described["spinning"]) == (str(threads),
                                                            "on" if spinning else "off")
    assert runner.run(perf.inputs("tiny")[0]).dtype == np.float32
    runner.close()


def test_onnxruntime_without_the_cuda_provider_says_what_to_install(perf):
    import onnxruntime

    installed = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in installed:
        pytest.skip("onnxruntime-gpu is installed here: the CUDA provider exists")
    artifacts = perf.artifacts("tiny")
    expected = (f"onnxruntime has no CUDAExecutionProvider here (providers: {', '.join(installed)}); "
                "install onnxruntime-gpu for CUDA")
    with pytest.raises(BackendUnavailable) as raised:
        OnnxRuntimeBackend().prepare(artifacts.spec, artifacts, "fp32", "cuda")
    assert str(raised.value) == expected


def test_onnxruntime_availability_names_the_extra(monkeypatch):
    assert OnnxRuntimeBackend().available() == (True, "")
    monkeypatch.setattr(ort_backend, "is_installed", lambda name: name != "onnxruntime")
    assert OnnxRuntimeBackend().available() == (
        False, "onnxruntime is not installed (pip install 'perfsuite[ort]')")


# -- torch eager -------------------------------------------------------------------------------
def test_torch_availability_says_what_to_install(monkeypatch):
    assert device_checks.torch_available() == (True, "")
    assert TorchEagerBackend().available() == (True, "")
    monkeypatch.setattr(device_checks, "is_installed", lambda name: name != "torch")
    assert device_checks.torch_available() == (False, "torch is not installed (pip install torch)")


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("fp16", torch.float16),
                                                  ("bf16", torch.bfloat16)])
def test_a_torch_runner_converts_a_copy_and_describes_itself(perf, precision, dtype):
    shared = perf.artifacts("tiny").torch_model()
    runner = prepared(TorchEagerBackend(), perf, precision)
    assert runner.case == CaseSpec("tiny", "torch", precision, "cpu")
    assert all(p.dtype == torch.float32 for p in shared.parameters()), "the shared model changed"
    assert all(p.dtype == dtype for p in runner._model.parameters())
    assert runner.artifact_bytes == state_dict_bytes(runner._model)
    assert runner.describe() == {"runtime": f"torch {torch.__version__} eager",
                                 "dtype": str(dtype), "device": "cpu",
                                 "threads": str(torch.get_num_threads())}
    inputs = perf.inputs("tiny")[0]
    with torch.inference_mode():
        expected = shared.to(dtype)(torch.from_numpy(inputs).to(dtype)).float().numpy()
    shared.float()
    outputs = runner.run(inputs)
    assert outputs.dtype == np.float32
    np.testing.assert_array_equal(outputs, expected)
    assert runner.device_enqueue(inputs) is None, "CPU runs have no device queue to time"
    runner.close()
    assert runner._model is None


def fp16_cuda_runner(perf):
    """An fp16 torch runner for a "cuda" case (built under the CPU stand-in by the caller)."""
    return made(TorchEagerRunner, CaseSpec("tiny", "torch", "fp16", "cuda"),
                perf.artifacts("tiny").spec, perf.artifacts("tiny").torch_model())


def test_a_cuda_torch_runner_says_tf32_and_no_graph(perf, monkeypatch):
    cuda = CpuCuda(torch).install(monkeypatch)
    try:
        runner = fp16_cuda_runner(perf)
    finally:
        cuda.remove_hooks()
    monkeypatch.undo()
    runner._device = torch.device("cuda")  # the stand-in placed it on the CPU; describe reads it
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert runner.describe() == {"runtime": f"torch {torch.__version__} eager",
                                 "dtype": "torch.float16", "device": "cuda",
                                 "threads": str(torch.get_num_threads()), "tf32": "False",
                                 "cuda_graph": "off"}


def test_a_cuda_torch_runner_enqueues_the_model_on_its_inputs(perf, monkeypatch):
    cuda = CpuCuda(torch).install(monkeypatch)
    try:
        runner = fp16_cuda_runner(perf)
        inputs = perf.inputs("tiny")[0]
        enqueue = runner.device_enqueue(inputs)
        output = enqueue()
        assert output.dtype == torch.float16
        np.testing.assert_array_equal(output.float().numpy(), runner.run(inputs))
    finally:
        cuda.remove_hooks()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: nothing to refuse")
def test_torch_on_a_machine_without_cuda_is_refused_with_the_reason(perf):
    device_checks._torch_device_problem.cache_clear()
    artifacts = perf.artifacts("tiny")
    with pytest.raises(BackendUnavailable) as raised:
        TorchEagerBackend().prepare(artifacts.spec, artifacts, "fp32", "cuda")
    assert str(raised.value) == ("CUDA is not available to torch on this machine "
                                 "(no GPU or no CUDA build)")


def test_a_configured_interpreter_gets_the_model_and_every_option(perf, monkeypatch):
    calls = []
    monkeypatch.setattr(torch_eager, "start_worker_runner",
                        lambda *args: calls.append(args) or "runner")
    options = BackendOptions(torch_python="/opt/py36/bin/python3", device_setting="auto",
                             cpu_threads=3, timer="tiny_models:virtual_clock", tf32=True)
    artifacts = perf.artifacts("tiny")
    assert made(TorchEagerBackend(options).prepare, artifacts.spec, artifacts, "fp16",
                "cuda") == "runner"
    ((python, spec, model, precision, device, setting, threads, timer, sample, tf32),) = calls
    assert (python, spec, model, precision, device) == (
        "/opt/py36/bin/python3", artifacts.spec, artifacts.torch_model(), "fp16", "cuda")
    assert (setting, threads, timer, tf32) == ("auto", 3, "tiny_models:virtual_clock", True)
    assert sample.dtype == np.float32 and sample.shape == artifacts.spec.input_shape
    assert not sample.any()
    with pytest.raises(BackendUnavailable) as raised:
        TorchEagerBackend(options).prepare(artifacts.spec, artifacts, "bf16", "cuda")
    assert str(raised.value) == ("bf16 is not run by the torch worker (/opt/py36/bin/python3); "
                                 "it runs fp32, fp16")
    assert len(calls) == 1


# -- torch CUDA graph --------------------------------------------------------------------------
@pytest.mark.parametrize(("channels_last", "tf32"), [(False, False), (True, True)])
def test_a_cuda_graph_runner_describes_its_layout_and_tf32(perf, monkeypatch, channels_last, tf32):
    cuda = CpuCuda(torch).install(monkeypatch)
    device_checks._torch_device_problem.cache_clear()
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", tf32)
    try:
        backend = TorchCudaGraphBackend(BackendOptions(channels_last=channels_last))
        runner = prepared(backend, perf, "fp16", "cuda")
        assert runner.case == CaseSpec("tiny", "torch-cudagraph", "fp16", "cuda")
        assert runner.artifact_bytes == state_dict_bytes(runner._model)
        assert all(p.dtype == torch.float16 for p in runner._model.parameters())
        layout = torch.channels_last if channels_last else torch.contiguous_format
        assert runner._static_in.is_contiguous(memory_format=layout)
        assert runner._static_in.dtype == torch.float16
        assert runner.describe() == {
            "runtime": f"torch {torch.__version__} CUDA graph replay", "dtype": "torch.float16",
            "device": "cuda", "tf32": str(tf32), "cuda_graph": "on",
            "memory_format": "channels_last" if channels_last else "contiguous"}
        runner.close()
        assert (runner._graph, runner._static_out, runner._static_in, runner._model) == (
            None, None, None, None)
    finally:
        cuda.remove_hooks()
        device_checks._torch_device_problem.cache_clear()


def test_the_session_is_given_its_options_and_only_its_provider(perf, monkeypatch):
    import onnxruntime

    given = []
    real = onnxruntime.InferenceSession

    def recording(path, sess_options=None, providers=None, **kwargs):
        given.append((sess_options, providers))
        return real(path, sess_options=sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", recording)
    runner = prepared(OnnxRuntimeBackend(BackendOptions(cpu_threads=2)), perf, "fp32")
    ((options, providers),) = given
    assert providers == ["CPUExecutionProvider"]
    assert options.intra_op_num_threads == 2
    runner.close()
