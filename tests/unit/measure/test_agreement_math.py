from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from perfsuite.errors import InternalError
from perfsuite.measure.agreement import Tolerance, compare, drift

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
outputs = arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(2, 10)), elements=finite)


def test_polygraphy_rule_needs_both_tolerances_exceeded():
    reference = np.array([1.0, 100.0, 0.0])
    actual = np.array([1.5, 100.5, 0.05])
    # errors 0.5, 0.5, 0.05; relative 0.5, 0.005, inf
    diff = compare(actual, reference, Tolerance(atol=0.1, rtol=0.01))
    assert not diff and diff.failing == 1  # only the first: 0.5 > 0.1 and 0.5 > 0.01
    assert diff.max_abs == pytest.approx(0.5)
    assert diff.required_atol == pytest.approx(0.5)  # largest error among rel-failing elements
    assert diff.required_rtol == pytest.approx(0.5)  # largest rel error among abs-failing ones
    assert "FAILED on 1 of 3" in str(diff) and "atol=5.000e-01" in str(diff)


def test_nan_always_fails():
    diff = compare(np.array([np.nan, 1.0]), np.array([1.0, 1.0]), Tolerance(1e9, 1e9))
    assert not diff


def test_empty_comparison_is_an_error_not_a_pass():
    with pytest.raises(InternalError, match="empty"):
        compare(np.array([]), np.array([]), Tolerance(1, 1))
    with pytest.raises(InternalError, match="shape"):
        drift(np.zeros(3), np.zeros(4))


@given(outputs)
def test_identical_outputs_agree_perfectly(a):
    assert compare(a, a, Tolerance(0.0, 0.0))
    d = drift(a, a)
    assert d.rel_l2 == 0.0 and d.max_abs == 0.0 and d.top1_agreement == 1.0
    assert d.cosine == pytest.approx(1.0, abs=1e-6)


@given(outputs, outputs.map(lambda x: x * 0.5))
def test_required_tolerances_are_sufficient(a, noise):
    b = a + noise[: a.shape[0], : a.shape[1]] if noise.shape == a.shape else a * 1.01
    diff = compare(b, a, Tolerance(atol=1e-3, rtol=1e-3))
    assert compare(b, a, Tolerance(atol=diff.required_atol, rtol=1e-3))
    assert compare(b, a, Tolerance(atol=1e-3, rtol=diff.required_rtol))


@given(outputs, st.floats(0.5, 2.0))
def test_drift_of_a_scaled_copy(a, scale):
    d = drift(a.astype(np.float64) * scale, a)
    norm = float(np.linalg.norm(a.astype(np.float64)))
    expected = 0.0 if norm == 0 else abs(scale - 1)
    assert d.rel_l2 == pytest.approx(expected, rel=1e-5, abs=1e-9)
    if norm > 0:
        assert d.cosine == pytest.approx(1.0, abs=1e-5)


def test_hand_computed_drift():
    reference = np.array([[3.0, 4.0], [1.0, 0.0]])
    actual = np.array([[3.0, 5.0], [0.0, 1.0]])
    d = drift(actual, reference)
    assert d.rel_l2 == pytest.approx(math.sqrt(3) / math.sqrt(26))
    assert d.max_abs == 1.0
    assert d.top1_agreement == 0.5  # row 0 argmax 1 == 1; row 1 argmax 1 != 0
    assert d.cosine == pytest.approx(29 / (math.sqrt(35) * math.sqrt(26)))


def test_zero_reference_edge_cases():
    zeros = np.zeros((1, 3))
    assert drift(zeros, zeros).rel_l2 == 0.0
    assert drift(np.ones((1, 3)), zeros).rel_l2 == math.inf
    assert drift(np.ones((1, 3)), zeros).cosine == 0.0
