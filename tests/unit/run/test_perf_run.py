from __future__ import annotations

import numpy as np
import pytest
from tiny_models import TINY_CONFIG

from perfsuite.backends import BACKEND_TYPES
from perfsuite.config.settings import load_config
from perfsuite.errors import InternalError, PerfsuiteError
from perfsuite.run.workshop import PerfRun


@pytest.fixture(scope="module")
def perf(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    (root / "pyproject.toml").write_text(TINY_CONFIG)
    env = {"PERFSUITE_CACHE_DIR": str(root / "cache")}
    runner = PerfRun(load_config(root, list(BACKEND_TYPES), environ=env))
    yield runner
    runner.close()


def test_case_params_follow_backend_precisions(perf):
    assert perf.case_params() == [
        ("tiny", "torch", "fp32"), ("tiny", "torch", "fp16"),
        ("tiny", "onnxruntime", "fp32"), ("tiny", "onnxruntime", "fp16"),
    ]


def test_runners_and_model_are_built_once(perf):
    torch_case = perf.case("tiny", "torch", "fp32")
    ort_case = perf.case("tiny", "onnxruntime", "fp32")
    assert perf.runner(torch_case) is perf.runner(torch_case)
    assert perf.runner(ort_case) is perf.runner(ort_case)
    assert perf.artifacts("tiny").builds == 1
    assert perf.artifacts("tiny").onnx("fp32") is perf.artifacts("tiny").onnx("fp32")


def test_backends_share_the_contract(perf):
    for params in perf.case_params():
        case = perf.case(*params)
        runner = perf.runner(case)
        x, y = perf.inputs("tiny")[:2]
        out = runner.run(x)
        kept = out.copy()
        assert out.dtype == np.float32 and out.shape == (1, 10)
        assert not np.array_equal(runner.run(y), out), "different inputs, different outputs"
        np.testing.assert_array_equal(out, kept, err_msg="a later run overwrote an earlier output")
        assert runner.artifact_bytes > 0
        assert all(isinstance(v, str) for v in runner.describe().values())
        with pytest.raises(PerfsuiteError, match="input shape"):
            runner.run(np.zeros((2, 3, 16, 16), dtype=np.float32))


def test_closed_runner_refuses_work(perf):
    from perfsuite.backends.torch_eager import TorchEagerBackend

    case_model = perf.artifacts("tiny")
    with TorchEagerBackend().prepare(case_model.spec, case_model, "fp32", "cpu") as runner:
        runner.run(perf.inputs("tiny")[0])
    with pytest.raises(InternalError, match="closed"):
        runner.run(perf.inputs("tiny")[0])


def test_drift_against_reference(perf):
    reference = perf.case("tiny", "torch", "fp32")
    assert perf.drift(reference) is None
    drift = perf.drift(perf.case("tiny", "onnxruntime", "fp32"))
    assert drift is not None and drift.rel_l2 < 1e-4 and drift.top1_agreement == 1.0


def test_inputs_are_deterministic(perf):
    inputs = perf.inputs("tiny")
    assert inputs.shape == (8, 1, 3, 16, 16)
    from perfsuite.models.inputs import input_set

    np.testing.assert_array_equal(inputs, input_set(perf.config.model("tiny"), 8, 0))
