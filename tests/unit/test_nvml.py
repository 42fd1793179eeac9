"""NVML (discrete GPUs) against tests/fakes/fake_pynvml.py: GPU state, the energy counter,
pre-flight clocks, throttle reasons and load, with numbers as NVML reports them."""

from __future__ import annotations

import os
import sys
import time

import pytest

from perfsuite import preflight
from perfsuite.energy import measure_energy
from perfsuite.nvml import open_gpu
from perfsuite.preflight import PreflightConfig
from perfsuite.telemetry import GpuState, NvmlTelemetry
from tests.fakes import fake_pynvml

BUS = "00000000:1B:00.0"


def telemetry(monkeypatch, **state) -> NvmlTelemetry:
    fake_pynvml.install(monkeypatch, **state)
    gpu = open_gpu(BUS)
    assert not isinstance(gpu, str), gpu
    return NvmlTelemetry(gpu)


def test_gpu_state_in_watts_mhz_and_degrees(monkeypatch):
    assert telemetry(monkeypatch).gpu_state() == GpuState(1980.0, 2619.0, 31.0, 120.0)


def test_energy_per_inference_from_the_total_energy_counter(monkeypatch):
    """Each inference adds 60.5 mJ to the counter: 60.5 mJ per inference in every trial."""
    counter = [5_000_000.0]
    nvml = telemetry(monkeypatch, energy_mj=lambda: counter[0])

    def infer():
        counter[0] += 60.5

    meter = nvml.meter()
    stats = measure_energy(infer, lambda: None, meter, "back-to-back device launches", trials=3,
                           trial_seconds=0.0, min_calls=10)
    assert meter.source == "NVML total energy"
    assert stats.trial_mj == pytest.approx((60.5, 60.5, 60.5))
    assert stats.inferences == 30 and stats.mean_w > 0


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
