"""Long steps announce themselves: a line when they start, a line every `every_s` seconds while
they run (an engine build on a Jetson takes minutes), and a line with the elapsed time when
they end, or fail.

    with step(progress, "exporting mobilenet_v3_small fp32 to ONNX"):
        export(...)

prints, through the run's progress writer (pytest's terminal, capture disabled):

    [perfsuite] exporting mobilenet_v3_small fp32 to ONNX ...
    [perfsuite] exporting mobilenet_v3_small fp32 to ONNX: done in 3.2 s
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Progress = typing.Callable[[str], None]  # typing's: subscriptable at run time on Python 3.8
Clock = typing.Callable[[], float]
HEARTBEAT_ENV = "PERFSUITE_PROGRESS_SECONDS"
HEARTBEAT_S = 30.0
MAX_HEARTBEAT_S = 86400.0


def heartbeat_seconds() -> float:
    """Seconds between 'still running' lines: PERFSUITE_PROGRESS_SECONDS, else 30; 0 (or more
    than a day, or inf) turns them off. A value that is not a number >= 0 falls back to 30
    (progress never stops a run)."""
    text = os.environ.get(HEARTBEAT_ENV, "")
    try:
        value = float(text) if text else HEARTBEAT_S
    except ValueError:
        return HEARTBEAT_S
    if math.isnan(value) or value < 0:
        return HEARTBEAT_S
    return value if value <= MAX_HEARTBEAT_S else 0.0


@contextmanager
def step(progress: Progress, what: str, every_s: float | None = None,
         clock: Clock = time.perf_counter,
         status: typing.Callable[[float], str] | None = None) -> Iterator[None]:
    """Announce `what`, repeat it with the elapsed time every `every_s` seconds (default
    heartbeat_seconds()) while the body runs, and say how long it took or after how long it
    failed. `status(elapsed)` adds to each repeated line (rounds done, time left). An exception
    from the body propagates unchanged."""
    every = heartbeat_seconds() if every_s is None else every_s
    started = clock()
    progress(f"{what} ...")
    stop = threading.Event()
    beating: threading.Thread | None = None
    if every > 0:
        def beat() -> None:
            while not stop.wait(every):
                elapsed = clock() - started
                extra = f", {status(elapsed)}" if status is not None else ""
                progress(f"{what}: {elapsed:.0f} s so far{extra}")

        beating = threading.Thread(target=beat, name="perfsuite-progress", daemon=True)
        beating.start()
    try:
        yield
    except BaseException:
        _stop(stop, beating)
        progress(f"{what}: failed after {clock() - started:.1f} s")
        raise
    _stop(stop, beating)
    progress(f"{what}: done in {clock() - started:.1f} s")


def _stop(stop: threading.Event, beating: threading.Thread | None) -> None:
    """Stop the heartbeat; a line it is writing (a slow terminal) delays the step by at most a
    few seconds, never hangs it (the thread is a daemon)."""
    stop.set()
    if beating is not None:
        beating.join(timeout=5.0)


ROUNDS_NOTICE_S = 5.0  # a timed phase expected to take longer than this shows its progress
ROUNDS_EVERY_S = 5.0


class RoundCounter:
    """Wraps the timed call to count rounds (used only for phases of long calls, where the
    count's cost, well under a microsecond, is nothing beside a call)."""

    def __init__(self, call: typing.Callable[..., object], rounds: int) -> None:
        self.call, self.rounds, self.done = call, rounds, 0

    def __call__(self, *args: object) -> object:
        result = self.call(*args)
        self.done += 1
        return result

    def status(self, elapsed: float) -> str:
        if not self.done:
            return f"0/{self.rounds} rounds"
        left = elapsed / self.done * (self.rounds - self.done)
        return f"{self.done}/{self.rounds} rounds, about {left:.0f} s left"


def rounds_every_s(expected_s: float) -> float:
    """Seconds between progress lines of a timed phase expected to last `expected_s`: none (0)
    for a short one or when heartbeats are off, else at most ROUNDS_EVERY_S."""
    heartbeat = heartbeat_seconds()
    if expected_s < ROUNDS_NOTICE_S or heartbeat <= 0:
        return 0.0
    return min(heartbeat, ROUNDS_EVERY_S)


def terminal_progress(config: Any) -> Progress:  # config: a pytest.Config
    """Lines to the terminal, past pytest's capture; one at a time (a long step's heartbeat
    thread writes too, and capture must be suspended and resumed in order)."""
    lock = threading.Lock()

    def write(message: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        with lock, (capture.global_and_fixture_disabled() if capture is not None
                    else contextlib.nullcontext()):
            reporter.write_line(f"[perfsuite] {message}")

    return write
