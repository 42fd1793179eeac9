"""Fake Jetson file trees (sysfs, procfs, /etc, /var) for PERFSUITE_SYSFS_ROOT.

Three boards, each in the layout its JetPack uses (paths and units: docs/jetson.md):
- NANO: Jetson Nano, JetPack 4.6.1 (L4T 32.7.1), INA3221 through the iio driver (ina3221x);
- ORIN: Jetson AGX Orin, JetPack 6.1 (L4T 36.4.0), INA3221 through hwmon, no board-input rail;
- THOR: Jetson AGX Thor, JetPack 7.0 (L4T 38.2.0), INA3221 through hwmon plus the INA238 that
  measures the board's input (power1_input in microwatts).
Sysfs symlinks (devfreq's `device`) are plain folders here. `write_tree(TREE, root)` makes one;
`python tests/fakes/sysfs.py orin DIR` writes one for `PERFSUITE_SYSFS_ROOT=DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path

THERMAL = "sys/devices/virtual/thermal"


def _zone(n: int, name: str, milli_c: int, trips: tuple[tuple[str, int], ...] = ()) -> dict[str, str]:
    zone = {f"{THERMAL}/thermal_zone{n}/type": name, f"{THERMAL}/thermal_zone{n}/temp": str(milli_c)}
    for i, (kind, temp) in enumerate(trips):
        zone[f"{THERMAL}/thermal_zone{n}/trip_point_{i}_type"] = kind
        zone[f"{THERMAL}/thermal_zone{n}/trip_point_{i}_temp"] = str(temp)
    return zone


def _hwmon(folder: str, channels: dict[int, tuple[str, int, int]]) -> dict[str, str]:
    """INA3221 hwmon channels: n -> (label, mV, mA)."""
    files = {}
    for n, (label, millivolts, milliamps) in channels.items():
        files[f"{folder}/in{n}_label"] = label
        files[f"{folder}/in{n}_input"] = str(millivolts)
        files[f"{folder}/curr{n}_input"] = str(milliamps)
        files[f"{folder}/curr{n}_crit"] = "4000"
        files[f"{folder}/curr{n}_max"] = "3000"
        files[f"{folder}/curr{n}_crit_alarm"] = "0"
        files[f"{folder}/curr{n}_max_alarm"] = "0"
    files[f"{folder}/in7_label"] = "sum of shunt voltages"
    files[f"{folder}/in7_input"] = "48"
    return files


def _dpkg(*packages: tuple[str, str]) -> str:
    return "\n\n".join(f"Package: {name}\nStatus: install ok installed\nVersion: {version}"
                       for name, version in packages) + "\n"


NANO_IIO = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
NANO_GPU = "sys/class/devfreq/57000000.gpu"
NANO: dict[str, str] = {
    "proc/device-tree/model": "NVIDIA Jetson Nano Developer Kit\x00",
    "proc/cpuinfo": "processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\n",
    "etc/nv_tegra_release": "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, "
                            "EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022\n",
    "etc/nvpmodel.conf": "< POWER_MODEL ID=0 NAME=MAXN >\nCPU_ONLINE CORE_0 1\n"
                         "< POWER_MODEL ID=1 NAME=5W >\nCPU_ONLINE CORE_0 1\n< PM_CONFIG DEFAULT=0 >\n",
    "var/lib/nvpmodel/status": "pmode:0000 fmode:quiet\n",
    "var/lib/dpkg/status": _dpkg(("cuda-cudart-10-2", "10.2.300-1"),
                                 ("libcudnn8", "8.2.1.32-1+cuda10.2"),
                                 ("libnvinfer8", "8.2.1-8+cuda10.2")),
    f"{NANO_GPU}/cur_freq": "921600000", f"{NANO_GPU}/min_freq": "76800000",
    f"{NANO_GPU}/max_freq": "921600000", f"{NANO_GPU}/device/load": "30",
    **_zone(0, "AO-therm", 36500, (("critical", 101000),)),
    **_zone(1, "CPU-therm", 38000, (("active", 30000), ("passive", 97000), ("critical", 101000))),
    **_zone(2, "GPU-therm", 37000, (("passive", 97000), ("critical", 101000))),
    **_zone(3, "PMIC-Die", 100000, (("critical", 90000),)),  # a placeholder: skipped
    f"{NANO_IIO}/rail_name_0": "POM_5V_IN", f"{NANO_IIO}/in_power0_input": "4512",
    f"{NANO_IIO}/in_current0_input": "888", f"{NANO_IIO}/in_voltage0_input": "5080",
    f"{NANO_IIO}/crit_current_limit_0": "4000 ma", f"{NANO_IIO}/warn_current_limit_0": "3500 ma",
    f"{NANO_IIO}/rail_name_1": "POM_5V_GPU", f"{NANO_IIO}/in_power1_input": "1200",
    f"{NANO_IIO}/in_current1_input": "240", f"{NANO_IIO}/in_voltage1_input": "5000",
    f"{NANO_IIO}/crit_current_limit_1": "2000 ma",
    f"{NANO_IIO}/rail_name_2": "POM_5V_CPU", f"{NANO_IIO}/in_power2_input": "900",
    f"{NANO_IIO}/in_current2_input": "180", f"{NANO_IIO}/in_voltage2_input": "5000",
    f"{NANO_IIO}/crit_current_limit_2": "2000 ma",
}

ORIN_HWMON_A = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
ORIN_HWMON_B = "sys/bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon4"
ORIN_GPU = "sys/class/devfreq/17000000.gpu"
ORIN: dict[str, str] = {
    "proc/device-tree/model": "NVIDIA Jetson AGX Orin Developer Kit\x00",
    "proc/cpuinfo": "processor\t: 0\nCPU part\t: 0xd42\n",
    "etc/nv_tegra_release": "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, "
                            "EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024\n"
                            "# KERNEL_VARIANT: oot\n",
    "etc/nvpmodel.conf": "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=MODE_15W >\n"
                         "< POWER_MODEL ID=2 NAME=MODE_30W >\n< POWER_MODEL ID=3 NAME=MODE_50W >\n"
                         "< PM_CONFIG DEFAULT=2 >\n",
    "var/lib/nvpmodel/status": "pmode:0000 fmode:fanNull\n",
    "var/lib/dpkg/status": _dpkg(("cuda-cudart-12-6", "12.6.68-1"),
                                 ("libcudnn9-cuda-12", "9.3.0.75-1"),
                                 ("libnvinfer10", "10.3.0.30-1+cuda12.5"),
                                 ("libnvinfer-bin", "10.3.0.30-1+cuda12.5")),
    f"{ORIN_GPU}/cur_freq": "1300500000", f"{ORIN_GPU}/min_freq": "306000000",
    f"{ORIN_GPU}/max_freq": "1300500000", f"{ORIN_GPU}/device/load": "12",
    f"{ORIN_GPU}/device/of_node/name": "gpu",
    **_zone(0, "cpu-thermal", 45500, (("active", 40000), ("passive", 99000), ("critical", 104500))),
    **_zone(1, "gpu-thermal", 44000, (("passive", 99000), ("critical", 104500))),
    **_zone(2, "cv0-thermal", -256000),  # power-gated: not reporting
    **_zone(3, "tj-thermal", 46000, (("passive", 99000), ("critical", 104500))),
    **_hwmon(ORIN_HWMON_A, {1: ("VDD_GPU_SOC", 5000, 1200), 2: ("VDD_CPU_CV", 5000, 400),
                            3: ("VIN_SYS_5V0", 5000, 800)}),
    **_hwmon(ORIN_HWMON_B, {1: ("NC", 0, 0), 2: ("VDDQ_VDD2_1V8AO", 5000, 100)}),
}

THOR_HWMON = "sys/bus/i2c/drivers/ina3221/2-0040/hwmon/hwmon2"
THOR_INA238 = "sys/bus/i2c/drivers/ina238/2-0044/hwmon/hwmon5"
THOR_GPU = "sys/class/devfreq/gpu-gpc-0"
THOR: dict[str, str] = {
    "proc/device-tree/model": "NVIDIA Jetson AGX Thor Developer Kit\x00",
    "proc/cpuinfo": "processor\t: 0\nCPU part\t: 0xd84\n",
    "etc/nv_tegra_release": "# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, "
                            "EABI: aarch64, DATE: Fri Aug 22 00:55:42 UTC 2025\n",
    "etc/nvpmodel.conf": "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=120W >\n"
                         "< PM_CONFIG DEFAULT=1 >\n",
    "var/lib/nvpmodel/status": "pmode:0001\n",
    "var/lib/dpkg/status": _dpkg(("cuda-cudart-13-0", "13.0.48-1"),
                                 ("libcudnn9-cuda-13", "9.12.0.46-1"),
                                 ("libnvinfer10", "10.13.2.6-1+cuda13.0")),
    f"{THOR_GPU}/cur_freq": "1575000000", f"{THOR_GPU}/min_freq": "1575000000",
    f"{THOR_GPU}/max_freq": "1575000000",  # no load file: the idle check is unknown
    **_zone(0, "tj-thermal", 52000, (("passive", 99000),)),
    **_zone(1, "gpu-thermal", 50000, (("passive", 99000),)),
    **_hwmon(THOR_HWMON, {1: ("VDD_GPU", 5000, 3000), 2: ("VDD_CPU_SOC_MSS", 5000, 2000),
                          3: ("VIN_SYS_5V0", 5000, 1000)}),
    f"{THOR_INA238}/name": "ina238", f"{THOR_INA238}/power1_input": "45000000",
    f"{THOR_INA238}/curr1_crit_alarm": "0", f"{THOR_INA238}/power1_crit_alarm": "0",
}

TREES = {"nano": NANO, "orin": ORIN, "thor": THOR}


def write_tree(tree: dict[str, str], root: Path) -> Path:
    for relative, text in tree.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in TREES:
        sys.exit(f"usage: python {sys.argv[0]} {'|'.join(TREES)} FOLDER")
    print(write_tree(TREES[sys.argv[1]], Path(sys.argv[2])))
