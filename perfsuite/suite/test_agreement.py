"""Every session agrees with the torch fp32 reference; fp16/bf16 drift stays within bounds."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfsuite.measure.agreement import compare, drift
from perfsuite.plugin import runner_or_skip


def test_reference_is_deterministic(perf, perf_model):
    reference = perf.case(perf_model.spec.name, "torch", "fp32")
    runner = runner_or_skip(perf, reference)
    sample = perf.inputs(reference.model)[0]
    np.testing.assert_array_equal(runner.run(sample), runner.run(sample))


def test_agreement(perf, perf_compared_case):
    case = perf_compared_case
    runner_or_skip(perf, case)
    reference = perf.reference_case(case)
    diff = compare(perf.outputs(case), perf.outputs(reference),
                   perf.config.agreement.tolerances[case.precision])
    assert diff, f"{case.id} on {case.device} vs torch fp32: {diff}"


def test_drift(perf, perf_compared_case, record_property):
    case = perf_compared_case
    runner_or_skip(perf, case)
    drift = perf.drift(case)
    assert drift is not None
    for name, value in drift.as_dict().items():
        record_property(name, value)
    perf.record_drift(case, drift)  # gated against the baseline by the plugin
    limit = perf.config.agreement.max_rel_l2[case.precision]
    assert drift.rel_l2 < limit, (
        f"{case.id} on {case.device}: {case.precision} drift vs torch fp32 is rel_l2 "
        f"{drift.rel_l2:.3e} (limit {limit:g}); max_abs {drift.max_abs:.3e}, cosine "
        f"{drift.cosine:.6f}, top-1 agreement {drift.top1_agreement:.1%}"
    )


# Inputs the model could see: uniform over its domain, a smooth gradient image, a constant
# image, or noise clipped to the domain; built from a drawn seed so examples stay small.
input_kinds = st.sampled_from(["uniform", "gradient", "constant", "clipped_normal"])


def draw_input(spec, kind: str, seed: int) -> np.ndarray:
    low, high = spec.input_range
    rng = np.random.default_rng(seed)
    shape = spec.input_shape
    if kind == "uniform":
        x = rng.uniform(low, high, size=shape)
    elif kind == "gradient":
        x = np.broadcast_to(np.linspace(low, high, shape[-1]), shape) * rng.choice([-1.0, 1.0])
        x = np.clip(x, low, high)
    elif kind == "constant":
        x = np.full(shape, rng.uniform(low, high))
    else:
        x = np.clip(rng.normal((low + high) / 2, (high - low) / 4, size=shape), low, high)
    return np.ascontiguousarray(x, dtype=np.float32)


def test_agreement_on_drawn_inputs(perf, perf_compared_case):
    """Property: on any input from the model's domain the session stays close to torch fp32.

    Judged by rel_l2 per input, not elementwise: off-distribution inputs scale logits up to 10x,
    and an elementwise atol tuned for typical logits would flag that scale, not a defect."""
    case = perf_compared_case
    runner = runner_or_skip(perf, case)
    reference = perf.runner(perf.reference_case(case))
    spec = perf.config.model(case.model)
    limit = perf.config.agreement.property_rel_l2[case.precision]

    @settings(max_examples=perf.config.agreement.property_examples, deadline=None,
              derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(kind=input_kinds, seed=st.integers(0, 2**32 - 1))
    def agrees(kind: str, seed: int) -> None:
        x = draw_input(spec, kind, seed)
        found = drift(runner.run(x), reference.run(x))
        assert found.rel_l2 < limit, (
            f"{case.id} vs torch fp32 on a {kind} input (seed {seed}): rel_l2 "
            f"{found.rel_l2:.3e} >= {limit:g} (max_abs {found.max_abs:.3e})"
        )

    agrees()
