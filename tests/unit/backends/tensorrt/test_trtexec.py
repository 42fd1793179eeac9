"""The trtexec backend against tests/fakes/trtexec.py, which accepts exactly the flags of each
TensorRT version's trtexec and writes its JSON formats."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import TINY_CONFIG

from perfsuite.backends.tensorrt.trtexec_flags import TrtexecVersion

REPO = Path(__file__).resolve().parents[4]
FAKE = REPO / "tests" / "fakes" / "trtexec.py"
VERSIONS = ["8.2.3", "8.5.3", "8.6.1", "10.16.0"]
OPSET = {"8.2.3": 13, "8.5.3": 16, "8.6.1": 17, "10.16.0": 17}  # what each version's parser reads


def fake_trtexec(folder: Path, version: str) -> Path:
    """An executable `trtexec` that is the fake at `version`."""
    path = folder / f"trtexec-{version}" / "trtexec"
    path.parent.mkdir(parents=True)
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" --fake-version={version} "$@"\n')
    path.chmod(0o755)
    return path


def trtexec_config(program: Path) -> str:
    return TINY_CONFIG + f'\n[tool.perfsuite.tensorrt]\ntrtexec = "{program}"\n'


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    pytester.makeini("[pytest]\naddopts = -ra -p no:cacheprovider\n")
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_TRTEXEC_COMPUTE_MS", "2.5")
    return pytester


@pytest.mark.parametrize("version", VERSIONS)
def test_latency_agreement_drift_and_size_rows_through_trtexec(project, tmp_path, version):
    program = fake_trtexec(tmp_path, version)
    project.makefile(".toml", pyproject=trtexec_config(program))
    result = project.runpytest_subprocess("--perf-backends=torch,trtexec", "--perf-suite=only",
                                          "-k", "not trt_selftest")
    result.assert_outcomes(passed=15)  # torch fp32/fp16 and trtexec fp32/fp16, every test
    result.stdout.fnmatch_lines([f"*exporting tiny fp32 to ONNX (torchscript, opset {OPSET[version]})*",
                                 f"*building a TensorRT {version} engine with trtexec (*"])
    # end to end = H2D 0.05 + compute 2.5 + D2H 0.02 ms; GPU compute 2.5 ms, from --exportTimes
    result.stdout.fnmatch_lines(["trtexec*fp32*cpu*2.570*2.570*2.500*",
                                 "trtexec*fp16*cpu*2.570*2.570*2.500*"])
    again = project.runpytest_subprocess("--perf-backends=trtexec", "--perf-suite=only",
                                         "-k", "test_latency")
    again.stdout.fnmatch_lines(["*reusing cached trtexec engine*"])
    assert "building a TensorRT" not in again.stdout.str()


@pytest.mark.parametrize(("version", "flag", "accepted"), [
    ("10.16.0", "--explicitBatch", False), ("10.16.0", "--workspace=16", False),
    ("10.16.0", "--buildOnly", False), ("8.2.3", "--skipInference", False),
    ("8.2.3", "--memPoolSize=workspace:16", False), ("8.5.3", "--skipInference", False),
    ("8.5.3", "--workspace=16", True), ("8.6.1", "--buildOnly", True),
    ("10.16.0", "--stronglyTyped", True), ("8.6.1", "--stronglyTyped", False),
])
def test_the_fake_accepts_exactly_each_versions_flags(tmp_path, version, flag, accepted):
    done = subprocess.run([str(fake_trtexec(tmp_path, version)), flag, "--help"],
                          capture_output=True, text=True, check=False)
    assert (done.returncode == 0) == accepted, done.stderr
    if not accepted:
        assert f"Unknown option: {flag.split('=')[0]}" in done.stderr


@pytest.mark.parametrize(("banner", "version"), [
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v8203] # trtexec", (8, 2, 3)),
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # trtexec", (8, 6, 1)),
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec", (10, 3, 0)),
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v101600] [b72] # trtexec", (10, 16, 0)),
    ("[TensorRT v9001]", (9, 0, 1)), ("[TensorRT v100000]", (10, 0, 0)),
    ("[TensorRT v110400]", (11, 4, 0)),
])
def test_versions_are_read_from_the_banner(banner, version):
    assert TrtexecVersion.from_banner(banner) == TrtexecVersion(*version)


def test_output_without_a_banner_is_named():
    with pytest.raises(ValueError) as raised:
        TrtexecVersion.from_banner("trtexec: command not found")
    assert str(raised.value) == "no '[TensorRT vNNNN]' banner in its output"


@pytest.mark.parametrize("version", VERSIONS)
def test_every_flag_perfsuite_passes_is_one_the_version_takes(tmp_path, version):
    program = fake_trtexec(tmp_path, version)
    parsed = TrtexecVersion(*map(int, version.split(".")))
    inputs = tmp_path / "i.bin"  # the fake checks values too: --loadInputs names a file
    inputs.write_bytes(b"\0" * 16)
    flags = [*parsed.build_flags(Path("m.onnx"), Path("e.plan"), "fp16", 64, Path("t.cache")),
             *parsed.timing_flags(Path("e.plan"), "input", inputs, Path("t.json"), 10,
                                  0.5, cuda_graph=True),
             *parsed.output_flags(Path("e.plan"), "input", inputs, Path("o.json"))]
    names = sorted({flag.split("=")[0] for flag in flags})
    done = subprocess.run([str(program), *names_with_values(flags, names), "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def names_with_values(flags: list[str], names: list[str]) -> list[str]:
    """One of each flag (trtexec reads each once; a repeated flag is an unknown option)."""
    return [next(f for f in flags if f.split("=")[0] == name) for name in names]


def test_without_trtexec_its_cases_skip_saying_where_it_was_looked_for(project, monkeypatch):
    project.makefile(".toml", pyproject=TINY_CONFIG)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = project.runpytest_subprocess("--perf-backends=torch,trtexec", "--perf-suite=only",
                                          "-k", "test_latency")
    result.stdout.fnmatch_lines(["SKIPPED*tiny-trtexec-fp32*trtexec not found on PATH or at "
                                 "/usr/src/tensorrt/bin/trtexec*[[]tool.perfsuite.tensorrt[]]*"])


def test_a_configured_trtexec_that_is_not_a_program_is_a_usage_error(project, tmp_path):
    project.makefile(".toml", pyproject=trtexec_config(tmp_path / "nope"))
    result = project.runpytest_subprocess("--perf-suite=only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tensorrt.trtexec*is not an executable file*"])


def test_the_fakes_parsers_refuse_what_the_real_ones_cannot_read(tmp_path):
    """8.2 reads opsets up to 13, 8.5 cannot import LayerNormalization: the fake fails as they
    do, so an export at the wrong opset would fail these tests."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [4], [1.0] * 4)
    graph = helper.make_graph([helper.make_node("LayerNormalization", ["input", "scale"],
                                                ["output"])], "ln", [x], [y], [scale])
    path = tmp_path / "ln.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    for version, accepted in (("8.2.3", False), ("8.5.3", False), ("8.6.1", True)):
        done = subprocess.run([str(fake_trtexec(tmp_path, version)), f"--onnx={path}",
                               f"--saveEngine={tmp_path / version}.plan", "--skipInference"
                               if version >= "8.6" else "--buildOnly"],
                              capture_output=True, text=True, check=False)
        assert (done.returncode == 0) == accepted, (version, done.stderr)


def test_the_selftest_checks_the_trtexec_route(project, tmp_path):
    program = fake_trtexec(tmp_path, "8.2.3")
    project.makefile(".toml", pyproject=trtexec_config(program))
    result = project.runpytest_subprocess("-m", "trt_selftest", "--perf-backends=torch,trtexec",
                                          "--perf-suite=only")
    result.assert_outcomes(passed=1, skipped=1)  # the in-process route is not configured
    result.stdout.fnmatch_lines(["*tensorrt is not among this run's backends (torch, trtexec)*"])
    project.makefile(".toml", pyproject=TINY_CONFIG)  # no trtexec configured, none on PATH
    missing = project.runpytest_subprocess("-m", "trt_selftest", "--perf-backends=torch,trtexec",
                                           "--perf-suite=only")
    assert missing.ret == pytest.ExitCode.TESTS_FAILED
    missing.stdout.fnmatch_lines(["tiny-trtexec-fp32: TensorRT cannot run here: trtexec not found*",
                                  "Fix: install TensorRT (JetPack ships /usr/src/tensorrt/bin/trtexec)*"])


def _export_times(start_ms: float, enqueue_ms: float, monkeypatch) -> list[dict[str, float]]:
    """--exportTimes records as the fake writes them (trtexec's 6 significant digits), read back."""
    sys.path.insert(0, str(FAKE.parent))
    try:
        import trtexec as fake
    finally:
        sys.path.remove(str(FAKE.parent))
    monkeypatch.setenv("FAKE_TRTEXEC_START_MS", str(start_ms))
    monkeypatch.setenv("FAKE_TRTEXEC_ENQUEUE_MS", str(enqueue_ms))
    text = "[" + ", ".join(fake.ostream_record(r) for r in fake.times(50, 0, (10, 3, 0))) + "]"
    return json.loads(text)


@pytest.mark.parametrize(("start_ms", "true_ms", "read"), [
    (100.0, 0.03, 0.03),  # 100.03 is written in full: the enqueue is read exactly
    (12_000.0, 2.0, 2.0),  # a 0.1 ms step is fine for 2 ms
    (12_000.0, 0.03, "step by 0.1 ms at 12 s"),  # 12000.03 is written 12000: 0.0 or 0.1
    (120_000.0, 0.3, "step by 1 ms at 120 s"),  # 120000.3 is written 120000
])
def test_enqueue_times_are_true_or_coarse_never_zero(monkeypatch, start_ms, true_ms, read):
    from perfsuite.backends.tensorrt.trtexec import enqueue_times

    records = _export_times(start_ms, true_ms, monkeypatch)
    enqueue_s, note = enqueue_times(records, f"[I] Enqueue Time: min = {true_ms} ms, max = "
                                             f"{true_ms} ms, mean = {true_ms} ms, median = "
                                             f"{true_ms} ms, percentile(90%) = {true_ms} ms")
    if isinstance(read, float):
        assert note == "" and enqueue_s is not None
        assert {round(s * 1e3, 9) for s in enqueue_s} == {read}
    else:
        assert enqueue_s is None
        assert note.startswith("enqueue coarse: not reported per inference") and read in note
        assert f"trtexec's own summary: enqueue median {true_ms} ms" in note


@pytest.mark.parametrize(("start_ms", "step"), [(12_000, "0.1 ms at 12 s"),
                                                 (120_000, "1 ms at 120 s")])
def test_a_run_late_in_trtexecs_clock_reports_enqueue_coarse(project, tmp_path, monkeypatch,
                                                             start_ms, step):
    program = fake_trtexec(tmp_path, "10.16.0")
    project.makefile(".toml", pyproject=trtexec_config(program))
    monkeypatch.setenv("FAKE_TRTEXEC_START_MS", str(start_ms))
    monkeypatch.setenv("FAKE_TRTEXEC_ENQUEUE_MS", "0.03")
    result = project.runpytest_subprocess("--perf-backends=trtexec", "--perf-precisions=fp32",
                                          "--perf-suite=only", "-k", "test_latency",
                                          "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["trtexec*fp32*2.570*2.500*enqueue coarse*",
                                 f"*tiny-trtexec-fp32: enqueue coarse: not reported per "
                                 f"inference; trtexec's --exportTimes timestamps step by {step}*"])
    (record,) = json.loads((project.path / "bench.json").read_text())["benchmarks"]
    assert "enqueue_latency" not in record["extra_info"]  # not a number made of the step
    assert record["extra_info"]["gpu_latency"]["median_ms"] == pytest.approx(2.5)


@pytest.mark.parametrize(("flag", "version"), [
    ("--memPoolSize=workspace=1024", "10.16.0"),  # '=' where trtexec splits at ':'
    ("--memPoolSize=tacticSharedMem:64", "8.5.3"),  # a pool 8.5 does not have
    ("--inputIOFormats=fp32:nchw", "8.6.1"), ("--inputIOFormats=bf16:chw", "8.6.1"),
    ("--iterations=ten", "8.2.3"), ("--warmUp=-5", "10.16.0"),
    ("--loadInputs=input.bin", "8.6.1"),  # no tensor name
])
def test_the_fake_refuses_values_trtexec_refuses(tmp_path, flag, version):
    done = subprocess.run([str(fake_trtexec(tmp_path, version)), flag, "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and f"Invalid value for {flag.split('=')[0]}" in done.stderr


@pytest.mark.parametrize(("version", "fields"), [
    ((7, 0, 0), None), ((7, 1, 3), ("startInMs", "endInMs")), ((8, 0, 1), ("startEnqMs", "endEnqMs")),
    ((10, 3, 0), ("startEnqMs", "endEnqMs")),
])
def test_enqueue_is_read_where_each_version_wrote_it(version, fields):
    from perfsuite.backends.tensorrt.trtexec import enqueue_fields, enqueue_times

    assert enqueue_fields(TrtexecVersion(*version)) == fields
    # 7.1's record: its enqueue (0.02 ms) under startInMs/endInMs, the copy's (0.5 ms) under Enq
    record = {"startEnqMs": 10.0, "endEnqMs": 10.5, "startInMs": 10.0, "endInMs": 10.02,
              "computeMs": 1.0, "latencyMs": 1.5}
    enqueue_s, note = enqueue_times([record] * 3, "", enqueue_fields(TrtexecVersion(*version)))
    if fields is None:
        assert enqueue_s is None and "has no enqueue times" in note
    else:
        expected = 0.02 if fields[0] == "startInMs" else 0.5
        assert enqueue_s == pytest.approx((expected / 1e3,) * 3) and note == ""
