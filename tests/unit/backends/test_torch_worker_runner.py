"""The torch worker's parent side in this process: a real worker under this interpreter, its
requests, replies, timings (on the tests' virtual clock), descriptions and failures compared
whole (test_torch_worker.py runs whole suites through it, under Python 3.6 too)."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import SPIN_MS_ENV, VIRTUAL_CLOCK_ENV
from tiny_run import tiny_perf_run

from perfsuite.backends import torch_worker
from perfsuite.backends import torch_worker_main as wire
from perfsuite.backends.base import CaseSpec, ToolTimings
from perfsuite.backends.torch_worker import (
    TorchWorker,
    WorkerError,
    build_request,
    start_worker_runner,
)
from perfsuite.errors import BackendUnavailable
from perfsuite.run.workshop import PerfRun

HERE = Path(__file__).resolve().parents[2]  # tests/: tiny_models.py


@pytest.fixture
def perf(tmp_path, monkeypatch):
    monkeypatch.setenv(SPIN_MS_ENV, "2")  # 2 ms per call on the virtual clock, in both processes
    monkeypatch.setenv(VIRTUAL_CLOCK_ENV, "1")
    yield from tiny_perf_run(tmp_path)


def start(perf: PerfRun, python: str = sys.executable, precision: str = "fp32",
          run_device: str = "cpu", timer: str = "tiny_models:virtual_clock"):
    artifacts = perf.artifacts("tiny")
    return start_worker_runner(python, worker_spec(artifacts.spec), artifacts.torch_model(),
                               precision, run_device, "auto", 1, timer, perf.inputs("tiny")[0])


def started(perf: PerfRun, **kwargs):
    """A runner that must start (perfsuite's plugin would turn BackendUnavailable into a skip)."""
    try:
        return start(perf, **kwargs)
    except BackendUnavailable as exc:
        pytest.fail(f"the worker did not start: {exc}")


def worker_spec(spec):
    """The tiny model's spec with this folder on the worker's search path (tiny_models.py)."""
    return replace(spec, search_path=(HERE, *spec.search_path))


def test_a_worker_runs_the_same_model_and_times_it_on_its_clock(perf):
    model = perf.artifacts("tiny").torch_model()
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    inputs = perf.inputs("tiny")[0]
    with started(perf) as runner:
        assert runner.case == CaseSpec("tiny", "torch", "fp32", "cpu")
        assert runner.artifact_bytes == weights and runner.timed_by_tool
        with torch.no_grad():
            expected = model(torch.from_numpy(inputs)).numpy()
        outputs = runner.run(inputs)
        assert outputs.dtype == np.float32 and outputs.shape == (1, 10)
        np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5)
        timings = runner.tool_timings(inputs, 4, 0.0)
        assert timings == ToolTimings(e2e_s=pytest.approx((0.002,) * 4, rel=1e-6), gpu_s=None,
                                      enqueue_s=None)
        assert type(timings.e2e_s) is tuple
        version = sys.version.split()[0]
        assert runner.describe() == {
            "runtime": f"torch {torch.__version__} eager (Python {version} worker)",
            "recipe": f"Python {version} worker, torch {torch.__version__}",
            "interpreter": sys.executable, "dtype": "fp32", "device": "cpu", "threads": "1",
            "cuda_graph": "off"}
        worker = runner._worker._process
    assert runner.closed and worker.returncode == 0
    assert worker.stdin.closed and worker.stdout.closed


def test_an_fp16_worker_counts_half_the_bytes_and_says_where_it_runs(perf):
    model = perf.artifacts("tiny").torch_model()
    half = sum(t.numel() * t.element_size() for t in model.half().state_dict().values())
    model.float()
    with started(perf, precision="fp16", run_device="cuda") as runner:
        assert runner.artifact_bytes == half
        assert runner.case == CaseSpec("tiny", "torch", "fp16", "cuda")
        described = runner.describe()
        assert described["recipe"].endswith(" worker on cpu, torch " + torch.__version__)
        assert (described["dtype"], described["device"]) == ("fp16", "cpu")


def test_the_build_request_carries_the_weights_and_the_recipe(perf):
    spec = worker_spec(perf.artifacts("tiny").spec)
    model = perf.artifacts("tiny").torch_model()
    request = build_request(spec, model, "fp16", "cuda", 3, "m:clock", tf32=True)
    state = request.pop("state")
    assert request == {"torchvision": "", "factory": "tiny_models:tiny_cnn",
                       "search_path": [str(HERE), *(str(p) for p in spec.search_path[1:])],
                       "precision": "fp16", "device": "cuda", "threads": 3, "timer": "m:clock",
                       "tf32": True}
    assert list(state) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert np.array_equal(wire.from_wire(state[key]), value.numpy())
    assert build_request(spec, model, "fp32", "cpu", 0, "")["tf32"] is False


def test_a_worker_that_cannot_build_the_model_is_unavailable_saying_why(perf, monkeypatch):
    artifacts = perf.artifacts("tiny")
    spec = replace(artifacts.spec, factory="no_such_module:f")
    with pytest.raises(BackendUnavailable) as caught:
        start_worker_runner(sys.executable, spec, artifacts.torch_model(), "fp32", "cpu", "auto",
                            1, "", perf.inputs("tiny")[0])
    message = str(caught.value)
    assert message.startswith(f"torch worker {sys.executable} | build: ModuleNotFoundError: "
                              "No module named 'no_such_module' (")
    assert caught.value.__cause__ is None


def test_a_cuda_run_with_a_cpu_only_worker_is_unavailable(perf):
    artifacts = perf.artifacts("tiny")
    with pytest.raises(BackendUnavailable, match=r"^device = \"cuda\" but the torch worker's "
                                                 r"torch \(.*\) has no CUDA$"):
        start_worker_runner(sys.executable, worker_spec(artifacts.spec), artifacts.torch_model(),
                            "fp32", "cuda", "cuda", 1, "", perf.inputs("tiny")[0])


def test_an_interpreter_that_cannot_start_is_unavailable(perf, tmp_path):
    missing = str(tmp_path / "no-python")
    with pytest.raises(BackendUnavailable) as caught:
        start(perf, python=missing)
    assert str(caught.value) == (f"the torch worker's interpreter {missing} cannot be started: "
                                 "No such file or directory")


def shell_interpreter(folder: Path, name: str, script: str) -> str:
    """An 'interpreter' that runs a shell `script` instead of the worker."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def dying(folder: Path, lines: int, code: int) -> str:
    """An 'interpreter' that writes `lines` lines to stderr and exits `code`."""
    return shell_interpreter(folder, "dies", "".join(f"echo line {i} >&2\n"
                                                     for i in range(lines)) + f"exit {code}\n")


@pytest.mark.parametrize(("lines", "tail"), [
    (0, "nothing on stderr"), (1, "line 0"),
    (8, "line 2 | line 3 | line 4 | line 5 | line 6 | line 7"),
])
def test_a_worker_that_dies_is_named_with_its_exit_and_stderr(perf, tmp_path, lines, tail):
    python = dying(tmp_path, lines, 3)
    with pytest.raises(BackendUnavailable) as caught:
        start(perf, python=python)
    assert str(caught.value) == (f"torch worker {python} stopped during 'describe' "
                                 f"(exit status 3): {tail}")


def test_requests_and_replies_and_an_unknown_request(tmp_path):
    worker = TorchWorker(sys.executable, tmp_path)
    try:
        facts = worker.call("describe")
        assert facts["python"] == sys.version.split()[0] and facts["cuda"] is False
        with pytest.raises(WorkerError) as caught:
            worker.call("bogus", 1)
        assert str(caught.value).startswith(f"torch worker {sys.executable} | bogus: "
                                            "ValueError: unknown request 'bogus' (")
        assert worker.call("describe") == facts  # it goes on after an error
    finally:
        worker.close()
    assert worker._process.returncode == 0
    worker.close()  # twice is harmless


def test_an_interpreter_that_prints_to_stdout_is_named_not_a_traceback(perf, tmp_path):
    talker = shell_interpreter(tmp_path, "talks", "printf 'Welcome to this Python!'\n")
    with pytest.raises(BackendUnavailable) as caught:
        start(perf, python=talker)
    assert str(caught.value).startswith(f"torch worker {talker} | describe: its reply is not "
                                        "perfsuite's worker protocol (")
    assert str(caught.value).endswith("); does the interpreter print to stdout when it starts "
                                      "(a sitecustomize, a wrapper script)?")


def test_a_talker_that_exited_before_the_request_is_still_named(tmp_path):
    talker = shell_interpreter(tmp_path, "talks", "printf 'Welcome to this Python!'\n")
    worker = TorchWorker(talker, tmp_path)
    worker._process.wait()  # gone before the request is written: the write meets a closed pipe
    try:
        with pytest.raises(WorkerError) as caught:
            worker.call("describe")
        assert "| describe: its reply is not perfsuite's worker protocol (" in str(caught.value)
    finally:
        worker.close()


def test_the_worker_starts_in_the_folder_it_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(HERE)
    worker = TorchWorker(sys.executable, tmp_path)
    try:
        assert Path(os.readlink(f"/proc/{worker._process.pid}/cwd")) == tmp_path
    finally:
        worker.close()


def test_a_worker_whose_stderr_is_not_utf8_is_still_quoted(perf, tmp_path):
    broken = shell_interpreter(tmp_path, "broken", "printf 'bad \\377 byte\\n' >&2\nexit 4\n")
    with pytest.raises(BackendUnavailable) as caught:
        start(perf, python=broken)
    assert str(caught.value) == (f"torch worker {broken} stopped during 'describe' "
                                 "(exit status 4): bad \ufffd byte")


class RecordingWorker:
    """TorchWorker's interface, answering from a script and keeping each request."""

    def __init__(self, python, folder, cuda=False, timed=None):
        self.python, self.requests, self.closed = python, [], False
        self._cuda, self._timed = cuda, timed

    def call(self, op, argument=None):
        self.requests.append((op, argument))
        if op == "describe":
            return {"python": "3.6.9", "executable": self.python, "torch": "1.10.2",
                    "cuda": self._cuda, "threads": 4}
        if op == "time":
            return self._timed
        return wire.to_wire(np.zeros((1, 10), np.float32)) if op == "run" else None

    def close(self):
        self.closed = True


def recording(monkeypatch, **answers):
    made = []

    def factory(python, folder):
        made.append(RecordingWorker(python, folder, **answers))
        return made[-1]

    monkeypatch.setattr(torch_worker, "TorchWorker", factory)
    return made


def test_the_build_request_carries_every_choice(perf, monkeypatch):
    made = recording(monkeypatch, cuda=True,
                     timed={"e2e_s": [0.001] * 5, "gpu_s": None, "enqueue_s": None})
    artifacts = perf.artifacts("tiny")
    shared = artifacts.torch_model()
    runner = start_worker_runner("/jetpack/python3", worker_spec(artifacts.spec), shared, "fp16",
                                 "cuda", "auto", 3, "m:clock", perf.inputs("tiny")[0])
    assert all(p.dtype == torch.float32 for p in shared.parameters()), "the shared model changed"
    (worker,) = made
    (build,) = [argument for op, argument in worker.requests if op == "build"]
    assert (build["precision"], build["device"], build["threads"], build["timer"],
            build["tf32"]) == ("fp16", "cuda", 3, "m:clock", False)
    assert runner.describe()["device"] == "cuda"
    runner.tool_timings(perf.inputs("tiny")[0], 5, 0.5)
    (_, (_, rounds, warmup_s, min_runs)), = [r for r in worker.requests if r[0] == "time"]
    assert (rounds, warmup_s, min_runs) == (5, 0.5, 10)


def test_a_cuda_setting_for_a_worker_without_cuda_names_the_interpreter(perf, monkeypatch):
    made = recording(monkeypatch, cuda=False)
    artifacts = perf.artifacts("tiny")
    with pytest.raises(BackendUnavailable) as caught:
        start_worker_runner("/jetpack/python3", worker_spec(artifacts.spec),
                            artifacts.torch_model(), "fp32", "cuda", "cuda", 1, "",
                            perf.inputs("tiny")[0])
    assert str(caught.value) == ('device = "cuda" but the torch worker\'s torch '
                                 "(/jetpack/python3) has no CUDA")
    assert made[0].closed


def test_gpu_and_enqueue_times_from_a_cuda_worker_are_kept(perf, monkeypatch):
    timed = {"e2e_s": [0.003, 0.004], "gpu_s": [0.001, 0.002], "enqueue_s": [0.0005, 0.0006]}
    recording(monkeypatch, cuda=True, timed=timed)
    artifacts = perf.artifacts("tiny")
    runner = start_worker_runner("/jetpack/python3", worker_spec(artifacts.spec),
                                 artifacts.torch_model(), "fp32", "cuda", "auto", 1, "",
                                 perf.inputs("tiny")[0])
    assert runner.tool_timings(perf.inputs("tiny")[0], 2, 0.0) == ToolTimings(
        e2e_s=(0.003, 0.004), gpu_s=(0.001, 0.002), enqueue_s=(0.0005, 0.0006))
    timed.update(gpu_s=[], enqueue_s=None)
    assert runner.tool_timings(perf.inputs("tiny")[0], 2, 0.0) == ToolTimings(
        e2e_s=(0.003, 0.004), gpu_s=None, enqueue_s=None)


def test_a_closed_worker_refuses_a_request_by_name(tmp_path):
    worker = TorchWorker(sys.executable, tmp_path)
    worker.close()
    with pytest.raises(WorkerError) as caught:
        worker.call("describe")
    assert str(caught.value) == (f"torch worker {sys.executable} | describe: write to closed "
                                 "file")


def test_a_worker_that_dies_inside_its_reply_is_a_stop(tmp_path):
    cut = shell_interpreter(tmp_path, "cut", "printf '\\000\\000\\000\\020'\nexit 5\n")
    worker = TorchWorker(cut, tmp_path)
    try:
        with pytest.raises(WorkerError) as caught:
            worker.call("describe")
        assert str(caught.value) == (f"torch worker {cut} stopped during 'describe' "
                                     "(exit status 5): nothing on stderr")
    finally:
        worker.close()


def test_tf32_reaches_the_build_request(perf, monkeypatch):
    made = recording(monkeypatch, cuda=True)
    artifacts = perf.artifacts("tiny")
    start_worker_runner("/jetpack/python3", worker_spec(artifacts.spec), artifacts.torch_model(),
                        "fp32", "cuda", "auto", 1, "", perf.inputs("tiny")[0], tf32=True)
    (build,) = [argument for op, argument in made[0].requests if op == "build"]
    assert build["tf32"] is True
