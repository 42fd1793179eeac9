"""The results table's formatting."""

from __future__ import annotations

from perfsuite.backends.base import CaseSpec
from perfsuite.measure.latency_stats import summarize
from perfsuite.report.text import results_table
from perfsuite.results import CaseResult


def result(backend: str, seconds: float, artifact_bytes: int) -> CaseResult:
    return CaseResult(CaseSpec("m", backend, "fp32", "cpu"), artifact_bytes,
                      latency=summarize([seconds] * 10, 2))


def test_small_speedups_and_sizes_keep_two_significant_digits():
    lines = results_table([result("torch", 1e-5, 2_000), result("onnxruntime", 2.5e-3, 5_000_000)],
                          {})
    torch_row, ort_row = lines[2], lines[3]
    assert "1.00x" in torch_row and " 0.002 " in torch_row  # 2 kB is 0.002 MB, not 0.00
    assert "0.004x" in ort_row and " 5.00 " in ort_row  # 400 times slower is not 0.00x


def full_suite_results() -> list[CaseResult]:
    """Every backend and precision of the default suite on a GPU, with notes and drift: the
    widest table the default suite prints."""
    from perfsuite.measure.agreement import Drift  # noqa: F401  (the drift type the table reads)

    results = []
    for backend in ("torch", "torch-cudagraph", "onnxruntime", "tensorrt", "tensorrt-pycuda",
                    "trtexec", "tensorrt-rtx"):
        for precision in ("fp32", "fp16", "bf16"):
            latency = summarize([0.0123456] * 20, 5)
            results.append(CaseResult(
                CaseSpec("mobilenet_v3_small", backend, precision, "cuda"), 12_345_678,
                latency=latency, gpu_latency=latency,
                details={"recipe": "fp16: fp16 ONNX, strongly typed network; TF32 off; CUDA "
                                   "graph replay of the whole engine"},
                warnings=("unstable: GPU compute trials' medians vary by CV 3.1% > 2.5%",)))
    return results


def gate_cells(results: list[CaseResult]) -> dict[str, str]:
    return {r.case.id: "x12.345 too noisy, resolves +164.2% e2e" for r in results}


def test_the_default_suites_table_fits_100_columns():
    results = full_suite_results()
    wide = results_table(results, {"threads": "16"}, gate_cells(results))
    assert max(map(len, wide)) > 200, "the whole table is much wider"
    narrow = results_table(results, {"threads": "16"}, gate_cells(results), width=100)
    assert max(map(len, narrow)) <= 100
    assert narrow[0] == "perfsuite results: mobilenet_v3_small (device cuda, threads 16)"
    # drift is n/a on every row here, so it goes first; then p99 ms, inf/s, p90 ms and the sizes
    assert narrow[1].split() == ["backend", "precision", "median", "ms", "GPU", "ms", "speedup",
                                 "gate"]
    assert "x12.345 too noisy, resolves +164.2% e2e" in narrow[2]
    assert narrow[3].startswith("    fp16: fp16 ONNX"), "notes go under their row"
    assert any("left out to fit 100 columns: p99 ms, inf/s, p90 ms, artifact MB" in line
               for line in narrow)


def test_a_table_that_fits_is_printed_whole():
    results = [result("torch", 1e-3, 2_000)]
    assert results_table(results, {}, None, width=300) == results_table(results, {}, None)
