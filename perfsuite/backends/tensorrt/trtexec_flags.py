"""trtexec's command line per TensorRT version (read from each release branch's
samples/common/sampleOptions.cpp in NVIDIA/TensorRT; tests/fakes/trtexec.py accepts exactly
these flag sets).

trtexec takes `--flag=value` only, fails on any flag it does not know (exit 1, "Unknown
option"), and changed these between versions:
- workspace: `--workspace=MiB` up to 8.4; `--memPoolSize=workspace:MiB` from 8.5 (`--workspace`
  deprecated in 8.5, removed in 10.0);
- build without inference: `--buildOnly` up to 8.5; `--skipInference` from 8.6 (`--buildOnly`
  deprecated in 8.6, removed in 10.0);
- `--explicitBatch` has no effect for ONNX since 8.0 and is removed in 10.0: never passed;
- `--exportTimes` lists warm-up inferences too in 8.2 (perfsuite reads the last ones);
- the banner's version number is major*1000+minor*100+patch up to 9.x (v8203),
  major*10000+minor*100+patch from 10.0 (v100300).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_BANNER = re.compile(r"\[TensorRT v(\d+)\]")


@dataclass(frozen=True, order=True)
class TrtexecVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def from_banner(cls, text: str) -> TrtexecVersion:
        """From `&&&& RUNNING TensorRT.trtexec [TensorRT v8203] # ...`."""
        match = _BANNER.search(text)
        if match is None:
            raise ValueError("no '[TensorRT vNNNN]' banner in its output")
        number = int(match.group(1))
        if number >= 100000:
            return cls(number // 10000, number // 100 % 100, number % 100)
        return cls(number // 1000, number // 100 % 10, number % 100)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)

    def recipe_flags(self, precision: str, workspace_mb: int) -> list[str]:
        """What decides the engine's kernels: precision, fp32 I/O, workspace."""
        flags = ["--fp16"] if precision == "fp16" else []
        flags += ["--inputIOFormats=fp32:chw", "--outputIOFormats=fp32:chw"]
        if self.at_least(8, 5):
            flags.append(f"--memPoolSize=workspace:{workspace_mb}")
        else:
            flags.append(f"--workspace={workspace_mb}")
        return flags

    def build_flags(self, onnx: Path, engine: Path, precision: str, workspace_mb: int,
                    timing_cache: Path) -> list[str]:
        build_only = "--skipInference" if self.at_least(8, 6) else "--buildOnly"
        return [f"--onnx={onnx}", f"--saveEngine={engine}", build_only,
                f"--timingCacheFile={timing_cache}", *self.recipe_flags(precision, workspace_mb)]

    def timing_flags(self, engine: Path, input_name: str, inputs: Path, times: Path,
                     rounds: int, warmup_s: float, cuda_graph: bool) -> list[str]:
        """`rounds` timed inferences after `warmup_s` of warm-up (`--duration=0`: the count
        alone decides), per-inference times exported as JSON."""
        flags = [f"--loadEngine={engine}", f"--loadInputs={_input_spec(input_name, inputs)}",
                 f"--iterations={rounds}", f"--warmUp={round(warmup_s * 1e3)}", "--duration=0",
                 f"--exportTimes={times}"]
        return [*flags, "--useCudaGraph"] if cuda_graph else flags

    def output_flags(self, engine: Path, input_name: str, inputs: Path,
                     output: Path) -> list[str]:
        return [f"--loadEngine={engine}", f"--loadInputs={_input_spec(input_name, inputs)}",
                "--iterations=1", "--warmUp=0", "--duration=0", f"--exportOutput={output}"]


def _input_spec(name: str, path: Path) -> str:
    """`name:file`; trtexec splits the list at ',' and each item at its last ':'."""
    if "," in str(path) or ":" in str(path):
        raise ValueError(f"trtexec cannot load inputs from {path}: ',' or ':' in the path")
    return f"{name}:{path}"
