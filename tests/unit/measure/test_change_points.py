"""Change points over a history of run medians: steps found where they are, none in noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfsuite.measure.change_points import change_points, step_p_value, student_t_two_sided


@pytest.mark.parametrize(("t", "df", "p"), [(2.0, 10, 0.07339), (0.0, 5, 1.0), (-3.0, 7, 0.01994),
                                            (1.96, 1e6, 0.05)])
def test_student_t_tail_matches_the_tables(t, df, p):
    assert student_t_two_sided(t, df) == pytest.approx(p, abs=2e-5)


def test_a_three_percent_step_in_one_percent_noise_is_found_where_it_is():
    noise = np.exp(np.random.default_rng(3).normal(0.0, 0.01, 30))
    history = noise * np.where(np.arange(30) >= 17, 1.03, 1.0)
    (found,) = change_points(history)
    assert found.index == 17 and found.ratio == pytest.approx(1.03, abs=0.01)
    assert found.confidence > 0.95


def test_two_steps_and_their_directions():
    history = [10.0] * 6 + [12.0] * 6 + [9.0] * 6
    assert [(c.index, round(c.ratio, 3)) for c in change_points(history)] == [(6, 1.2), (12, 0.75)]


def test_noise_alone_gives_no_change_points():
    rng = np.random.default_rng(7)
    found = sum(len(change_points(np.exp(rng.normal(0.0, 0.05, 40)))) for _ in range(200))
    assert found <= 16  # 8000 points: at most 0.2 per 100 (measured 0.05-0.2), the budget is 1


def test_too_short_a_history_or_a_step_at_its_end_is_not_called():
    assert change_points([1.0, 2.0, 2.0, 2.0, 2.0]) == []  # one point before the step
    assert change_points([]) == []


def test_values_that_are_not_latencies_are_refused():
    for bad in ([1.0, 0.0, 2.0], [1.0, math.nan], [[1.0, 2.0]]):
        with pytest.raises(ValueError, match="finite positive"):
            change_points(bad)


def test_the_search_is_calibrated_on_the_maximum_over_splits_not_bonferroni():
    # Gaussian histories of 20: the share with any change point is the significance asked for
    rng = np.random.default_rng(11)
    flagged = sum(bool(change_points(np.exp(rng.normal(0.0, 0.01, 20)))) for _ in range(1000))
    assert 0.035 <= flagged / 1000 <= 0.075
    # t = 3.18 at the middle of 20 points: Bonferroni over the 15 splits would say p = 0.077
    logs = np.tile([0.01, -0.01], 10) + np.where(np.arange(20) >= 10, 0.015, 0.0)
    assert 15 * step_p_value(logs, 10) > 0.05
    (found,) = change_points(np.exp(logs))
    assert found.index == 10 and 0.95 < found.confidence < 0.99


def test_the_answer_is_the_same_every_time():
    history = np.exp(np.random.default_rng(5).normal(0.0, 0.02, 25)) * np.r_[[1.0] * 12, [1.04] * 13]
    assert change_points(history) == change_points(list(history))
