"""pytest plugin for the gate-quality benchmark (never loaded by the suite itself).

PERFSUITE_SLOWDOWN=0.15 makes every session 15% slower end to end: after each call it spins for
15% of the session's own median, calibrated once when the session is prepared. Every benchmark
also records two re-measurements (what the gate would take to confirm a suspected regression)
in extra_info["confirmations"], so the gate can be replayed offline on the recorded runs.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from perfsuite.plugin import SESSION_KEY
from perfsuite.session import PerfSession

FACTOR = float(os.environ.get("PERFSUITE_SLOWDOWN", "0"))
CONFIRMATIONS = 2


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class SlowedSession:
    """Wraps a Session: same interface, `run` followed by a calibrated spin."""

    def __init__(self, inner, delay_s: float) -> None:
        self._inner = inner
        self._delay_s = delay_s

    def run(self, inputs):
        out = self._inner.run(inputs)
        spin(self._delay_s)
        return out

    def __getattr__(self, name):
        return getattr(self._inner, name)


def pytest_configure(config):
    if FACTOR <= 0:
        return
    original = PerfSession.session

    def slowed(self, case):
        prepared = original(self, case)
        if isinstance(prepared, SlowedSession):
            return prepared
        cache = self.__dict__.setdefault("_slowed", {})
        if case not in cache:
            x = self.inputs(case.model)[0]
            for _ in range(20):
                prepared.run(x)
            times = []
            for _ in range(50):
                t0 = time.perf_counter()
                prepared.run(x)
                times.append(time.perf_counter() - t0)
            cache[case] = SlowedSession(prepared, FACTOR * statistics.median(times))
        return cache[case]

    PerfSession.session = slowed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    benchmark = getattr(item, "funcargs", {}).get("benchmark")
    case = getattr(item, "funcargs", {}).get("perf_case")
    if benchmark is not None and case is not None and benchmark.stats is not None:
        perf = item.config.stash[SESSION_KEY]
        benchmark.extra_info["confirmations"] = [perf.remeasure(case).as_dict()
                                                 for _ in range(CONFIRMATIONS)]
    return outcome
