"""NVML (discrete GPUs) against tests/fakes/fake_pynvml.py: GPU state, the energy counter,
pre-flight clocks, throttle reasons and load, with numbers as NVML reports them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from perfsuite.machine import preflight
from perfsuite.machine.nvml import open_gpu
from perfsuite.machine.preflight import PreflightConfig
from perfsuite.machine.telemetry import GpuState, NvmlTelemetry
from perfsuite.measure.energy import measure_energy
from tests.fakes import fake_pynvml

BUS = "00000000:1B:00.0"


def telemetry(monkeypatch, **state) -> NvmlTelemetry:
    fake_pynvml.install(monkeypatch, **state)
    gpu = open_gpu(BUS)
    assert not isinstance(gpu, str), gpu
    return NvmlTelemetry(gpu)


def test_gpu_state_in_watts_mhz_and_degrees(monkeypatch):
    assert telemetry(monkeypatch).gpu_state() == GpuState(1980.0, 2619.0, 31.0, 120.0)


def test_energy_per_inference_from_a_counter_that_steps_every_100_ms(monkeypatch):
    """As on an H100: the counter moves every 100 ms. Each inference takes 0.5 ms at 150 W
    (75 mJ). Windows of 0.35 s read at arbitrary times would be off by up to 0.1 s in 0.35 s;
    windows aligned to the counter's steps give 75 mJ exactly."""
    calls = [0]  # time is calls x 0.5 ms; the counter holds the energy up to the last step
    nvml = telemetry(monkeypatch, energy_mj=lambda: (calls[0] // 200) * 200 * 75.0)

    def infer():
        calls[0] += 1

    meter = nvml.meter(clock=lambda: calls[0] * 0.0005)
    stats = measure_energy(infer, lambda: None, meter, "back-to-back device launches", trials=3,
                           trial_seconds=0.35, min_calls=10, clock=lambda: calls[0] * 0.0005)
    assert meter.source == "NVML total energy"
    assert stats.trial_mj == pytest.approx((75.0, 75.0, 75.0))
    assert stats.trial_w == pytest.approx((150.0, 150.0, 150.0))
    assert stats.inferences == 3 * 800 and stats.seconds == pytest.approx(3 * 0.4)


def test_a_failed_counter_read_gives_no_energy_not_a_wrong_one(monkeypatch):
    """The counter steps with every inference; the read that starts the window fails (NVML
    raises): the window must count nothing, not the 1,000 J since the driver loaded."""
    calls = [0]
    nvml = telemetry(monkeypatch, energy_mj=lambda: None if calls[0] == 1 else
                     1_000_000.0 + 60 * calls[0])

    def infer():
        calls[0] += 1

    stats = measure_energy(infer, lambda: None, nvml.meter(), "synchronised calls", trials=1,
                           trial_seconds=0.0)
    assert calls[0] == 12 and stats is None


def test_without_the_counter_power_is_sampled(monkeypatch):
    nvml = telemetry(monkeypatch, energy_mj=None, power_mw=150_000)
    meter = nvml.meter()
    assert meter.source == "NVML power"
    meter.start()
    time.sleep(0.01)  # constant power: the figures do not depend on how long this takes
    reading = meter.stop()
    assert reading.mean_w == pytest.approx(150.0)
    assert reading.rails_w["board"] == pytest.approx(150.0)


def test_idle_gpu_passes_its_checks(monkeypatch):
    checks = {c.name: c for c in telemetry(monkeypatch).checks(PreflightConfig())}
    assert checks["GPU clocks"].detail == "SM 1980 MHz of 1980 MHz, memory 2619 MHz, 31 °C"
    assert checks["throttle reasons"].status == "ok"
    assert checks["throttle reasons"].detail == "no throttling (GPU idle)"
    assert checks["GPU idle"].status == "ok"


def test_thermal_slowdown_and_another_process_fail(monkeypatch):
    checks = telemetry(monkeypatch, reasons=0x4 | 0x40, load=55,
                       pids=(4242, os.getpid())).checks(PreflightConfig())
    message = preflight.failure_message(checks, "fail")
    assert ("throttle reasons: FAILED: clocks held back: software power cap, hardware thermal "
            "slowdown") in message
    assert ("GPU idle: FAILED: other processes compute on it: pids 4242; load 55% (this run "
            "included). Fix: stop other GPU work") in message


def test_this_process_alone_is_idle(monkeypatch):
    checks = {c.name: c for c in telemetry(monkeypatch, load=80,
                                           pids=(os.getpid(),)).checks(PreflightConfig())}
    assert checks["GPU idle"].status == "ok"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc (Linux)")
def test_this_runs_own_workers_are_not_other_processes(monkeypatch):
    """An A/B run's workers are this process's children: they compute on the GPU as its own."""
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        checks = {c.name: c for c in telemetry(monkeypatch, load=80, pids=(
            os.getpid(), worker.pid)).checks(PreflightConfig())}
    finally:
        worker.kill()
        worker.wait()
    assert checks["GPU idle"].status == "ok", checks["GPU idle"].describe()


def test_unsupported_reads_are_unknown(monkeypatch):
    checks = {c.name: c.status for c in telemetry(monkeypatch, reasons=None, sm_mhz=None,
                                                  pids=None).checks(PreflightConfig())}
    assert checks == {"GPU clocks": "unknown", "throttle reasons": "unknown",
                      "GPU idle": "unknown"}


def test_nvml_that_cannot_start_says_why(monkeypatch):
    fake_pynvml.install(monkeypatch, init_error="Driver Not Loaded")
    assert open_gpu(BUS) == "NVML cannot be used here (Driver Not Loaded)"


def test_nvml_not_installed_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert open_gpu(BUS) == "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
