"""Settling a bisection step by the level of its ratios: unclear steps, and doubtful ones."""

from __future__ import annotations

from perfsuite.bisect.settle import by_level, doubtful
from perfsuite.bisect.step import StepResult

REFERENCE = StepResult("bad", "slower", ("m-torch-fp32",), (), 1.0,
                       (("m-torch-fp32 e2e", 1.10), ("other-torch-fp32 e2e", 1.3)))


def step(level, clear=False, outcome="same"):
    return StepResult("c", outcome, (), (), 1.0, (("m-torch-fp32 e2e", level),), clear)


def test_an_unclear_step_nearer_bads_level_is_slower():
    settled = by_level(step(1.07), REFERENCE)
    assert settled.outcome == "slower" and settled.regressed == ("m-torch-fp32",)
    assert settled.note == ("not clear at its bound; nearer BAD: m-torch-fp32 e2e x1.070 "
                            "(BAD x1.100)")


def test_an_unclear_step_nearer_goods_level_is_the_same():
    settled = by_level(step(1.04), REFERENCE)  # below the geometric midpoint x1.049
    assert settled.outcome == "same" and settled.note.startswith("not clear at its bound; "
                                                                  "nearer GOOD")


def test_clear_answers_and_benchmarks_not_bisected_are_left_alone():
    assert by_level(step(1.07, clear=True), REFERENCE).outcome == "same"
    assert by_level(step(1.01, outcome="slower"), REFERENCE).outcome == "slower"
    other = StepResult("c", "same", (), (), 1.0, (("other-torch-fp32 e2e", 1.3),), False)
    assert by_level(other, REFERENCE).outcome == "same"  # only what regressed at step 0 counts


def test_a_step_slower_at_the_gate_but_at_goods_level_is_doubtful():
    assert doubtful(step(1.03, clear=True, outcome="slower"), REFERENCE)
    assert not doubtful(step(1.06, clear=True, outcome="slower"), REFERENCE)
    half_way = StepResult("c", "slower", (), (), 1.0, (("m-torch-fp32 e2e", 1.5),), True)
    bad = StepResult("bad", "slower", ("m-torch-fp32",), (), 1.0, (("m-torch-fp32 e2e", 2.25),))
    assert not doubtful(half_way, bad)  # the first of two equal slowdowns is not doubted
