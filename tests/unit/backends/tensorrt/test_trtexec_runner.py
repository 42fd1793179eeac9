"""The trtexec backend in this process: every command line it gives trtexec and every number it
reads back. The fake trtexec (tests/fakes/trtexec.py) runs here in place of `subprocess.run`, so
a test sees the exact arguments, timeouts and keywords (test_trtexec.py runs it as a program)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from fakes import trtexec as fake
from tiny_run import tiny_perf_run

import perfsuite.backends.tensorrt.trtexec as backend_module
from perfsuite.backends.base import BackendOptions, ToolTimings
from perfsuite.backends.tensorrt.engine import EngineBuildError, onnx_digest
from perfsuite.backends.tensorrt.trtexec import (
    JETPACK_TRTEXEC,
    NOT_FOUND,
    TrtexecBackend,
    enqueue_times,
    find_trtexec,
    read_version,
    timestamp_resolution_ms,
)
from perfsuite.backends.tensorrt.trtexec_flags import TrtexecVersion
from perfsuite.errors import BackendUnavailable
from perfsuite.run.workshop import PerfRun

VERSIONS = {"8.2.3": "--buildOnly", "8.5.3": "--buildOnly", "8.6.1": "--skipInference",
            "10.16.0": "--skipInference"}
WORKSPACE = {"8.2.3": "--workspace=", "8.5.3": "--memPoolSize=workspace:",
             "8.6.1": "--memPoolSize=workspace:", "10.16.0": "--memPoolSize=workspace:"}
OPSET = {"8.2.3": 13, "8.5.3": 16, "8.6.1": 17, "10.16.0": 17}


class InProcessTrtexec:
    """`subprocess.run` for one trtexec program: checks how perfsuite calls it, runs the fake at
    `version` here, and keeps each call's arguments and timeout."""

    def __init__(self, program: Path, version: str) -> None:
        self.program, self.version = program, version
        self.calls: list[tuple[list[str], float]] = []
        self.after = lambda options: None  # changes what a call left behind, by its options
        self.fails = lambda options: False  # a call that exits 1, by its options

    def __call__(self, argv, *, capture_output, text, timeout, check):
        assert (capture_output, text, check) == (True, True, False)
        assert argv[0] == str(self.program), argv
        self.calls.append((list(argv[1:]), timeout))
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = fake.main([f"--fake-version={self.version}", *argv[1:]])
            except SystemExit as exc:
                code = int(exc.code or 0)
        options = dict(a[2:].partition("=")[::2] for a in argv[1:])
        self.after(options)
        if self.fails(options):
            code = 1
            err.write("[E] failing as the test asked\n")
        return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def program_file(folder: Path) -> Path:
    path = folder / "bin" / "trtexec"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def perf(tmp_path):
    yield from tiny_perf_run(tmp_path)


def install(monkeypatch, tmp_path, version: str) -> InProcessTrtexec:
    shim = InProcessTrtexec(program_file(tmp_path), version)
    monkeypatch.setattr(backend_module, "subprocess", SimpleNamespace(
        run=shim, TimeoutExpired=subprocess.TimeoutExpired))
    monkeypatch.setenv("FAKE_TRTEXEC_COMPUTE_MS", "2.5")
    return shim


def backend(perf: PerfRun, shim: InProcessTrtexec, messages: list[str], **options) -> TrtexecBackend:
    return TrtexecBackend(BackendOptions(trtexec=str(shim.program), cache=perf.cache,
                                         progress=messages.append, **options))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_engine_is_built_with_each_versions_flags_and_cached_by_its_recipe(
        perf, tmp_path, monkeypatch, version, precision):
    shim, messages = install(monkeypatch, tmp_path, version), []
    runner = backend(perf, shim, messages).prepare(perf.config.model("tiny"),
                                                  perf.artifacts("tiny"), precision, "cpu")
    onnx = perf.artifacts("tiny").onnx("fp32", OPSET[version])
    timing_cache = perf.cache.root / "trtexec" / f"timing-{version}.cache"
    recipe = ["--fp16"] * (precision == "fp16") + [
        "--inputIOFormats=fp32:chw", "--outputIOFormats=fp32:chw", f"{WORKSPACE[version]}1024"]
    (engine,) = (perf.cache.root / "trtexec").glob(f"tiny-{precision}-*/model.plan")
    assert shim.calls[0] == (["--help"], 60)
    assert shim.calls[1][0][0] == f"--onnx={onnx.path}"
    assert shim.calls[1][0][1].startswith(f"--saveEngine={engine.parent.parent}/.{engine.parent.name}.")
    assert shim.calls[1][0][1].endswith("/model.plan")
    assert shim.calls[1] == ([*shim.calls[1][0][:2], VERSIONS[version],
                              f"--timingCacheFile={timing_cache}", *recipe], 3 * 3600)
    assert len(shim.calls) == 2
    announced = (f"building a TensorRT {version} engine with trtexec ({' '.join(recipe)}) "
                 f"from {onnx.path.name}")
    assert messages[0] == f"{announced} ..." and len(messages) == 2
    assert messages[1].startswith(f"{announced}: done in")
    key = json.loads((engine.parent / "perfsuite-entry.json").read_text())
    assert key == {"onnx_sha256": onnx_digest(onnx), "trtexec": version,
                   "recipe": " ".join(recipe), "l4t": "", "board": ""}
    assert timing_cache.read_bytes() == b"fake timing cache"
    assert runner.artifact_bytes == engine.stat().st_size > 0
    assert runner.timed_by_tool and runner.input_shape == (1, 3, 16, 16)
    assert runner.case.id == f"tiny-trtexec-{precision}" and runner.case.device == "cpu"
    assert runner.describe() == {"runtime": f"TensorRT {version} (trtexec)",
                                 "recipe": " ".join(recipe), "cuda_graph": "off",
                                 "buffers": "trtexec", "engine": "model.plan"}
    runner.close()

    more: list[str] = []
    again = backend(perf, shim, more)
    again.prepare(perf.config.model("tiny"), perf.artifacts("tiny"), precision, "cpu").close()
    assert shim.calls[2:] == [(["--help"], 60)]  # no second build
    assert more == [f"reusing cached trtexec engine {engine}"]


def test_the_workspace_is_whole_mib_at_least_one_and_a_new_one_is_a_new_engine(
        perf, tmp_path, monkeypatch):
    shim = install(monkeypatch, tmp_path, "10.16.0")
    for workspace in (1 << 19, 3 << 20, 3 << 20):
        backend(perf, shim, [], trt_workspace_bytes=workspace).prepare(
            perf.config.model("tiny"), perf.artifacts("tiny"), "fp32", "cpu").close()
    builds = [args for args, _ in shim.calls if args[0].startswith("--onnx=")]
    assert [b[-1] for b in builds] == ["--memPoolSize=workspace:1", "--memPoolSize=workspace:3"]
    assert len(list((perf.cache.root / "trtexec").glob("tiny-fp32-*/model.plan"))) == 2


def test_an_empty_engine_file_is_rebuilt(perf, tmp_path, monkeypatch):
    shim = install(monkeypatch, tmp_path, "8.6.1")
    make = backend(perf, shim, [])
    make.prepare(perf.config.model("tiny"), perf.artifacts("tiny"), "fp32", "cpu").close()
    (engine,) = (perf.cache.root / "trtexec").glob("tiny-fp32-*/model.plan")
    engine.write_bytes(b"")
    with pytest.warns(UserWarning, match="the engine file is empty"):
        make.prepare(perf.config.model("tiny"), perf.artifacts("tiny"), "fp32", "cpu").close()
    assert engine.stat().st_size > 0
    assert sum(args[0].startswith("--onnx=") for args, _ in shim.calls) == 2


def test_a_build_that_leaves_an_empty_engine_fails(perf, tmp_path, monkeypatch):
    shim = install(monkeypatch, tmp_path, "8.6.1")
    shim.after = lambda options: options.get("saveEngine") and Path(
        options["saveEngine"]).write_bytes(b"")
    with pytest.raises(ValueError, match=r"^the engine file is empty$"):
        backend(perf, shim, []).prepare(perf.config.model("tiny"), perf.artifacts("tiny"),
                                        "fp32", "cpu")


@pytest.mark.parametrize(("version", "precision"), [("8.2.3", "fp32"), ("10.16.0", "fp16")])
def test_run_feeds_perfsuites_input_and_reads_trtexecs_output(perf, tmp_path, monkeypatch,
                                                              version, precision):
    shim = install(monkeypatch, tmp_path, version)
    runner = backend(perf, shim, []).prepare(perf.config.model("tiny"), perf.artifacts("tiny"),
                                             precision, "cpu")
    inputs = perf.inputs("tiny")[0]
    outputs = runner.run(inputs)
    args, timeout = shim.calls[-1]
    (engine,) = (perf.cache.root / "trtexec").glob(f"tiny-{precision}-*/model.plan")
    folder = Path(args[1].split(":", 1)[1]).parent
    assert args == [f"--loadEngine={engine}", f"--loadInputs=input:{folder}/input.bin",
                    "--iterations=1", "--warmUp=0", "--duration=0",
                    f"--exportOutput={folder}/output.json"] and timeout == 600
    assert np.fromfile(folder / "input.bin", dtype=np.float32).tolist() == \
        inputs.astype(np.float32).ravel().tolist()
    _, expected = fake.run_onnx(perf.artifacts("tiny").onnx("fp32", OPSET[version]).path
                                .read_bytes(), inputs, precision == "fp16")
    assert outputs.dtype == np.float32 and outputs.shape == (1, 10)
    assert outputs.tolist() == expected.tolist()
    torch_out = perf.outputs(perf.case("tiny", "torch", "fp32"))[0]
    assert np.abs(outputs - torch_out).max() < (1e-2 if precision == "fp16" else 1e-4)
    runner.close()
    assert runner.closed and not folder.exists()


@pytest.mark.parametrize(("version", "cuda_graph", "rounds", "warmup_s", "timeout"), [
    ("8.2.3", False, 5, 0.2, 600.0), ("10.16.0", True, 3, 75.0, 750.0),
])
def test_tool_timings_are_trtexecs_per_inference_records(perf, tmp_path, monkeypatch, version,
                                                         cuda_graph, rounds, warmup_s, timeout):
    shim = install(monkeypatch, tmp_path, version)
    runner = backend(perf, shim, [], trt_cuda_graph=cuda_graph).prepare(
        perf.config.model("tiny"), perf.artifacts("tiny"), "fp32", "cpu")
    timings = runner.tool_timings(perf.inputs("tiny")[0], rounds, warmup_s)
    args, used = shim.calls[-1]
    folder = Path(args[1].split(":", 1)[1]).parent
    (engine,) = (perf.cache.root / "trtexec").glob("tiny-fp32-*/model.plan")
    assert args == [f"--loadEngine={engine}", f"--loadInputs=input:{folder}/input.bin",
                    f"--iterations={rounds}", f"--warmUp={round(warmup_s * 1e3)}",
                    "--duration=0", f"--exportTimes={folder}/times.json",
                    *["--useCudaGraph"] * cuda_graph]
    assert used == timeout
    # the fake: H2D 0.05 + compute 2.5 + D2H 0.02 ms; enqueue 0.1 ms (8.2 lists warm-up too)
    assert timings == ToolTimings(e2e_s=(0.00257,) * rounds, gpu_s=(0.0025,) * rounds,
                                  enqueue_s=(0.0001,) * rounds, notes=())
    assert runner.describe()["cuda_graph"] == ("on" if cuda_graph else "off")
    runner.close()


def test_fewer_inferences_than_asked_is_an_error(perf, tmp_path, monkeypatch):
    shim = install(monkeypatch, tmp_path, "8.6.1")
    runner = backend(perf, shim, []).prepare(perf.config.model("tiny"), perf.artifacts("tiny"),
                                             "fp32", "cpu")

    def drop_one(options):
        if "exportTimes" in options:
            path = Path(options["exportTimes"])
            path.write_text(json.dumps(json.loads(path.read_text())[1:]))

    shim.after = drop_one
    with pytest.raises(EngineBuildError) as caught:
        runner.tool_timings(perf.inputs("tiny")[0], 4, 0.0)
    assert str(caught.value) == ("tiny-trtexec-fp32 | trtexec timed 3 inferences, 4 were asked "
                                 "for.")
    runner.close()


def test_a_coarse_enqueue_is_a_note_not_numbers(perf, tmp_path, monkeypatch):
    shim = install(monkeypatch, tmp_path, "10.16.0")
    monkeypatch.setenv("FAKE_TRTEXEC_START_MS", "12000")
    monkeypatch.setenv("FAKE_TRTEXEC_ENQUEUE_MS", "0.03")
    runner = backend(perf, shim, []).prepare(perf.config.model("tiny"), perf.artifacts("tiny"),
                                             "fp32", "cpu")
    timings = runner.tool_timings(perf.inputs("tiny")[0], 3, 0.0)
    assert timings.enqueue_s is None and timings.gpu_s == (0.0025,) * 3
    (note,) = timings.notes
    assert note.startswith("enqueue coarse: not reported per inference; trtexec's "
                           "--exportTimes timestamps step by 0.1 ms at 12 s into its run")
    runner.close()


def test_a_failing_trtexec_is_quoted_with_its_command(perf, tmp_path, monkeypatch):
    shim = install(monkeypatch, tmp_path, "8.2.3")
    onnx = perf.artifacts("tiny").onnx("fp32", 17)  # 8.2's parser reads up to opset 13
    with pytest.raises(EngineBuildError) as caught:
        backend_module.call(shim.program, [f"--onnx={onnx.path}", "--buildOnly"], "engine build",
                            timeout=5)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"trtexec {shim.program} | engine build failed (exit 1):"
    assert lines[1].endswith("ERROR: opset 17 is not supported by this parser (up to opset 13)")
    assert lines[2].startswith("&&&& RUNNING TensorRT.trtexec [TensorRT v8203] # trtexec --onnx=")
    assert lines[-1] == f"Command: trtexec --onnx={onnx.path} --buildOnly"
    assert shim.calls == [([f"--onnx={onnx.path}", "--buildOnly"], 5)]


def test_only_the_last_eight_lines_of_a_failure_are_quoted(tmp_path, monkeypatch):
    def noisy(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 3, "".join(f"out {i}\n" for i in range(10)),
                                           "err 0\nerr 1\n")

    monkeypatch.setattr(backend_module, "subprocess", SimpleNamespace(
        run=noisy, TimeoutExpired=subprocess.TimeoutExpired))
    with pytest.raises(EngineBuildError) as caught:
        backend_module.call(Path("/x/trtexec"), ["--a=1"], "what", timeout=1)
    assert str(caught.value).splitlines() == [
        "trtexec /x/trtexec | what failed (exit 3):", "out 2", "out 3", "out 4", "out 5",
        "out 6", "out 7", "out 8", "out 9", "Command: trtexec --a=1"]


@pytest.mark.parametrize("error", [OSError(8, "Exec format error"),
                                   subprocess.TimeoutExpired(["trtexec"], 60)])
def test_a_trtexec_that_cannot_start_or_hangs_is_an_engine_build_error(monkeypatch, error):
    def fails(argv, **kwargs):
        raise error

    monkeypatch.setattr(backend_module, "subprocess", SimpleNamespace(
        run=fails, TimeoutExpired=subprocess.TimeoutExpired))
    with pytest.raises(EngineBuildError) as caught:
        backend_module.call(Path("/x/trtexec"), ["--help"], "--help", timeout=60)
    assert str(caught.value) == f"trtexec /x/trtexec | --help: {error}"
    assert caught.value.__cause__ is error
    with pytest.raises(BackendUnavailable) as unusable:
        read_version(Path("/x/trtexec"))
    assert str(unusable.value) == (f"/x/trtexec does not run as trtexec: trtexec /x/trtexec | "
                                   f"--help: {error}")


def test_a_program_without_a_banner_is_not_trtexec(monkeypatch):
    monkeypatch.setattr(backend_module, "subprocess", SimpleNamespace(
        run=lambda argv, **kw: subprocess.CompletedProcess(argv, 0, "usage: cat\n", ""),
        TimeoutExpired=subprocess.TimeoutExpired))
    with pytest.raises(BackendUnavailable) as caught:
        read_version(Path("/bin/cat"))
    assert str(caught.value) == ("/bin/cat does not run as trtexec: no '[TensorRT vNNNN]' "
                                 "banner in its output")
    assert read_version.__module__ == "perfsuite.backends.tensorrt.trtexec"


def test_trtexec_is_the_configured_one_then_paths_then_jetpacks(tmp_path, monkeypatch):
    monkeypatch.setattr(backend_module.shutil, "which",
                        lambda name: "/opt/trt/bin/trtexec" if name == "trtexec" else None)
    assert find_trtexec("/my/trtexec") == Path("/my/trtexec")
    assert find_trtexec("") == Path("/opt/trt/bin/trtexec")
    monkeypatch.setattr(backend_module.shutil, "which", lambda name: None)
    asked: list[tuple[object, int]] = []

    def access(path, mode):
        asked.append((path, mode))
        return jetpack

    monkeypatch.setattr(backend_module.os, "access", access)
    for jetpack in (True, False):
        found = find_trtexec("")
        assert found == (JETPACK_TRTEXEC if jetpack else None)
    assert asked == [(JETPACK_TRTEXEC, backend_module.os.X_OK)] * 2
    assert JETPACK_TRTEXEC == Path("/usr/src/tensorrt/bin/trtexec")
    assert TrtexecBackend().available() == (False, NOT_FOUND)
    assert TrtexecBackend(BackendOptions(trtexec="/my/trtexec")).available() == (True, "")
    with pytest.raises(BackendUnavailable, match=r"^trtexec not found on PATH or at "):
        TrtexecBackend().prepare(None, None, "fp32", "cpu")


@pytest.mark.parametrize(("value", "step"), [
    (0.0, 0.0), (float("inf"), 0.0), (float("nan"), 0.0), (100.03, 1e-3), (99.99, 1e-4),
    (12000.03, 0.1), (-12000.0, 0.1), (120000.3, 1.0), (1.0, 1e-5), (0.5, 1e-6),
])
def test_the_step_of_a_timestamp_is_its_sixth_significant_digit(value, step):
    assert timestamp_resolution_ms(value) == pytest.approx(step, rel=1e-9)


def test_enqueue_times_round_to_their_step_and_need_both_fields():
    records = [{"startEnqMs": 10.0, "endEnqMs": 10.1234567}, {"startEnqMs": 20.0,
                                                              "endEnqMs": 20.25}]
    # steps of 1e-4 ms at 10 and 20 ms into the run: four decimals of a millisecond
    assert enqueue_times(records, "") == ((0.0001235, 0.00025), "")
    assert enqueue_times(records, "", ("startInMs", "endInMs")) == (
        None, "enqueue not reported: this trtexec's --exportTimes has no enqueue times")
    assert enqueue_times([records[0], {"startEnqMs": 1.0}], "")[0] is None
    assert enqueue_times(records, "", None)[0] is None


def test_a_coarse_enqueue_without_trtexecs_summary_says_only_the_step():
    records = [{"startEnqMs": 12000.0, "endEnqMs": 12000.0}, {"startEnqMs": 12000.1,
                                                              "endEnqMs": 12000.2}]
    enqueue_s, note = enqueue_times(records, "no summary here")
    assert enqueue_s is None
    assert note == ("enqueue coarse: not reported per inference; trtexec's --exportTimes "
                    "timestamps step by 0.1 ms at 12 s into its run (6 significant digits), "
                    "while their differences read 0.05 ms at the median")
    _, told = enqueue_times(records, "[I] Enqueue Time: min = 0.01 ms, max = 0.1 ms, mean = "
                                     "0.05 ms, median = 0.04 ms, percentile(90%) = 0.1 ms")
    assert told == note + " (trtexec's own summary: enqueue median 0.04 ms)"


def test_an_enqueue_of_exactly_a_tenth_of_the_step_is_still_reported():
    # step 1e-3 ms at 100 ms; a median of exactly 0.01 ms: COARSE_SHARE's boundary
    records = [{"startEnqMs": 100.0, "endEnqMs": 100.01}] * 3
    enqueue_s, note = enqueue_times(records, "")
    assert note == "" and enqueue_s == (1e-5,) * 3


def test_the_versions_flags_in_full():
    old, new = TrtexecVersion(8, 2, 3), TrtexecVersion(10, 16, 0)
    assert str(new) == "10.16.0" and TrtexecVersion.from_banner("[TensorRT v101600]") == new
    assert old.timing_flags(Path("/e"), "x", Path("/i.bin"), Path("/t.json"), 7, 0.0125, False) \
        == ["--loadEngine=/e", "--loadInputs=x:/i.bin", "--iterations=7", "--warmUp=12",
            "--duration=0", "--exportTimes=/t.json"]
    with pytest.raises(ValueError, match=r"cannot load inputs from /a:b/i\.bin"):
        old.output_flags(Path("/e"), "x", Path("/a:b/i.bin"), Path("/o.json"))
    with pytest.raises(ValueError, match="',' or ':' in the path"):
        old.output_flags(Path("/e"), "x", Path("/a,b/i.bin"), Path("/o.json"))


@pytest.mark.parametrize(("when", "what"), [("saveEngine", "engine build"),
                                            ("exportOutput", "tiny-trtexec-fp32 inference"),
                                            ("exportTimes", "tiny-trtexec-fp32 timing")])
def test_each_failing_call_says_what_it_was(perf, tmp_path, monkeypatch, when, what):
    shim = install(monkeypatch, tmp_path, "10.16.0")
    shim.fails = lambda options: when in options
    inputs = perf.inputs("tiny")[0]
    with pytest.raises(EngineBuildError) as raised:
        runner = backend(perf, shim, []).prepare(perf.config.model("tiny"),
                                                 perf.artifacts("tiny"), "fp32", "cpu")
        runner.run(inputs)
        runner.tool_timings(inputs, 2, 0.0)
    lines = str(raised.value).splitlines()
    assert lines[0] == f"trtexec {shim.program} | {what} failed (exit 1):"
    assert "[E] failing as the test asked" in lines[1:-1]


def test_the_engine_key_holds_the_gpu_but_not_its_driver(perf, tmp_path, monkeypatch):
    shim = install(monkeypatch, tmp_path, "10.16.0")
    monkeypatch.setattr(backend_module, "gpu_facts", lambda: {
        "gpu_name": "Orin (nvgpu)", "compute_capability": "8.7", "driver": "540.4"})
    runner = backend(perf, shim, []).prepare(perf.config.model("tiny"), perf.artifacts("tiny"),
                                             "fp32", "cpu")
    key = json.loads((runner._engine.parent / "perfsuite-entry.json").read_text())
    assert (key["gpu_name"], key["compute_capability"]) == ("Orin (nvgpu)", "8.7")
    assert "driver" not in key
    runner.close()


def test_a_runner_works_in_its_own_folder_and_closes_when_it_is_gone(perf, tmp_path, monkeypatch):
    shim = install(monkeypatch, tmp_path, "10.16.0")
    runner = backend(perf, shim, []).prepare(perf.config.model("tiny"), perf.artifacts("tiny"),
                                             "fp32", "cpu")
    folder = runner._folder
    assert folder.name.startswith("perfsuite-trtexec-") and folder.is_dir()
    runner.run(perf.inputs("tiny")[0].astype(np.float64))
    assert (folder / "input.bin").stat().st_size == perf.inputs("tiny")[0].size * 4
    shutil.rmtree(folder)
    runner.close()  # a folder someone removed is not an error
    assert runner.closed


def test_enqueue_times_of_a_run_that_starts_at_zero():
    assert enqueue_times([{"startEnqMs": 0.0, "endEnqMs": 0.0}], "") == ((0.0,), "")


def test_a_coarse_note_says_how_far_into_the_run_in_seconds():
    records = [{"startEnqMs": 1000000.0, "endEnqMs": 1000000.0}] * 3
    _, note = enqueue_times(records, "")
    assert " timestamps step by 10 ms at 1000 s into its run " in note
