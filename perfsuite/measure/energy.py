"""Power and energy per inference over timed windows, from any meter.

A meter is started before a window and stopped after it; it returns the joules and seconds of the
window. Two kinds: a counter (NVML's total-energy counter on discrete GPUs: the difference) and a
sampled power reading (Jetson INA3221 rails, or NVML power where the counter is missing),
integrated with the trapezoid rule over samples a thread takes every `interval_s`.

A counter moves in steps (NVML's every 100 ms on an H100: a 1 s window read at arbitrary times
is off by up to 10%), so its windows run from one step to another: `align` keeps the work going
until the counter moves, at both ends, and those calls count.

The energy window (`measure_energy`): trials of back-to-back inferences, each trial at least
`trial_seconds` long, synchronised at both ends; energy per inference is the trial's joules over
its inference count. Per-trial figures let the gate treat energy like latency (gate/decide.py).
"""

from __future__ import annotations

import statistics
import threading
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfsuite.measure.latency_stats import positive

Clock = typing.Callable[[], float]  # typing's: subscriptable at run time on Python 3.8


@dataclass(frozen=True)
class EnergyReading:
    """One window: its length, the energy used and per-rail mean power (where sampled)."""

    seconds: float
    joules: float
    rails_w: Mapping[str, float] = field(default_factory=dict)

    @property
    def mean_w(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0


class EnergyMeter(typing.Protocol):
    source: str  # what is measured, e.g. "NVML total energy" or "INA3221 VDD_IN"

    def align(self, call: Callable[[], object]) -> int:
        """Run `call` until the meter's reading steps (a counter); returns the calls made."""

    def start(self) -> None: ...

    def stop(self) -> EnergyReading: ...


class CounterMeter:
    """A cumulative energy counter in millijoules (NVML's nvmlDeviceGetTotalEnergyConsumption)."""

    def __init__(self, source: str, read_mj: Callable[[], float | None],
                 clock: Clock = time.perf_counter) -> None:
        self.source = source  # read_mj: None when a read failed (the window then counts nothing)
        self._read, self._clock = read_mj, clock
        self._start: tuple[float, float | None] | None = None

    def align(self, call: Callable[[], object], patience_s: float = 1.0) -> int:
        """Run `call` until the counter steps (gives up after `patience_s`: a stuck counter)."""
        first, started, calls = self._read(), time.perf_counter(), 0
        while (first is not None and self._read() == first
               and time.perf_counter() - started < patience_s):
            call()
            calls += 1
        return calls

    def start(self) -> None:
        self._start = (self._clock(), self._read())

    def stop(self) -> EnergyReading:
        assert self._start is not None, "stop() before start()"
        t0, e0 = self._start
        e1 = self._read()
        joules = (e1 - e0) / 1e3 if e0 is not None and e1 is not None else 0.0
        return EnergyReading(self._clock() - t0, joules)  # 0 J: measure_energy keeps nothing


class SampledMeter:
    """Power readings (W per rail) integrated over the window. `total` names the rail whose
    energy counts (None: the sum of the rails). `interval_s=None` takes no samples in between
    (tests call `sample()` themselves)."""

    def __init__(self, source: str, read_w: Callable[[], Mapping[str, float]], total: str | None,
                 interval_s: float | None = 0.02, clock: Clock = time.perf_counter) -> None:
        self.source = source
        self._read, self._total, self._interval, self._clock = read_w, total, interval_s, clock
        self._samples: list[tuple[float, Mapping[str, float]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        self._samples.append((self._clock(), self._read()))

    def align(self, call: Callable[[], object]) -> int:
        return 0  # samples have no steps to wait for

    def start(self) -> None:
        self._halt()
        self._samples = []
        self._stop.clear()
        self.sample()
        if self._interval is not None:
            self._thread = threading.Thread(target=self._loop, name="perfsuite-power", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def _halt(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def stop(self) -> EnergyReading:
        self._halt()
        self.sample()
        return integrate(self._samples, self._total)


def integrate(samples: Sequence[tuple[float, Mapping[str, float]]],
              total: str | None) -> EnergyReading:
    """Trapezoid rule over (time, W per rail) samples; per-rail means over the same window."""
    seconds = samples[-1][0] - samples[0][0] if len(samples) > 1 else 0.0
    rails = sorted({name for _, reading in samples for name in reading})
    energy = {name: 0.0 for name in rails}
    for (t0, a), (t1, b) in zip(samples, samples[1:]):
        for name in rails:
            if name in a and name in b:
                energy[name] += (a[name] + b[name]) / 2 * (t1 - t0)
    joules = energy.get(total, 0.0) if total else sum(energy.values())
    means = {name: e / seconds for name, e in energy.items()} if seconds > 0 else {}
    return EnergyReading(seconds, joules, means)


@dataclass(frozen=True)
class EnergyStats:
    """Energy per inference (mJ) and mean power (W) per trial of one session's energy window."""

    source: str
    workload: str  # "back-to-back device launches" or "synchronised calls"
    trial_mj: tuple[float, ...]
    trial_w: tuple[float, ...]
    inferences: int
    seconds: float
    rails_w: Mapping[str, float] = field(default_factory=dict)

    @property
    def median_mj(self) -> float:
        return statistics.median(self.trial_mj)

    @property
    def mean_w(self) -> float:
        return statistics.fmean(self.trial_w)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "workload": self.workload, "median_mj": self.median_mj,
                "mean_w": self.mean_w, "trial_mj": list(self.trial_mj),
                "trial_w": list(self.trial_w), "inferences": self.inferences,
                "seconds": self.seconds, "rails_w": dict(self.rails_w)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnergyStats:
        trial_mj = tuple(positive(v, "energy trial_mj") for v in data["trial_mj"])
        if not trial_mj:
            raise ValueError("energy trial_mj is empty")
        return cls(str(data["source"]), str(data["workload"]), trial_mj,
                   tuple(positive(v, "energy trial_w") for v in data["trial_w"]),
                   int(data["inferences"]), positive(data["seconds"], "energy seconds"),
                   {str(k): float(v) for k, v in data.get("rails_w", {}).items()})


def measure_energy(call: Callable[[], object], synchronize: Callable[[], object],
                   meter: EnergyMeter, workload: str, trials: int, trial_seconds: float,
                   min_calls: int = 10, clock: Clock = time.perf_counter) -> EnergyStats | None:
    """Run `call` back to back for `trials` windows of at least `trial_seconds` and `min_calls`
    calls each, `synchronize` at both ends of each window; a counting meter's window is then
    stretched, with synchronised calls, to its counter's next step. None when the meter saw no
    energy."""
    trial_mj, trial_w, rails, count, seconds = [], [], [], 0, 0.0

    def synchronised() -> None:
        call()
        synchronize()

    for _ in range(trials):
        synchronize()
        meter.align(synchronised)  # busy from here on: the first step starts the window
        meter.start()
        try:
            started, calls = clock(), 0
            while calls < min_calls or clock() - started < trial_seconds:
                call()
                calls += 1
            synchronize()
            calls += meter.align(synchronised)
        finally:  # an inference that raises must not leave a sampling thread behind
            reading = meter.stop()
        if reading.joules <= 0 or reading.seconds <= 0:
            return None
        trial_mj.append(reading.joules / calls * 1e3)
        trial_w.append(reading.mean_w)
        rails.append(reading.rails_w)
        count, seconds = count + calls, seconds + reading.seconds
    names = set().union(*rails) if rails else set()
    mean_rails = {n: statistics.fmean(r[n] for r in rails if n in r) for n in sorted(names)}
    return EnergyStats(meter.source, workload, tuple(trial_mj), tuple(trial_w), count, seconds,
                       mean_rails)
