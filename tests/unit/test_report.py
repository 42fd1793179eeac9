"""The results table's formatting."""

from __future__ import annotations

from perfsuite.backends import CaseSpec
from perfsuite.perf_run import CaseResult
from perfsuite.report import results_table
from perfsuite.timing import summarize


def result(backend: str, seconds: float, artifact_bytes: int) -> CaseResult:
    return CaseResult(CaseSpec("m", backend, "fp32", "cpu"), artifact_bytes,
                      latency=summarize([seconds] * 10, 2))


def test_small_speedups_and_sizes_keep_two_significant_digits():
    lines = results_table([result("torch", 1e-5, 2_000), result("onnxruntime", 2.5e-3, 5_000_000)],
                          {})
    torch_row, ort_row = lines[2], lines[3]
    assert "1.00x" in torch_row and " 0.002 " in torch_row  # 2 kB is 0.002 MB, not 0.00
    assert "0.004x" in ort_row and " 5.00 " in ort_row  # 400 times slower is not 0.00x
