"""`pytest -m trt_selftest`: a short check to run once on a new TensorRT runner (a Jetson).

Builds fp32 and fp16 engines for the first configured model, runs them, compares them with torch
fp32 and checks that a second load comes from the engine cache. Without TensorRT it skips, saying
why.
"""

from __future__ import annotations

import pytest

from perfsuite.agreement import compare
from perfsuite.plugin import runner_or_skip


@pytest.mark.trt_selftest
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_builds_runs_and_agrees(perf, precision):
    model = perf.config.models[0].name
    case = perf.case(model, "tensorrt", precision)
    runner = runner_or_skip(perf, case)
    details = runner.describe()
    assert details["runtime"].startswith("TensorRT")
    assert runner.artifact_bytes > 0, "the engine has bytes"
    reference = perf.reference_case(case)
    diff = compare(perf.outputs(case), perf.outputs(reference),
                   perf.config.agreement.tolerances[precision])
    assert diff, f"{case.id} ({details['recipe']}) vs torch fp32: {diff}"
