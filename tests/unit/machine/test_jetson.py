"""Jetson identity, pre-flight verdicts, power and energy per inference against the fake sysfs
trees of tests/fakes/sysfs.py (a Nano on JetPack 4, an AGX Orin on JetPack 6, a Thor on
JetPack 7). Expected numbers are worked out by hand from the trees' files."""

from __future__ import annotations

import json
import threading

import pytest

from perfsuite.errors import ConfigError, PreflightFailed, PreflightSkip
from perfsuite.machine import preflight
from perfsuite.machine.fingerprint import fingerprint, machine_key
from perfsuite.machine.jetson import jetson_identity
from perfsuite.machine.monitor import RunMonitor
from perfsuite.machine.preflight import PreflightConfig
from perfsuite.machine.sysroot import SystemFiles, system_files
from perfsuite.machine.telemetry import JetsonTelemetry, open_telemetry
from perfsuite.measure.energy import SampledMeter, integrate, measure_energy
from tests.fakes import fake_pynvml
from tests.fakes.sysfs import NANO, NANO_IIO, ORIN, ORIN_GPU, ORIN_HWMON_A, THOR, write_tree


@pytest.fixture(params=["nano", "orin", "thor"])
def board(request, tmp_path, monkeypatch):
    tree = {"nano": NANO, "orin": ORIN, "thor": THOR}[request.param]
    # Thor's GPU load comes from NVML; the other boards have no NVML (and must not need it)
    fake_pynvml.install(monkeypatch, **({"load": 7} if request.param == "thor" else
                                        {"init_error": "NVML Shared Library Not Found"}))
    return request.param, SystemFiles(write_tree(tree, tmp_path))


# board: (model, L4T, JetPack, mode, mode name, CUDA, cuDNN, TensorRT, key)
IDENTITY = {
    "nano": ("NVIDIA Jetson Nano Developer Kit", "32.7.1", "4.6.1", "0", "MAXN", "10.2.300",
             "8.2.1.32", "8.2.1", "nvidia-jetson-nano-developer-kit-mode-0"),
    "orin": ("NVIDIA Jetson AGX Orin Developer Kit", "36.4.0", "6.1", "0", "MAXN", "12.6.68",
             "9.3.0.75", "10.3.0.30", "nvidia-jetson-agx-orin-developer-kit-mode-0"),
    "thor": ("NVIDIA Jetson AGX Thor Developer Kit", "38.2.0", "7.0", "1", "120W", "13.0.48",
             "9.12.0.46", "10.13.2.6", "nvidia-jetson-agx-thor-developer-kit-mode-1"),
}
# board: (input power source, input W, GPU-rail W, GPU MHz, GPU temperature)
POWER = {
    "nano": ("INA3221 POM_5V_IN", 4.512, 1.2, 921.6, 37.0),
    "orin": ("INA3221 sum of rails", 12.5, 6.0, 1300.5, 44.0),  # AGX Orin: no input rail
    "thor": ("INA238 VIN", 45.0, 15.0, 1575.0, 50.0),  # the INA238's power1_input, in uW
}


def test_identity_and_machine_key(board):
    name, files = board
    model, l4t, jetpack, mode, mode_name, cuda, cudnn, trt, key = IDENTITY[name]
    found = jetson_identity(files)
    assert (found.model, found.l4t, found.jetpack, found.power_mode, found.power_mode_name,
            found.cuda, found.cudnn, found.tensorrt) == (model, l4t, jetpack, mode, mode_name,
                                                         cuda, cudnn, trt)
    fp = fingerprint(files)
    assert machine_key(fp) == key
    assert fp.software["jetpack_tensorrt"] == trt and fp.jetpack == jetpack


def test_power_gpu_clock_and_temperature(board):
    name, files = board
    source, input_w, gpu_w, mhz, temp = POWER[name]
    telemetry = JetsonTelemetry(files, jetson_identity(files))
    meter = telemetry.meter()
    assert meter.source == source
    state = telemetry.gpu_state()
    assert (state.sm_clock_mhz, state.temperature_c) == (mhz, temp)
    assert state.power_w == pytest.approx(gpu_w)
    rails = telemetry.rails_w()
    total = rails.get(source.split()[-1], sum(rails.values()))
    assert total == pytest.approx(input_w)


def test_energy_per_inference_over_a_timed_window(board):
    """Each call takes 1 ms on an injected clock; 10 calls per trial at constant power P:
    P watts x 10 ms / 10 calls = P millijoules per inference."""
    name, files = board
    _, input_w, *_ = POWER[name]
    ticks = [0.0]
    telemetry = JetsonTelemetry(files, jetson_identity(files))
    rail = telemetry.input_rail()
    fixed = SampledMeter(telemetry.meter().source, telemetry.rails_w, rail.name if rail else None,
                         interval_s=None, clock=lambda: ticks[0])

    def call():
        ticks[0] += 0.001

    stats = measure_energy(call, lambda: None, fixed, "synchronised calls", trials=3,
                           trial_seconds=0.01, clock=lambda: ticks[0])
    assert stats.inferences == 30
    assert stats.trial_mj == pytest.approx((input_w,) * 3)
    assert stats.mean_w == pytest.approx(input_w)
    assert stats.seconds == pytest.approx(0.03)


def test_an_inference_that_raises_leaves_no_sampling_thread(tmp_path):
    files = SystemFiles(write_tree(ORIN, tmp_path))
    meter = JetsonTelemetry(files, jetson_identity(files)).meter()

    def broken():
        raise RuntimeError("CUDA error: an illegal memory access")

    with pytest.raises(RuntimeError, match="illegal memory access"):
        measure_energy(broken, lambda: None, meter, "synchronised calls", 1, 0.01)
    assert not any(t.name == "perfsuite-power" for t in threading.enumerate())


def test_power_that_changes_is_integrated_with_the_trapezoid_rule():
    samples = [(0.0, {"VDD_IN": 10.0}), (1.0, {"VDD_IN": 20.0}), (3.0, {"VDD_IN": 20.0})]
    reading = integrate(samples, "VDD_IN")
    assert reading.joules == pytest.approx(15.0 + 40.0)
    assert reading.mean_w == pytest.approx(55.0 / 3)


EXPECTED_VERDICTS = {
    "nano": {"power mode": "ok", "GPU clock locked": "ok", "GPU idle": "ok", "temperatures": "ok",
             "over-current alarms": "ok"},
    "orin": {"power mode": "ok", "GPU clock locked": "ok", "GPU idle": "ok", "temperatures": "ok",
             "over-current alarms": "ok"},
    "thor": {"power mode": "ok", "GPU clock locked": "ok", "GPU idle": "ok",
             "temperatures": "ok", "over-current alarms": "ok"},
}


def test_preflight_verdicts_of_a_healthy_board(board):
    name, files = board
    checks = preflight.jetson_checks(files, PreflightConfig())
    assert {c.name: c.status for c in checks} == EXPECTED_VERDICTS[name]
    by_name = {c.name: c for c in checks}
    if name == "orin":
        assert by_name["GPU idle"].detail == "load 1.2% (limit 10%, from sysfs)"
        assert "cv0-thermal" not in by_name["temperatures"].detail  # -256 °C: not reporting
    if name == "thor":  # no device/load in Thor's sysfs
        assert by_name["GPU idle"].detail == "load 7% (limit 10%, from NVML)"


def test_thor_without_nvml_names_both_sources_of_gpu_load(tmp_path, monkeypatch):
    fake_pynvml.install(monkeypatch, init_error="Driver Not Loaded")
    files = SystemFiles(write_tree(THOR, tmp_path))
    (check,) = [c for c in preflight.jetson_checks(files, PreflightConfig()) if c.name == "GPU idle"]
    assert check.status == "unknown"
    assert check.detail == (f"{tmp_path}/sys/class/devfreq/gpu-gpc-0/device/load is missing; "
                            "NVML cannot be used here (Driver Not Loaded)")


def orin(tmp_path, **changes):
    files = SystemFiles(write_tree(ORIN, tmp_path))
    for relative, text in changes.items():
        (tmp_path / relative).write_text(text)
    return files


def failed_message(files, config=PreflightConfig()):
    checks = preflight.jetson_checks(files, config)
    return preflight.failure_message(checks, "fail"), {c.name: c.status for c in checks}


def test_unlocked_gpu_clock_fails_with_the_documented_message(tmp_path):
    files = orin(tmp_path, **{f"{ORIN_GPU}/cur_freq": "306000000"})
    message, statuses = failed_message(files)
    assert statuses["GPU clock locked"] == "failed"
    assert (f"perfsuite pre-flight | GPU clock locked: FAILED: not locked at its maximum: 306 MHz "
            f"(min 306, max 1300.5, {tmp_path}/{ORIN_GPU}). Fix: sudo jetson_clocks (locks the "
            "clocks at the power mode's maximum).") in message
    assert "--perf-preflight=warn" in message


def test_over_current_alarm_fails_naming_the_rail_and_file(tmp_path):
    files = orin(tmp_path, **{f"{ORIN_HWMON_A}/curr1_crit_alarm": "1"})
    message, statuses = failed_message(files)
    assert statuses["over-current alarms"] == "failed"
    assert f"VDD_GPU_SOC: {tmp_path}/{ORIN_HWMON_A}/curr1_crit_alarm = 1" in message
    assert "sudo nvpmodel -m N" in message


def test_jetpack4_over_current_is_the_current_against_its_critical_limit(tmp_path):
    write_tree(NANO, tmp_path)
    (tmp_path / NANO_IIO / "in_current0_input").write_text("4100")
    message, statuses = failed_message(SystemFiles(tmp_path))
    assert statuses["over-current alarms"] == "failed"
    assert "POM_5V_IN: 4100 mA at or above its critical limit 4000 mA" in message


def test_power_mode_other_than_configured_fails_with_the_nvpmodel_command(tmp_path):
    files = orin(tmp_path, **{"var/lib/nvpmodel/status": "pmode:0002\n"})
    message, statuses = failed_message(files, PreflightConfig(power_mode=0))
    assert statuses["power mode"] == "failed"
    assert "power mode: FAILED: mode 2 (MODE_30W), configured 0. Fix: sudo nvpmodel -m 0" in message


def test_a_missing_nvpmodel_status_falls_back_to_the_configurations_default_saying_so(tmp_path):
    files = orin(tmp_path)  # /etc/nvpmodel.conf: < PM_CONFIG DEFAULT=2 >
    (tmp_path / "var/lib/nvpmodel/status").unlink()
    assert jetson_identity(files).power_mode == "2"
    assert jetson_identity(files).power_mode_name == "MODE_30W"
    (check,) = [c for c in preflight.jetson_checks(files, PreflightConfig(power_mode=2))
                if c.name == "power mode"]
    assert (check.status, check.detail) == (
        "ok", f"mode 2 (MODE_30W), assumed: the default of {tmp_path}/etc/nvpmodel.conf "
              f"({tmp_path}/var/lib/nvpmodel/status is missing), as configured")
    message, statuses = failed_message(files, PreflightConfig(power_mode=0))
    assert statuses["power mode"] == "failed" and "assumed: the default of" in message


def test_hot_zone_and_busy_gpu_fail(tmp_path):
    files = orin(tmp_path, **{"sys/devices/virtual/thermal/thermal_zone1/temp": "99500",
                              f"{ORIN_GPU}/device/load": "455"})
    message, statuses = failed_message(files)
    assert statuses["temperatures"] == statuses["GPU idle"] == "failed"
    assert "gpu-thermal 99.5 °C (trip 99)" in message and "load 45.5% (limit 10%, from sysfs)" in message


def test_missing_and_unreadable_files_give_unknown_not_failed(tmp_path):
    files = orin(tmp_path)
    (tmp_path / "var/lib/nvpmodel/status").unlink()
    (tmp_path / "etc/nvpmodel.conf").unlink()  # no default to fall back to either
    for name in ("cur_freq",):  # a folder where a file should be: unreadable even for root
        (tmp_path / ORIN_GPU / name).unlink()
        (tmp_path / ORIN_GPU / name).mkdir()
    statuses = {c.name: (c.status, c.detail) for c in preflight.jetson_checks(files,
                                                                              PreflightConfig())}
    assert statuses["power mode"] == ("unknown", f"{tmp_path}/var/lib/nvpmodel/status is missing")
    assert statuses["GPU clock locked"][0] == "unknown"
    assert statuses["GPU clock locked"][1].endswith("cur_freq cannot be read (Is a directory)")
    assert preflight.failed(preflight.jetson_checks(files, PreflightConfig())) == []


def test_missing_rails_leave_no_meter_and_unknown_alarms(tmp_path):
    tree = {k: v for k, v in ORIN.items() if "ina3221" not in k}
    files = SystemFiles(write_tree(tree, tmp_path))
    assert JetsonTelemetry(files, jetson_identity(files)).meter() is None
    checks = {c.name: c.status for c in preflight.jetson_checks(files, PreflightConfig())}
    assert checks["over-current alarms"] == "unknown"


@pytest.mark.parametrize("action, raised", [("fail", PreflightFailed), ("skip", PreflightSkip)])
def test_run_monitor_applies_the_failure_action(tmp_path, action, raised):
    files = orin(tmp_path, **{f"{ORIN_GPU}/cur_freq": "306000000"})
    monitor = RunMonitor(PreflightConfig(), action, lambda: "cuda", lambda: files)
    with pytest.raises(raised, match="GPU clock locked: FAILED"):
        monitor.before_timing()


def test_run_monitor_warns_and_records_both_ends(tmp_path):
    files = orin(tmp_path, **{f"{ORIN_GPU}/cur_freq": "306000000"})
    monitor = RunMonitor(PreflightConfig(), "warn", lambda: "cuda", lambda: files)
    (warning,) = monitor.before_timing()
    assert warning.startswith("pre-flight: GPU clock locked: FAILED")
    assert monitor.after_run() is None  # warn: recorded, not failed
    record = json.loads(json.dumps(monitor.as_dict()))
    assert record["telemetry"] == "jetson" and record["identity"]["jetpack"] == "6.1"
    assert [c["status"] for c in record["preflight_after"]].count("failed") == 1


def test_a_check_that_failed_before_timing_does_not_fail_the_end_again(tmp_path):
    files = orin(tmp_path, **{f"{ORIN_GPU}/cur_freq": "306000000"})
    monitor = RunMonitor(PreflightConfig(), "skip", lambda: "cuda", lambda: files)
    with pytest.raises(PreflightSkip):
        monitor.before_timing()
    assert monitor.after_run() is None  # the benchmarks were skipped: nothing to distrust
    assert "GPU idle" not in {c.name for c in monitor.after}  # the load is then the run's own


def test_clock_unlocked_at_the_end_fails_a_strict_run(tmp_path):
    files = orin(tmp_path)
    monitor = RunMonitor(PreflightConfig(), "fail", lambda: "cuda", lambda: files)
    assert monitor.before_timing() == ()
    (tmp_path / ORIN_GPU / "cur_freq").write_text("612000000")
    assert "after the run" in monitor.after_run() and "612 MHz" in monitor.after_run()


def test_not_a_jetson_gives_one_notice_line(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("model name : AMD EPYC\n")
    telemetry = open_telemetry(SystemFiles(tmp_path), "cpu")
    assert telemetry.kind == "none" and telemetry.meter() is None
    assert telemetry.notice == (f"Jetson features off: not a Jetson ({tmp_path} has no "
                                "etc/nv_tegra_release and its proc/device-tree/model names none)"
                                "; no GPU power or energy on cpu.")
    monitor = RunMonitor(PreflightConfig(), "fail", lambda: "cpu", lambda: SystemFiles(tmp_path))
    assert monitor.before_timing() == ()
    assert monitor.summary_lines() == [
        f"perfsuite: {telemetry.notice}",
        "perfsuite pre-flight (before timing; on failure: fail):",
        f"  CPU idle: unknown: {tmp_path}/proc/stat is missing."]


def test_sysfs_root_must_be_a_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"PERFSUITE_SYSFS_ROOT='.*nowhere' \| no such folder"):
        system_files({"PERFSUITE_SYSFS_ROOT": str(tmp_path / "nowhere")})
    assert system_files({"PERFSUITE_SYSFS_ROOT": str(tmp_path)}).root == tmp_path


def test_failure_action_is_strict_in_ci():
    assert preflight.failure_action("auto", {"CI": "true"}) == "fail"
    assert preflight.failure_action("auto", {}) == "warn"
    assert preflight.failure_action("skip", {"CI": "true"}) == "skip"


@pytest.mark.parametrize(("l4t", "jetpack"), [
    ("32.4.3", "4.4"), ("32.5.2", "4.5.1"), ("34.1.1", "5.0.1 DP"), ("35.6.4", "5.1.6"),
    ("36.4.2", "6.1"), ("38.4.0", "7.1"), ("39.2.0", "7.2"),
    ("36.9.9", "6.x"),  # newer than the table: the major release only
    ("31.1.0", ""),  # older than the table (JetPack 4.1): not guessed
])
def test_every_public_l4t_release_names_its_jetpack(l4t, jetpack):
    from perfsuite.machine.jetson import jetpack_for

    assert jetpack_for(l4t) == jetpack
