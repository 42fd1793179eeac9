"""`pytest -m trt_selftest`: a short check to run once on a new TensorRT runner (a Jetson).

For each TensorRT route among the run's backends (`tensorrt`: the Python bindings; `trtexec`:
NVIDIA's tool, the one JetPack 4 offers), it builds fp32 and fp16 engines for the first configured
model, runs them, compares them with torch fp32, checks that the fp16 engine really computes in
fp16 (its outputs differ from fp32's) and that a second session loads the engine from the cache.
Unlike the suite, it FAILS when TensorRT cannot run here, saying what to install: a self-check
that skips would look green on a runner that cannot do its job.
"""

from __future__ import annotations

import numpy as np
import pytest

from perfsuite.errors import BackendUnavailable, PerfsuiteError
from perfsuite.measure.agreement import compare

ROUTES = ("tensorrt", "trtexec")
FIX = {
    "tensorrt": "on a Jetson: create the virtualenv with --system-site-packages so JetPack's "
                "tensorrt is visible (./dev does this on a Jetson; PERFSUITE_JETSON=1 forces it); "
                "elsewhere: pip install tensorrt. JetPack 4 (TensorRT 8.2, Python 3.6 bindings): "
                "use the trtexec route, pytest -m trt_selftest --perf-backends=torch,trtexec",
    "trtexec": "install TensorRT (JetPack ships /usr/src/tensorrt/bin/trtexec), put trtexec on "
               "PATH or set [tool.perfsuite.tensorrt] trtexec = \"/path/to/trtexec\"",
}


def _runner_or_fail(perf, case):
    try:
        return perf.runner(case)
    except BackendUnavailable as exc:
        message = f"{case.id}: TensorRT cannot run here: {exc}.\nFix: {FIX[case.backend]}"
    except PerfsuiteError as exc:
        message = f"{case.id}: {exc}"
    pytest.fail(message, pytrace=False)


@pytest.mark.trt_selftest
@pytest.mark.parametrize("route", ROUTES)
def test_tensorrt_builds_runs_and_agrees(perf, route):
    if route not in perf.config.backends:
        pytest.skip(f"{route} is not among this run's backends ({', '.join(perf.config.backends)})")
    model = perf.config.models[0].name
    outputs = {}
    for precision in ("fp32", "fp16"):
        case = perf.case(model, route, precision)
        runner = _runner_or_fail(perf, case)
        details = runner.describe()
        assert details["runtime"].startswith("TensorRT"), details
        assert runner.artifact_bytes > 0, "the engine has bytes"
        outputs[precision] = perf.outputs(case)
        reference = perf.outputs(perf.reference_case(case))
        diff = compare(outputs[precision], reference, perf.config.agreement.tolerances[precision])
        assert diff, f"{case.id} ({details['recipe']}) vs torch fp32: {diff}"
        messages = []
        again = perf.prepare_again(case, messages.append)
        again.close()
        assert any("reusing cached" in m for m in messages), \
            f"{case.id}: a second session rebuilt the engine instead of loading it: {messages}"
    assert not np.array_equal(outputs["fp16"], outputs["fp32"]), \
        "the fp16 engine's outputs equal the fp32 engine's: it did not compute in fp16"
