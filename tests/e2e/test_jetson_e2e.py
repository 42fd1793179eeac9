"""A Jetson run end to end: pytest on a tiny model with PERFSUITE_SYSFS_ROOT at a fake AGX Orin
(tests/fakes/sysfs.py). Latency and the energy windows are timed by a virtual clock that only
the model's spin advances, so power and energy per inference are exact: 12.5 W (the sum of the
Orin's rails) x 2 ms = 25 mJ per inference, whatever the machine's load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import SPIN_MS_ENV, TINY_CONFIG, VIRTUAL_CLOCK_ENV

from tests.fakes.sysfs import ORIN, ORIN_GPU, ORIN_HWMON_A, write_tree

REPO = Path(__file__).resolve().parents[2]
KEY = "orin-test"
ARGS = ("-p", "no:cacheprovider", "--perf-backends=torch", "--perf-precisions=fp32",
        f"--perf-machine-key={KEY}", "--benchmark-timer=tiny_models.virtual_clock",
        "--perf-suite=only", "-k", "test_latency or test_size")
# CPU prior noise is 30% for latency and energy: limits the tiny benchmark can be gated at.
CONFIG = (TINY_CONFIG.replace("rounds = 5", "rounds = 20\nenergy_trial_seconds = 0.01") +
          "\n[tool.perfsuite.gate]\nmax_increase = 0.6\ntail_max_increase = 0.7\n"
          "energy_max_increase = 0.6\n")


@pytest.fixture
def orin(pytester, tmp_path, monkeypatch):
    pytester.makefile(".toml", pyproject=CONFIG)
    pytester.makeini("[pytest]\naddopts = -ra\n")
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(SPIN_MS_ENV, "2.0")
    monkeypatch.setenv(VIRTUAL_CLOCK_ENV, "1")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("PERFSUITE_SYSFS_ROOT", str(write_tree(ORIN, tmp_path / "orin")))
    return pytester


def set_file(relative: str, text: str) -> None:
    (Path(os.environ["PERFSUITE_SYSFS_ROOT"]) / relative).write_text(text)


def test_power_and_energy_per_inference_in_the_table_and_json(orin):
    result = orin.runpytest_subprocess(*ARGS, "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "backend*median ms*W*mJ/inf*notes",
        "torch*fp32*cpu*2.000*12.5*25.00*",
        "perfsuite: Jetson: model NVIDIA Jetson AGX Orin Developer Kit, l4t 36.4.0, jetpack 6.1, "
        "power mode 0, power mode name MAXN, cuda 12.6.68, cudnn 9.3.0.75, tensorrt 10.3.0.30",
        "perfsuite pre-flight (before timing; on failure: warn):",
        "  power mode: ok: mode 0 (MAXN); not pinned*",
        "  GPU clock locked: ok: 1300.5 MHz (min 306, max 1300.5, *17000000.gpu).",
        "  GPU idle: ok: load 1.2% (limit 10%, from sysfs).",
        "  temperatures: ok: below their trip points: cpu-thermal 45.5 °C (trip 99), gpu-thermal "
        "44 °C (trip 99), tj-thermal 46 °C (trip 99).",
        "  over-current alarms: ok: none raised on VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0, "
        "VDDQ_VDD2_1V8AO.",
        "perfsuite pre-flight (after the run; on failure: warn):",
    ])
    data = json.loads((orin.path / "out.json").read_text())
    (bench,) = [b for b in data["benchmarks"] if "latency" in b["name"]]
    energy = bench["extra_info"]["energy"]
    assert (energy["source"], energy["workload"]) == ("INA3221 sum of rails", "synchronised calls")
    assert energy["median_mj"] == pytest.approx(25.0) and energy["mean_w"] == pytest.approx(12.5)
    assert energy["rails_w"]["VDD_GPU_SOC"] == pytest.approx(6.0)
    assert bench["extra_info"]["gpu_state"]["before"] == {
        "sm_clock_mhz": 1300.5, "memory_clock_mhz": None, "temperature_c": 44.0, "power_w": 6.0}
    machine = data["machine_info"]["perfsuite"]
    assert machine["identity"]["jetpack"] == "6.1" and machine["telemetry"] == "jetson"
    assert {c["name"]: c["status"] for c in machine["preflight_after"]}["GPU clock locked"] == "ok"


@pytest.mark.parametrize("action, outcome", [("fail", {"failed": 1}), ("skip", {"skipped": 1}),
                                             ("warn", {"passed": 1})])
def test_unlocked_clock_fails_skips_or_warns(orin, action, outcome):
    set_file(f"{ORIN_GPU}/cur_freq", "306000000")
    result = orin.runpytest_subprocess(*ARGS, f"--perf-preflight={action}")
    result.assert_outcomes(**{"passed": 1, **{k: v + (1 if k == "passed" else 0)
                                              for k, v in outcome.items()}})
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if action == "fail" else pytest.ExitCode.OK)
    result.stdout.fnmatch_lines([f"perfsuite pre-flight (before timing; on failure: {action}):",
                                 "  GPU clock locked: FAILED: *"])
    message = ("perfsuite pre-flight | GPU clock locked: FAILED: not locked at its maximum: "
               "306 MHz (min 306, max 1300.5, *). Fix: sudo jetson_clocks*")
    if action == "warn":
        result.stdout.fnmatch_lines(["torch*fp32*cpu*pre-flight*"])
    else:
        result.stdout.fnmatch_lines([f"*{message}", "*The latency benchmarks "
                                     f"{'fail' if action == 'fail' else 'skip'} until it is fixed*"])
    assert "Traceback" not in result.stdout.str()


def test_strict_in_ci_by_default(orin, monkeypatch):
    monkeypatch.setenv("CI", "true")
    set_file(f"{ORIN_HWMON_A}/curr1_crit_alarm", "1")
    result = orin.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*over-current alarms: FAILED: VDD_GPU_SOC: *curr1_crit_alarm = 1*"])


def test_an_energy_regression_fails_the_item_while_latency_passes(orin):
    orin.runpytest_subprocess(*ARGS, "--perf-save-baseline").assert_outcomes(passed=2)
    stored = json.loads((orin.path / "baselines" / KEY / "baseline.json").read_text())
    assert stored["latency"]["tiny-torch-fp32"][0]["energy"]["median_mj"] == pytest.approx(25.0)
    set_file(f"{ORIN_HWMON_A}/curr1_input", "8700")  # GPU rail 6 W -> 43.5 W: 50 W in all
    result = orin.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=1, failed=1)
    # CPU prior 30%, one recording: fails above e^(3 x 30% x sqrt 2) = x3.571
    result.stdout.fnmatch_lines([
        "perfsuite gate | tiny-torch-fp32 energy per inference REGRESSED: 100 mJ vs baseline "
        "25 mJ (x4.000, fails above x3.571)*"])
    result.stdout.fnmatch_lines(["torch*fp32*cpu*50*100.0*REGRESSED, resolves +*% energy"])
    assert "median end to end REGRESSED" not in result.stdout.str()


def test_off_a_jetson_one_notice_line_and_no_energy_columns(orin, monkeypatch, tmp_path):
    (tmp_path / "pc" / "proc").mkdir(parents=True)
    monkeypatch.setenv("PERFSUITE_SYSFS_ROOT", str(tmp_path / "pc"))
    result = orin.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=2)
    notices = [line for line in result.stdout.lines if "Jetson" in line or "pre-flight" in line
               or "CPU idle" in line]
    missing = f"  CPU idle: unknown: {tmp_path / 'pc'}/proc/stat is missing."
    assert notices == [f"perfsuite: Jetson features off: not a Jetson ({tmp_path / 'pc'} has no "
                       "etc/nv_tegra_release and its proc/device-tree/model names none); no GPU "
                       "power or energy on cpu.",
                       "perfsuite pre-flight (before timing; on failure: warn):", missing,
                       "perfsuite pre-flight (after the run; on failure: warn):", missing]
    assert "mJ/inf" not in result.stdout.str()


def test_a_sysfs_root_that_is_no_folder_is_a_usage_error(orin, monkeypatch, tmp_path):
    monkeypatch.setenv("PERFSUITE_SYSFS_ROOT", str(tmp_path / "missing"))
    result = orin.runpytest_subprocess(*ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PERFSUITE_SYSFS_ROOT=*missing* | no such folder.*"])


def test_machine_command_prints_identity_verdicts_and_a_sample(tmp_path):
    root = write_tree(ORIN, tmp_path / "orin")
    env = {"PERFSUITE_SYSFS_ROOT": str(root), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "perfsuite", "--rootdir", str(tmp_path),
                           "machine", "--seconds", "0.1"], capture_output=True, text=True,
                          env=env, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["machine_key"] == "nvidia-jetson-agx-orin-developer-kit-mode-0"
    assert report["identity"]["l4t"] == "36.4.0" and report["telemetry"] == "jetson"
    assert {c["name"]: c["status"] for c in report["preflight"]["checks"]} == {
        "power mode": "ok", "GPU clock locked": "ok", "GPU idle": "ok", "temperatures": "ok",
        "over-current alarms": "ok"}
    sample = report["sample"]
    assert sample["power_w"] == pytest.approx(12.5) and sample["gpu_mhz"] == 1300.5
    assert sample["temperatures_c"]["tj-thermal"] == 46.0
