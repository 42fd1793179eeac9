"""Fidelity of the suite's numbers: the suite's CUDA figures against raw measurements.

Runs the latency benchmarks on CUDA in this process through pytest (as users do), then, with the
very same sessions still alive, measures each one again with loops that share no perfsuite
timing code:
- GPU compute: one CUDA event pair around N back-to-back launches of the session's device work
  (mean per call), against the suite's per-call event median;
- end to end: a bare synchronised loop over the same torch model (eager: copy in, forward, copy
  out; CUDA graph: its own capture and replay), against the suite's end-to-end median;
- harness overhead: `Runner.run` and the bare call alternated N times, difference of medians;
- repeated (`--repeat K`): K repetitions, in alternating order, of a loop of `Runner.run` timed
  as the suite times it and of the bare loop, each repetition's median kept: whether the
  suite's in-run figure differs from the bare loop by noise, by the machine's state when it was
  timed (the suite's trials in order show a warm-up drift), or by the harness.

On a CPU (`--device cpu`, the CI smoke run) only eager torch fp32 is measured, with no GPU
columns.

    python benchmarks/fidelity.py [--rounds 300] [--repeat 5] [--device cuda|cpu] [--out f.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from perfsuite.plugin import RUN_KEY

REPO = Path(__file__).resolve().parents[1]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def bare_call(perf, case):
    """A synchronised end-to-end call that uses no perfsuite code: host array in, host array out."""
    model = copy.deepcopy(perf.artifacts(case.model).torch_model())
    model = model.to(device=case.device, dtype=DTYPES[case.precision]).eval()
    dtype = DTYPES[case.precision]
    if case.backend == "torch":
        def call(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x).to(case.device, dtype)).float().cpu().numpy()
        return call
    static_in = torch.zeros(perf.config.model(case.model).input_shape, dtype=dtype, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode():
        with torch.cuda.stream(side):
            for _ in range(3):
                model(static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = model(static_in)

    def replay(x):
        static_in.copy_(torch.from_numpy(x))
        graph.replay()
        return static_out.float().cpu().numpy()
    return replay


def raw_gpu_ms(enqueue, rounds):
    for _ in range(20):
        enqueue()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(rounds):
        enqueue()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / rounds


def median_ms(call, x, rounds):
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        call(x)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def interleaved_overhead_us(session, bare, x, rounds):
    harness, raw = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        session.run(x)
        t1 = time.perf_counter()
        bare(x)
        t2 = time.perf_counter()
        harness.append(t1 - t0)
        raw.append(t2 - t1)
    return (statistics.median(harness) - statistics.median(raw)) * 1e6


def repeated_ms(session, bare, x, rounds, repeat):
    """(suite-path medians, bare medians): `repeat` repetitions of a timed loop of each, the
    first one's side alternating, so a drift of the machine lands on both."""
    suite, raw = [], []
    for index in range(repeat):
        loops = ((session.run, suite), (bare, raw))
        for call, out in loops if index % 2 == 0 else loops[::-1]:
            out.append(median_ms(call, x, rounds))
    return suite, raw


class Fidelity:
    """Collects raw measurements at the end of the pytest session, before sessions close."""

    def __init__(self, rounds: int, repeat: int) -> None:
        self.rounds = rounds
        self.repeat = repeat
        self.rows: list[dict] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        perf = session.config.stash[RUN_KEY]
        for result in perf.results():
            case = result.case
            live = perf.runner(case)
            x = perf.inputs(case.model)[0]
            bare = bare_call(perf, case)
            median_ms(bare, x, 50)  # warm the bare path
            raw_e2e = median_ms(bare, x, self.rounds)
            on_gpu = case.device == "cuda"
            raw_gpu = raw_gpu_ms(live.device_enqueue(x), self.rounds) if on_gpu else math.nan
            suite_gpu = result.gpu_latency.median_ms if on_gpu else math.nan
            overhead = interleaved_overhead_us(live, bare, x, self.rounds)
            suite_loops, bare_loops = repeated_ms(live, bare, x, self.rounds, self.repeat)
            self.rows.append({
                "repeat_suite_ms": suite_loops,
                "repeat_bare_ms": bare_loops,
                "repeat_ratio": statistics.median(suite_loops) / statistics.median(bare_loops),
                "repeat_harness_us": statistics.median(
                    (s - b) * 1e3 for s, b in zip(suite_loops, bare_loops)),
                "suite_trial_medians_ms": list(result.latency.trial_medians_ms),
                "case": case.id,
                "suite_gpu_ms": suite_gpu,
                "raw_gpu_ms": raw_gpu,
                "gpu_ratio": suite_gpu / raw_gpu,
                "suite_e2e_ms": result.latency.median_ms,
                "raw_e2e_ms": raw_e2e,
                "e2e_ratio": result.latency.median_ms / raw_e2e,
                "harness_us_interleaved": overhead,
                "suite_e2e_cv": result.latency.cv,
                "warnings": list(result.warnings),
            })


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--repeat", type=int, default=5,
                        help="interleaved repetitions of the suite's loop and the bare loop")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("fidelity: needs a CUDA GPU; none is visible to torch (--device cpu measures the "
              "CPU)", file=sys.stderr)
        return 2
    fidelity = Fidelity(args.rounds, args.repeat)
    backends = "torch,torch-cudagraph" if args.device == "cuda" else "torch"
    precisions = [] if args.device == "cuda" else ["--perf-precisions", "fp32"]
    with tempfile.TemporaryDirectory() as scratch:
        code = pytest.main([
            str(REPO / "perfsuite" / "suite" / "test_latency.py"), "-q", "-p", "no:cacheprovider",
            "--perf-device", args.device, "--perf-backends", backends, *precisions,
            "--perf-rounds", str(args.rounds), f"--benchmark-json={scratch}/suite.json",
        ], plugins=[fidelity])
    if code != 0:
        return int(code)
    header = ("case", "suite GPU ms", "raw GPU ms", "ratio", "suite e2e ms", "raw e2e ms",
              "ratio", "harness us", f"repeated x{args.repeat}: suite loop / bare", "harness us",
              "suite trials ms")
    print("\n" + " | ".join(header))
    for row in fidelity.rows:
        print(" | ".join([row["case"]] + [f"{row[k]:.4f}" for k in (
            "suite_gpu_ms", "raw_gpu_ms", "gpu_ratio", "suite_e2e_ms", "raw_e2e_ms", "e2e_ratio")]
            + [f"{row['harness_us_interleaved']:.1f}", f"{row['repeat_ratio']:.4f}",
               f"{row['repeat_harness_us']:.1f}",
               " ".join(f"{t:.3f}" for t in row["suite_trial_medians_ms"])]))
    if args.out:
        args.out.write_text(json.dumps(fidelity.rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
