"""The trtexec backend against tests/fakes/trtexec.py, which accepts exactly the flags of each
TensorRT version's trtexec and writes its JSON formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perfsuite.backends.tensorrt.trtexec_flags import TrtexecVersion

REPO = Path(__file__).resolve().parents[4]
FAKE = REPO / "tests" / "fakes" / "trtexec.py"
VERSIONS = ["8.2.3", "8.5.3", "8.6.1", "10.16.0"]


def fake_trtexec(folder: Path, version: str) -> Path:
    """An executable `trtexec` that is the fake at `version`."""
    path = folder / f"trtexec-{version}" / "trtexec"
    path.parent.mkdir(parents=True)
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" --fake-version={version} "$@"\n')
    path.chmod(0o755)
    return path


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
