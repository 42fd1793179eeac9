"""torch in a worker under another interpreter ([tool.perfsuite.torch] python): the blog's
Jetson Nano, where NVIDIA's CUDA torch exists only for the system Python 3.6.

The JetPack 4.6 test needs Python 3.6 with PyPI's torch 1.10.2 (CPU here): PERFSUITE_TEST_PY36
names that interpreter (.ci/run makes one); PERFSUITE_REQUIRE_PY36=1 (CI) fails instead of
skipping without it. Timing runs on a virtual clock that the model's spin advances in the worker
(the pytest-benchmark timer travels to the worker by name), so numbers are exact under load."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.board_trees import write_board

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "perfsuite" / "backends" / "torch_worker_main.py"
FAKE_TRTEXEC = REPO / "tests" / "fakes" / "trtexec.py"
PY36_ENV = "PERFSUITE_TEST_PY36"
# A factory valid in Python 3.6 and torch 1.10 as in 2.x; the spin adds NANO_SPIN_MS (2) to a
# virtual clock.
NANO_MODELS = '''
import os

import torch
from torch import nn

_virtual = [0.0]


def virtual_clock():
    return _virtual[0]


class Spin(nn.Module):
    def forward(self, x):
        _virtual[0] += float(os.environ.get("NANO_SPIN_MS", "2")) / 1e3
        return x


def tiny():
    return nn.Sequential(Spin(), nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
'''
CONFIG = '''
[tool.perfsuite]
backends = ["torch", "trtexec"]
precisions = ["fp32", "fp16"]
device = "cpu"

[tool.perfsuite.timing]
rounds = 20
trials = 1
warmup_seconds = 0.0
warmup_min_runs = 1

[tool.perfsuite.torch]
python = "{python}"

[tool.perfsuite.tensorrt]
trtexec = "{trtexec}"

[tool.perfsuite.gate]
max_increase = 0.6
tail_max_increase = 0.7

[[tool.perfsuite.models]]
name = "tiny"
factory = "nano_models:tiny"
input_shape = [1, 3, 16, 16]
'''
ARGS = ("-p", "no:cacheprovider", "-rs", "--perf-suite=only", "--perf-machine-key=nano-test",
        "--benchmark-timer=nano_models.virtual_clock", "-k", "test_latency or test_size")


def python36() -> str:
    found = os.environ.get(PY36_ENV, "")
    if found:
        return found
    if os.environ.get("PERFSUITE_REQUIRE_PY36") == "1":
        pytest.fail(f"{PY36_ENV} is not set: .ci/run makes a Python 3.6 with torch 1.10.2")
    pytest.skip(f"{PY36_ENV} is not set (a Python 3.6 with PyPI's torch 1.10.2; .ci/run makes "
                "one): JetPack 4.6's interpreter is not simulated")


@pytest.fixture
def nano(pytester, tmp_path, monkeypatch):
    """A project on a fake JetPack 4.6 Nano with trtexec 8.2.3 (JetPack 4.6.1's TensorRT)."""
    pytester.makepyfile(nano_models=NANO_MODELS)
    trtexec = tmp_path / "bin" / "trtexec"
    trtexec.parent.mkdir()
    trtexec.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_TRTEXEC}" '
                       '--fake-version=8.2.3 "$@"\n')
    trtexec.chmod(0o755)
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PERFSUITE_SYSFS_ROOT", str(write_board("nano", tmp_path / "nano")))
    monkeypatch.setenv("FAKE_TRTEXEC_COMPUTE_MS", "5.0")
    monkeypatch.delenv("CI", raising=False)
    return pytester, trtexec


def configure(project, trtexec: Path, python: str) -> None:
    project.makefile(".toml", pyproject=CONFIG.format(python=python, trtexec=trtexec))


@pytest.mark.skipif(not glob.glob("/root/.pyenv/versions/3.6.*/bin/python3.6")
                    and not os.environ.get(PY36_ENV), reason="no Python 3.6 interpreter here")
def test_the_worker_script_is_valid_python_36():
    python = os.environ.get(PY36_ENV) or sorted(glob.glob(
        "/root/.pyenv/versions/3.6.*/bin/python3.6"))[-1]
    done = subprocess.run([python, "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())",
                           str(WORKER)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_torch_rows_from_a_worker_under_this_interpreter(nano):
    """The protocol end to end without Python 3.6: the worker runs under this interpreter."""
    project, trtexec = nano
    configure(project, trtexec, sys.executable)
    result = project.runpytest_subprocess(*ARGS, "--perf-backends=torch",
                                          "--perf-precisions=fp32", "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    version = ".".join(map(str, sys.version_info[:3]))
    result.stdout.fnmatch_lines([f"torch*fp32*cpu*2.000*2.000*n/a*reference*Python {version} "
                                 "worker, torch *"])
    (bench,) = json.loads((project.path / "out.json").read_text())["benchmarks"][:1]
    assert bench["extra_info"]["session"]["interpreter"] == sys.executable


def test_a_worker_interpreter_that_is_not_a_program_is_a_usage_error(nano, tmp_path):
    project, trtexec = nano
    configure(project, trtexec, str(tmp_path / "python3.6"))
    result = project.runpytest_subprocess(*ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*torch.python | *python3.6' is not an executable file.*",
                                 "*Remedy: give the interpreter that has the torch to measure*"])


def test_a_worker_without_torch_skips_its_rows_saying_why(nano, tmp_path):
    project, trtexec = nano
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -I "$@"\n')  # no site-packages
    bare.chmod(0o755)
    configure(project, trtexec, str(bare))
    result = project.runpytest_subprocess(*ARGS, "--perf-backends=torch", "--perf-precisions=fp32")
    result.stdout.fnmatch_lines(["SKIPPED*tiny-torch-fp32*torch worker * | describe: "
                                 "ModuleNotFoundError: No module named 'torch'*"])
    assert "Traceback" not in result.stdout.str()


def test_the_blogs_nano_table_on_jetpack_46(nano, monkeypatch):
    """The blog's three rows: torch fp32 and fp16 from JetPack 4.6's Python 3.6 (torch 1.10.2,
    CPU here; fp16 convolutions do not run on a CPU in 1.10: skipped, saying so), and trtexec's
    fp16 engine; then a stored baseline gates a second run."""
    python = python36()
    project, trtexec = nano
    configure(project, trtexec, python)
    first = project.runpytest_subprocess(*ARGS, "--perf-save-baseline")
    first.stdout.fnmatch_lines([
        "perfsuite results: tiny*",
        "torch*fp32*cpu*2.000*2.000*n/a*reference*Python 3.6.* worker, torch 1.10.2*",
        "trtexec*fp16*cpu*5.070*5.070*5.000*",
    ])
    first.stdout.fnmatch_lines(["SKIPPED*tiny-torch-fp16*torch worker*run: RuntimeError: "
                                "*not implemented for 'Half'*"])
    assert first.ret == pytest.ExitCode.OK
    second = project.runpytest_subprocess(*ARGS)
    assert second.ret == pytest.ExitCode.OK
    second.stdout.fnmatch_lines(["torch*fp32*2.000*Python 3.6.* worker*x1.000 ok*",
                                 "trtexec*fp16*5.070*x1.000 ok*"])
    assert "REGRESSED" not in second.stdout.str()
    monkeypatch.setenv("NANO_SPIN_MS", "8")  # the worker's model 4x slower: the gate fails it
    third = project.runpytest_subprocess(*ARGS)
    assert third.ret == pytest.ExitCode.TESTS_FAILED
    third.stdout.fnmatch_lines(["*tiny-torch-fp32 median end to end REGRESSED: 8 ms vs baseline "
                                "2 ms (x4.000*"])


@pytest.fixture(autouse=True)
def _no_stray_workers():
    yield
    leftover = shutil.which("pgrep") and subprocess.run(
        ["pgrep", "-f", str(WORKER)], capture_output=True, text=True, check=False).stdout.split()
    assert not leftover, f"torch workers left running: {leftover}"


@pytest.mark.parametrize(("setting", "has_cuda", "device"), [
    ("auto", True, "cuda"),  # a Nano: this process's torch is PyPI's CPU build, the worker's CUDA
    ("auto", False, "cpu"), ("cpu", True, "cpu"), ("cuda", True, "cuda"),
])
def test_the_worker_runs_where_its_own_torch_can(setting, has_cuda, device):
    from perfsuite.backends.torch_worker import worker_device

    assert worker_device(setting, has_cuda, "/usr/bin/python3.6") == device


def test_a_cuda_run_with_a_worker_torch_without_cuda_is_unavailable():
    from perfsuite.backends.torch_worker import worker_device
    from perfsuite.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match=r"torch worker's torch .* has no CUDA"):
        worker_device("cuda", False, "/usr/bin/python3.6")


def test_bf16_is_not_asked_of_the_worker(nano):
    project, trtexec = nano
    configure(project, trtexec, sys.executable)
    result = project.runpytest_subprocess(*ARGS, "--perf-backends=torch", "--perf-precisions=bf16")
    result.stdout.fnmatch_lines(["SKIPPED*tiny-torch-bf16*bf16 is not run by the torch worker "
                                 "(*); it runs fp32, fp16*"])
