"""A fake `trtexec` for tests without a GPU: `python trtexec.py --fake-version=8.2.3 [args]`.

It accepts exactly the flags the named TensorRT version's trtexec accepts (of those perfsuite
may use and their neighbours; read from samples/common/sampleOptions.cpp on each release branch of
NVIDIA/TensorRT) and parses them as trtexec does: `--flag=value` only, an unknown flag fails with
"[E] Unknown option: ..." and exit 1, a deprecated one warns. It writes the real JSON formats
(--exportTimes with 8.2's warm-up records and endToEndMs, --exportOutput, --exportProfile) and
the version banner of each release. The "engine" holds the ONNX bytes behind a header naming the
version and precision; inference runs it with ONNX Runtime (fp16 engines round their outputs
through float16). GPU compute is FAKE_TRTEXEC_COMPUTE_MS (default 1.0) per inference, exactly.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

BOOLEAN = {"fp16", "int8", "best", "useCudaGraph", "noDataTransfers", "separateProfileRun",
           "useSpinWait", "threads", "verbose", "noTF32", "dumpOutput", "allowGPUFallback",
           "explicitBatch", "buildOnly", "skipInference", "stronglyTyped", "help"}
COMMON = {"onnx", "saveEngine", "loadEngine", "fp16", "int8", "best", "inputIOFormats",
          "outputIOFormats", "timingCacheFile", "useCudaGraph", "noDataTransfers", "exportTimes",
          "exportProfile", "exportOutput", "exportLayerInfo", "loadInputs", "iterations", "warmUp",
          "duration", "avgRuns", "shapes", "minShapes", "optShapes", "maxShapes",
          "separateProfileRun", "useSpinWait", "threads", "verbose", "noTF32", "percentile",
          "profilingVerbosity", "dumpOutput", "allowGPUFallback", "device", "useDLACore", "help"}
# (accepted beyond COMMON, deprecated: accepted with a warning)
FLAGS = {
    (8, 2): ({"explicitBatch", "workspace", "streams", "buildOnly"}, {"explicitBatch"}),
    (8, 5): ({"explicitBatch", "workspace", "memPoolSize", "streams", "buildOnly"},
             {"explicitBatch", "workspace"}),
    (8, 6): ({"explicitBatch", "workspace", "memPoolSize", "streams", "infStreams", "buildOnly",
              "skipInference", "builderOptimizationLevel"},
             {"explicitBatch", "workspace", "streams", "buildOnly"}),
    (10, 0): ({"memPoolSize", "streams", "infStreams", "skipInference",
               "builderOptimizationLevel", "stronglyTyped"}, {"streams"}),
}
HEADER = b"FAKE-TRT-ENGINE\n"


def say(level: str, text: str) -> None:
    stream = sys.stderr if level in "WE" else sys.stdout
    stream.write(f"[11/24/2026-12:00:00] [{level}] {text}\n")


def banner(version: tuple[int, int, int]) -> str:
    major, minor, patch = version
    if major >= 10:
        return f"[TensorRT v{major * 10000 + minor * 100 + patch}] [b72]"
    return f"[TensorRT v{major * 1000 + minor * 100 + patch}]"


def parse(argv: list[str], version: tuple[int, int, int]) -> dict[str, str]:
    table = max(k for k in FLAGS if k <= version[:2])
    extra, deprecated = FLAGS[table]
    known = COMMON | extra
    options, unknown = {}, []
    for arg in argv:
        name, _, value = arg.partition("=")
        flag = name[2:] if name.startswith("--") else None
        if flag is None or flag not in known or flag in options:
            unknown.append((name, value))
            continue
        if flag not in BOOLEAN and not value:
            say("E", f"Invalid value for {name}")
            unknown.append((name, value))
            continue
        problem = value_problem(flag, value, version)
        if problem:
            say("E", f"Invalid value for {name}: {problem}")
            raise SystemExit(1)
        if flag in deprecated:
            say("W", f"--{flag} flag has been deprecated")
        options[flag] = value
    for name, value in unknown:
        say("E", f"Unknown option: {name} {value}")
    if unknown:
        raise SystemExit(1)
    return options


INTEGERS = {"iterations", "avgRuns", "streams", "infStreams", "workspace", "device",
            "builderOptimizationLevel"}
NUMBERS = {"warmUp", "duration"}  # milliseconds and seconds; trtexec reads them as numbers
IO_TYPES = {"fp32", "fp16", "int32", "int8", "bool", "uint8"}
IO_FORMATS = {"chw", "chw2", "chw4", "hwc8", "chw16", "chw32", "dhwc8", "cdhw32", "hwc",
              "dla_linear", "dla_hwc4", "hwc16", "dhwc"}
POOLS = {"workspace", "dlaSRAM", "dlaLocalDRAM", "dlaGlobalDRAM"}


def value_problem(flag: str, value: str, version: tuple[int, int, int]) -> str:
    """What is wrong with a flag's value as sampleOptions.cpp parses it ('' when fine)."""
    if flag in INTEGERS and not value.isdigit():
        return "expected a non-negative integer"
    if flag in NUMBERS:
        try:
            if float(value) < 0:
                return "expected a non-negative number"
        except ValueError:
            return "expected a number"
    if flag in ("inputIOFormats", "outputIOFormats"):
        for spec in value.split(","):
            kind, _, formats = spec.partition(":")
            extra = {"bf16"} if version >= (9, 0, 0) else set()
            if kind not in IO_TYPES | extra or not formats or \
                    not set(formats.split("+")) <= IO_FORMATS:
                return f"'{spec}' is not type:format (types {sorted(IO_TYPES | extra)})"
    if flag == "memPoolSize":
        pools = POOLS | ({"tacticSharedMem"} if version >= (8, 6, 0) else set())
        for spec in value.split(","):
            pool, _, size = spec.partition(":")
            number = size[:-1] if size[-1:] in ("K", "M", "G") else size
            if pool not in pools or not number.replace(".", "", 1).isdigit():
                return f"'{spec}' is not pool:size (pools {sorted(pools)})"
    if flag == "loadInputs":
        for spec in value.split(","):
            name, _, path = spec.rpartition(":")
            if not name or not os.path.isfile(path):
                return f"'{spec}' is not name:file of an existing file"
    return ""


def parses(onnx_bytes: bytes, version: tuple[int, int, int]) -> bool:
    """As each release's ONNX parser: 8.2 reads opsets up to 13; LayerNormalization (opset 17)
    is first imported by 8.6."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if version < (8, 4, 0) and opset > 13:
        say("E", f"[TRT] ModelImporter.cpp:720: ERROR: opset {opset} is not supported by this "
                 "parser (up to opset 13)")
        return False
    if version < (8, 6, 0) and any(n.op_type == "LayerNormalization" for n in model.graph.node):
        say("E", "[TRT] ModelImporter.cpp:726: ERROR: builtin_op_importers.cpp:4890 In function "
                 "importFallbackPluginImporter: [8] Assertion failed: creator && \"Plugin not "
                 "found, are the plugin name, version, and namespace correct?\" "
                 "(LayerNormalization)")
        return False
    return True


def run_onnx(onnx_bytes: bytes, data: np.ndarray | None, fp16: bool) -> tuple[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (first,) = session.get_inputs()
    shape = [int(d) for d in first.shape]
    if data is None:  # trtexec feeds random inputs unless told otherwise
        data = np.random.default_rng(0).uniform(-1, 1, size=shape).astype(np.float32)
    output = session.run(None, {first.name: data.reshape(shape)})[0]
    if fp16:
        output = output.astype(np.float16).astype(np.float32)
    return session.get_outputs()[0].name, output


def load_inputs(spec: str, onnx_bytes: bytes, version: tuple[int, int, int]) -> np.ndarray:
    import onnxruntime as ort

    name, _, path = spec.rpartition(":")
    (first,) = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"]).get_inputs()
    if name != first.name:
        say("E", f"Cannot find input tensor with name \"{name}\" in the engine bindings!")
        raise SystemExit(1)
    expected = 4 * int(np.prod([int(d) for d in first.shape]))
    size = os.path.getsize(path)
    if size != expected and version >= (8, 5, 0):
        say("E", f"Unexpected file size for input file: {path}. Note: Input binding size is: "
                 f"{expected} bytes but the file size is {size} bytes.")
        raise SystemExit(1)
    return np.fromfile(path, dtype=np.float32, count=expected // 4)


def times(count: int, warmup: int, version: tuple[int, int, int]) -> list[dict[str, float]]:
    """Records as trtexec times them: milliseconds since its run began (FAKE_TRTEXEC_START_MS
    where the first record starts), enqueue FAKE_TRTEXEC_ENQUEUE_MS (default 0.1) each."""
    compute = float(os.environ.get("FAKE_TRTEXEC_COMPUTE_MS", "1.0"))
    enqueue = float(os.environ.get("FAKE_TRTEXEC_ENQUEUE_MS", "0.1"))
    records, clock = [], float(os.environ.get("FAKE_TRTEXEC_START_MS", "100.0"))
    for _ in range(count + (warmup if version < (8, 5, 0) else 0)):
        enqueue_end, h2d_end = clock + enqueue, clock + 0.05
        compute_end = h2d_end + compute
        record = {"startEnqMs": clock, "endEnqMs": enqueue_end, "startH2dMs": clock,
                  "endH2dMs": h2d_end, "startComputeMs": h2d_end, "endComputeMs": compute_end,
                  "startD2hMs": compute_end, "endD2hMs": compute_end + 0.02, "h2dMs": 0.05,
                  "computeMs": compute, "d2hMs": 0.02, "latencyMs": 0.07 + compute}
        if version < (8, 5, 0):
            record["endToEndMs"] = 0.07 + compute
        records.append(record)
        clock = compute_end + 0.02
    return records


def ostream_record(record: dict[str, float]) -> str:
    """One record as sampleReporting.cpp writes it: numbers through a default std::ostream, so
    6 significant digits (12345.678 ms is written 12345.7)."""
    return "{ " + ", ".join(f'"{key}" : {value:g}' for key, value in record.items()) + " }"


def main(argv: list[str]) -> int:
    version = tuple(int(p) for p in argv[0].split("=", 1)[1].split("."))
    assert len(version) == 3 and argv[0].startswith("--fake-version=")
    version_3: tuple[int, int, int] = (version[0], version[1], version[2])
    command = " ".join(["trtexec", *argv[1:]])
    print(f"&&&& RUNNING TensorRT.trtexec {banner(version_3)} # {command}")
    options = parse(argv[1:], version_3)
    if "help" in options:
        print("=== Model Options ===\n  --onnx=<file>  ONNX model")
        return 0
    say("I", f"TensorRT version: {'.'.join(map(str, version_3))}")
    if "onnx" in options:
        onnx_bytes = Path(options["onnx"]).read_bytes()
        if not parses(onnx_bytes, version_3):
            return 1
        fp16 = "fp16" in options
        if "saveEngine" in options:
            tag = f"{'.'.join(map(str, version_3))} {'fp16' if fp16 else 'fp32'}\n".encode()
            Path(options["saveEngine"]).write_bytes(HEADER + tag + onnx_bytes)
        if "timingCacheFile" in options:
            Path(options["timingCacheFile"]).write_bytes(b"fake timing cache")
        if "buildOnly" in options or "skipInference" in options:
            print(f"&&&& PASSED TensorRT.trtexec {banner(version_3)} # {command}")
            return 0
    elif "loadEngine" in options:
        blob = Path(options["loadEngine"]).read_bytes()
        header, tag, onnx_bytes = blob.split(b"\n", 2)
        built, precision = tag.decode().split()
        if header + b"\n" != HEADER or built != ".".join(map(str, version_3)):
            say("E", "Error[1]: [stdArchiveReader.cpp::StdArchiveReader::40] Error Code 1: "
                     "Serialization (Serialization assertion stdVersionRead == "
                     "serializationVersion failed.Version tag does not match.)")
            return 1
        fp16 = precision == "fp16"
    else:
        say("E", "Model missing or format not recognized")
        return 1
    data = load_inputs(options["loadInputs"], onnx_bytes, version_3) \
        if "loadInputs" in options else None
    name, output = run_onnx(onnx_bytes, data, fp16)
    iterations = int(options.get("iterations", "10"))
    warmup = max(1, int(float(options.get("warmUp", "200"))) // 2)
    if "exportTimes" in options:
        records = times(iterations, warmup, version_3)
        Path(options["exportTimes"]).write_text(
            "[\n" + "\n, ".join(ostream_record(r) for r in records) + "\n]\n")
        enqueue_ms = sorted(r["endEnqMs"] - r["startEnqMs"] for r in records)
    if "exportOutput" in options:
        dims = "x".join(str(d) for d in output.shape)
        Path(options["exportOutput"]).write_text(json.dumps(
            [{"name": name, "dimensions": dims, "values": output.ravel().tolist()}]))
    if "exportProfile" in options:
        Path(options["exportProfile"]).write_text(json.dumps(
            [{"count": iterations}, {"name": "fake", "timeMs": iterations * 1.0,
                                     "averageMs": 1.0, "medianMs": 1.0, "percentage": 100.0}]))
    print("=== Performance summary ===")
    if "exportTimes" in options:
        say("I", f"Enqueue Time: min = {enqueue_ms[0]:g} ms, max = {enqueue_ms[-1]:g} ms, "
                 f"mean = {sum(enqueue_ms) / len(enqueue_ms):g} ms, "
                 f"median = {enqueue_ms[len(enqueue_ms) // 2]:g} ms")
    print(f"&&&& PASSED TensorRT.trtexec {banner(version_3)} # {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
