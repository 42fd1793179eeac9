"""Every Jetson generation read from a tree built the way its sysfs is (tests/fakes/board_trees.py:
symbolic links, iio and hwmon monitors, Thor's INA238), through `python -m perfsuite machine`.
Expected figures are worked out by hand from each board's tegrastats line: iio boards read the
line's milliwatts; hwmon boards read 5000 mV x the nearest whole mA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perfsuite.machine.jetson_boards import BOARDS, board_for
from tests.fakes.board_trees import BOARDS as FAKES
from tests.fakes.board_trees import write_board

REPO = Path(__file__).resolve().parents[3]
# board: (board table name, energy source, input W, GPU rail, GPU rail W, GPU MHz, GPU idle,
#         power mode, temperatures (PMIC placeholders and power-gated zones left out))
EXPECTED = {
    "nano": ("Jetson Nano", "INA3221 POM_5V_IN", 1.388, "POM_5V_GPU", 0.122, 921.6,
             "load 0% (limit 10%, from sysfs)", "mode 0 (MAXN)",
             {"AO-therm": 36.0, "CPU-therm": 31.5, "GPU-therm": 30.5, "PLL-therm": 28.0,
              "thermal-fan-est": 31.25}),
    "tx2": ("Jetson TX2", "INA3221 VDD_IN", 3.14, "VDD_SYS_GPU", 0.153, 1300.5,
            "load 0% (limit 10%, from sysfs)", "mode 3 (MAXP_CORE_ARM)",
            {"BCPU-therm": 42.5, "MCPU-therm": 42.5, "GPU-therm": 41.0, "PLL-therm": 42.5,
             "Tboard_tegra": 40.0, "Tdiode_tegra": 41.25, "thermal-fan-est": 41.9}),
    "xavier-nx": ("Jetson Xavier NX", "INA3221 VDD_IN", 3.902, "VDD_CPU_GPU_CV", 1.331, 1100.0,
                  "load 0% (limit 10%, from sysfs)", "mode 2 (MODE_15W_6CORE)",
                  {"AO-therm": 35.0, "GPU-therm": 33.0, "AUX-therm": 33.5, "CPU-therm": 35.0,
                   "thermal-fan-est": 33.9}),
    # no input rail: the sum 463 + 618 + 2936 + 0 + 309 + 3306 mW
    "agx-xavier": ("Jetson AGX Xavier", "INA3221 sum of rails", 7.632, "GPU", 0.463, 1377.0,
                   "load 0% (limit 10%, from sysfs)", "mode 0 (MAXN)",
                   {"AO-therm": 30.0, "GPU-therm": 30.5, "Tboard_tegra": 31.0,
                    "Tdiode_tegra": 32.0, "AUX-therm": 30.5, "CPU-therm": 31.5,
                    "thermal-fan-est": 30.8}),
    # 5000 mV x 1325 mA; the GPU's rail 5000 mV x 246 mA
    "orin-nano": ("Jetson Orin Nano", "INA3221 VDD_IN", 6.625, "VDD_CPU_GPU_CV", 1.23, 1020.0,
                  "load 0% (limit 10%, from sysfs)", "mode 2 (MAXN_SUPER)",
                  {"cpu-thermal": 50.125, "gpu-thermal": 50.562, "soc0-thermal": 49.25,
                   "soc1-thermal": 50.437, "soc2-thermal": 49.125, "tj-thermal": 50.562}),
    "orin-nx": ("Jetson Orin NX", "INA3221 VDD_IN", 6.625, "VDD_CPU_GPU_CV", 1.23, 918.0,
                "load 0% (limit 10%, from sysfs)", "mode 0 (MAXN)",
                {"cpu-thermal": 50.125, "gpu-thermal": 50.562, "soc0-thermal": 49.25,
                 "soc1-thermal": 50.437, "soc2-thermal": 49.125, "tj-thermal": 50.562}),
    # no input rail (VIN_SYS_5V0 is the 5 V system rail): 2390 + 795 + 3520 + 300 mW
    "agx-orin": ("Jetson AGX Orin", "INA3221 sum of rails", 7.005, "VDD_GPU_SOC", 2.39, 1300.5,
                 "load 0% (limit 10%, from sysfs)", "mode 0 (MAXN)",
                 {"cpu-thermal": 41.437, "soc0-thermal": 39.031, "soc1-thermal": 38.937,
                  "soc2-thermal": 39.062, "tj-thermal": 41.656}),  # its GPU zone is gated
    # the INA238's power1_input, 19780000 uW; VDD_GPU 5000 mV x 392 mA; load from NVML
    "thor": ("Jetson AGX Thor", "INA238 VIN", 19.78, "VDD_GPU", 1.96, 1575.0,
             "load 7% (limit 10%, from NVML)", "mode 1 (120W)",
             {"tj-thermal": 38.875, "soc012-thermal": 37.468, "cpu-thermal": 37.343,
              "soc345-thermal": 37.406, "gpu-thermal": 38.875}),
}
# pynvml for the subprocess: Thor's GPU reports 7% load; the other boards have no NVML
NVML_SHIM = """import sys
sys.path.insert(0, {repo!r})
from tests.fakes import fake_pynvml as _fake
_fake.reset(**{state!r})
sys.modules["pynvml"] = _fake
"""


def machine_report(tmp_path: Path, key: str) -> dict:
    root = write_board(key, tmp_path / key)
    shim = tmp_path / "shim"
    shim.mkdir()
    state = {"load": 7, "name": "NVIDIA Thor"} if key == "thor" else {
        "init_error": "NVML Shared Library Not Found"}
    (shim / "pynvml.py").write_text(NVML_SHIM.format(repo=str(REPO), state=state))
    env = {"PERFSUITE_SYSFS_ROOT": str(root), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(shim)}
    done = subprocess.run([sys.executable, "-m", "perfsuite", "--rootdir", str(tmp_path),
                           "machine", "--seconds", "0.1"], capture_output=True, text=True,
                          env=env, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_fakes_are_built_as_sysfs_is(tmp_path):
    root = write_board("agx-orin", tmp_path)
    for link in ("sys/bus/i2c/drivers/ina3221/1-0040", "sys/class/devfreq/17000000.ga10b",
                 "sys/devices/17000000.ga10b/devfreq/17000000.ga10b/device",
                 "sys/class/thermal/thermal_zone0"):
        assert (root / link).is_symlink() and not os.path.isabs(os.readlink(root / link))
        assert (root / link).resolve().is_dir()


@pytest.mark.parametrize("key", list(EXPECTED))
def test_each_board_reads_its_rails_clock_load_mode_and_temperatures(tmp_path, key):
    name, source, input_w, gpu_rail, gpu_w, mhz, load, mode, temperatures = EXPECTED[key]
    report = machine_report(tmp_path, key)
    sample = report["sample"]
    assert report["telemetry"] == "jetson" and sample["board"]["board"] == name
    assert sample["source"] == source and sample["power_w"] == pytest.approx(input_w)
    assert sample["gpu_rail"] == gpu_rail and sample["gpu_power_w"] == pytest.approx(gpu_w)
    assert sample["gpu_mhz"] == pytest.approx(mhz)
    assert sample["temperatures_c"] == pytest.approx(temperatures)
    checks = {c["name"]: c for c in report["preflight"]["checks"]}
    assert checks["GPU idle"]["status"] == "ok" and checks["GPU idle"]["detail"] == load
    assert checks["GPU clock locked"]["status"] == "ok"
    assert checks["power mode"]["detail"].startswith(mode)
    assert checks["temperatures"]["status"] == "ok"
    assert checks["over-current alarms"]["status"] == "ok"


@pytest.mark.parametrize(("model", "board"), [
    ("NVIDIA Jetson Nano Developer Kit", "Jetson Nano"),
    ("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "Jetson Orin Nano"),
    ("NVIDIA Jetson Xavier NX Developer Kit", "Jetson Xavier NX"),
    ("Jetson-AGX", "Jetson AGX Xavier"),
    ("NVIDIA Jetson AGX Orin Developer Kit", "Jetson AGX Orin"),
    ("NVIDIA Jetson AGX Thor Developer Kit", "Jetson AGX Thor"),
    ("quill", "Jetson TX2"),
])
def test_the_board_is_found_from_its_model_name(model, board):
    assert board_for(model).name == board


def test_a_board_the_table_does_not_know_is_read_with_every_boards_names(tmp_path):
    root = write_board("tx2", tmp_path / "tx2")
    (root / "proc/device-tree/model").write_text("ACME Robot Brain (Jetson carrier)\x00")
    from perfsuite.machine.jetson import jetson_identity
    from perfsuite.machine.sysroot import SystemFiles
    from perfsuite.machine.telemetry import JetsonTelemetry

    files = SystemFiles(root)
    telemetry = JetsonTelemetry(files, jetson_identity(files))
    assert telemetry.board is None
    assert telemetry.input_rail().name == "VDD_IN" and telemetry.gpu_rail().name == "VDD_SYS_GPU"


def test_every_board_in_the_table_has_a_fake_tree():
    assert {b.name for b in BOARDS} == {EXPECTED[key][0] for key in FAKES}
