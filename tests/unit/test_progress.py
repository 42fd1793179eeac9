"""Long steps announce themselves: start, 'so far' lines while running, elapsed time at the end."""

from __future__ import annotations

import threading

import pytest

from perfsuite.progress import (
    HEARTBEAT_ENV,
    HEARTBEAT_S,
    ROUNDS_EVERY_S,
    RoundCounter,
    heartbeat_seconds,
    rounds_every_s,
    step,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_step_says_when_it_started_and_how_long_it_took():
    lines: list[str] = []
    clock = FakeClock()
    with step(lines.append, "exporting m fp32", every_s=0, clock=clock):
        clock.now += 12.34
    assert lines == ["exporting m fp32 ...", "exporting m fp32: done in 12.3 s"]


def test_step_says_after_how_long_it_failed_and_lets_the_error_through():
    lines: list[str] = []
    clock = FakeClock()
    with pytest.raises(ValueError, match="boom"):
        with step(lines.append, "building engine", every_s=0, clock=clock):
            clock.now += 2.0
            raise ValueError("boom")
    assert lines == ["building engine ...", "building engine: failed after 2.0 s"]


def test_a_long_step_repeats_itself_with_the_elapsed_time():
    lines: list[str] = []
    clock = FakeClock()
    beaten = threading.Event()

    def progress(message: str) -> None:
        lines.append(message)
        if "so far" in message:
            beaten.set()

    with step(progress, "building engine", every_s=0.01, clock=clock):
        clock.now += 45.0
        assert beaten.wait(30), "no 'so far' line while the step ran"
    assert lines[0] == "building engine ..."
    assert "building engine: 45 s so far" in lines
    assert lines[-1] == "building engine: done in 45.0 s"


@pytest.mark.parametrize(("text", "expected"), [("", HEARTBEAT_S), ("5", 5.0), ("0", 0.0),
                                                ("-1", HEARTBEAT_S), ("soon", HEARTBEAT_S),
                                                ("nan", HEARTBEAT_S), ("inf", 0.0), ("1e12", 0.0)])
def test_heartbeat_interval_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv(HEARTBEAT_ENV, text)
    assert heartbeat_seconds() == expected


def test_a_long_timed_phase_shows_rounds_done_and_time_left():
    lines: list[str] = []
    clock = FakeClock()
    beaten = threading.Event()
    counter = RoundCounter(lambda x: x * 2, rounds=100)

    def progress(message: str) -> None:
        lines.append(message)
        if "rounds, about" in message:
            beaten.set()

    with step(progress, "m-torch-fp16: timing 100 rounds (about 80 s)", every_s=0.01,
              clock=clock, status=counter.status):
        for _ in range(25):
            assert counter(3) == 6
            clock.now += 0.8
        assert beaten.wait(30), "no progress line while the rounds ran"
    assert "m-torch-fp16: timing 100 rounds (about 80 s): 20 s so far, 25/100 rounds, about " \
           "60 s left" in lines
    assert counter.done == 25 and RoundCounter(abs, 7).status(3.0) == "0/7 rounds"


@pytest.mark.parametrize(("expected_s", "heartbeat", "every"),
                         [(2.0, "", 0.0), (60.0, "", ROUNDS_EVERY_S), (60.0, "2", 2.0),
                          (60.0, "0", 0.0)])
def test_only_phases_longer_than_a_few_seconds_report(monkeypatch, expected_s, heartbeat, every):
    monkeypatch.setenv(HEARTBEAT_ENV, heartbeat)
    assert rounds_every_s(expected_s) == every
