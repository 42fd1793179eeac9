"""Fake Jetson trees built the way sysfs is: the i2c driver entries, /sys/class/devfreq and
/sys/class/thermal are relative symbolic links into /sys/devices, a devfreq folder's `device`
links back to the GPU's device, and each board's power monitor is in its JetPack's layout (iio:
ina3221x on JetPack 4, hwmon: ina3221 on JetPack 5+, Thor's INA238).

One board per Jetson generation. Rail powers and temperatures are the figures of a public
tegrastats line (quoted with each board; docs/jetson.md names the sources). tegrastats prints
power only: on hwmon boards the voltage is set to 5000 mV and the current to the whole mA that
comes closest, so a rail reads within 2.5 mW of the line. GPU clocks are each GPU's maximum,
locked (as after jetson_clocks). `python tests/fakes/board_trees.py KEY DIR` writes one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

MILLI_C = int  # thousandths of a degree, as sysfs writes them
NOT_REPORTING = -256000  # a power-gated zone (Orin's CV engines, some GPUs)


@dataclass(frozen=True)
class Monitor:
    """One power monitor chip: its i2c bus-address, the device folder it lives in, channels
    n -> (label, mW)."""

    bus_addr: str
    parent: str  # the i2c adapter's folder under sys/devices
    channels: dict[int, tuple[str, float]]


@dataclass(frozen=True)
class FakeBoard:
    key: str
    model: str
    release: str  # /etc/nv_tegra_release's first line
    nvpmodel_conf: str
    nvpmodel_status: str
    driver: str  # "ina3221x" (iio) or "ina3221" (hwmon)
    monitors: tuple[Monitor, ...]
    gpu_device: str  # the GPU's device folder under sys/devices
    devfreq: tuple[str, ...]  # its devfreq names (the first is the GPU's clock)
    of_node: str  # the device tree node name ('' where the device has none)
    load_file: str  # where the GPU's load (per mille) is, '' where sysfs has none
    max_hz: int
    zones: tuple[tuple[str, MILLI_C], ...]
    tegrastats: str  # the public line the figures come from
    ina238_mw: float = 0.0  # Thor's board input


def _conf(modes: dict[int, str], default: int) -> str:
    lines = [f"< POWER_MODEL ID={n} NAME={name} >\nCPU_ONLINE CORE_0 1" for n, name in modes.items()]
    return "\n".join([*lines, f"< PM_CONFIG DEFAULT={default} >"]) + "\n"


def _release(major: int, revision: str) -> str:
    return (f"# R{major} (release), REVISION: {revision}, GCID: 00000000, BOARD: generic, "
            "EABI: aarch64, DATE: Thu Jan 1 00:00:00 UTC 2026\n")


I2C = "platform/bus@0/c240000.i2c/i2c-1"
BOARDS = {board.key: board for board in (
    FakeBoard(
        "nano", "NVIDIA Jetson Nano Developer Kit", _release(32, "7.1"),
        _conf({0: "MAXN", 1: "5W"}, 0), "pmode:0000 fmode:quiet\n", "ina3221x",
        (Monitor("6-0040", "7000c400.i2c/i2c-6", {0: ("POM_5V_IN", 1388), 1: ("POM_5V_GPU", 122),
                                                  2: ("POM_5V_CPU", 163)}),),
        "57000000.gpu", ("57000000.gpu",), "gpu", "gpu.0/load", 921_600_000,
        (("AO-therm", 36000), ("CPU-therm", 31500), ("GPU-therm", 30500), ("PLL-therm", 28000),
         ("PMIC-Die", 100000), ("thermal-fan-est", 31250)),
        "GR3D_FREQ 0% PLL@28C CPU@31.5C PMIC@100C GPU@30.5C AO@36C thermal@31.25C "
        "POM_5V_IN 1388/1388 POM_5V_GPU 122/122 POM_5V_CPU 163/163"),
    FakeBoard(
        "tx2", "NVIDIA Jetson TX2 Developer Kit", _release(32, "7.4"),
        _conf({0: "MAXN", 1: "MAXQ", 2: "MAXP_CORE_ALL", 3: "MAXP_CORE_ARM",
               4: "MAXP_CORE_DENVER"}, 3), "pmode:0003\n", "ina3221x",
        (Monitor("0-0040", "3160000.i2c/i2c-0", {0: ("VDD_SYS_GPU", 153), 1: ("VDD_SYS_SOC", 536),
                                                 2: ("VDD_4V0_WIFI", 633)}),
         Monitor("0-0041", "3160000.i2c/i2c-0", {0: ("VDD_IN", 3140), 1: ("VDD_SYS_CPU", 536),
                                                 2: ("VDD_SYS_DDR", 557)})),
        "17000000.gp10b", ("17000000.gp10b",), "gp10b", "17000000.gp10b/load", 1_300_500_000,
        (("BCPU-therm", 42500), ("MCPU-therm", 42500), ("GPU-therm", 41000),
         ("PLL-therm", 42500), ("Tboard_tegra", 40000), ("Tdiode_tegra", 41250),
         ("PMIC-Die", 100000), ("thermal-fan-est", 41900)),
        "PLL@42.5C MCPU@42.5C PMIC@100C Tboard@40C GPU@41C BCPU@42.5C thermal@41.9C "
        "Tdiode@41.25C VDD_SYS_GPU 153/158 VDD_SYS_SOC 536/547 VDD_4V0_WIFI 633/527 "
        "VDD_IN 3140/3208 VDD_SYS_CPU 536/590 VDD_SYS_DDR 557/601"),
    FakeBoard(
        "xavier-nx", "NVIDIA Jetson Xavier NX Developer Kit", _release(32, "7.1"),
        _conf({0: "MODE_15W_2CORE", 1: "MODE_15W_4CORE", 2: "MODE_15W_6CORE",
               3: "MODE_10W_2CORE", 4: "MODE_10W_4CORE"}, 2), "pmode:0002\n", "ina3221x",
        (Monitor("7-0040", "c240000.i2c/i2c-7", {0: ("VDD_IN", 3902), 1: ("VDD_CPU_GPU_CV", 1331),
                                                 2: ("VDD_SOC", 997)}),),
        "17000000.gv11b", ("17000000.gv11b",), "gv11b", "gpu.0/load", 1_100_000_000,
        (("AO-therm", 35000), ("GPU-therm", 33000), ("PMIC-Die", 100000), ("AUX-therm", 33500),
         ("CPU-therm", 35000), ("thermal-fan-est", 33900)),
        "GR3D_FREQ 33% AO@35C GPU@33C PMIC@100C AUX@33.5C CPU@35C thermal@33.9C "
        "VDD_IN 3902/3611 VDD_CPU_GPU_CV 1331/1180 VDD_SOC 997/941"),
    FakeBoard(
        "agx-xavier", "Jetson-AGX", _release(32, "7.1"),
        _conf({0: "MAXN", 1: "MODE_10W", 2: "MODE_15W", 3: "MODE_30W_ALL"}, 2), "pmode:0000\n",
        "ina3221x",
        (Monitor("1-0040", "3180000.i2c/i2c-1", {0: ("GPU", 463), 1: ("CPU", 618),
                                                 2: ("SOC", 2936)}),
         Monitor("1-0041", "3180000.i2c/i2c-1", {0: ("CV", 0), 1: ("VDDRQ", 309),
                                                 2: ("SYS5V", 3306)})),
        "17000000.gv11b", ("17000000.gv11b",), "gv11b", "gpu.0/load", 1_377_000_000,
        (("AO-therm", 30000), ("GPU-therm", 30500), ("Tboard_tegra", 31000),
         ("Tdiode_tegra", 32000), ("AUX-therm", 30500), ("CPU-therm", 31500),
         ("thermal-fan-est", 30800), ("PMIC-Die", 100000)),
        "GR3D_FREQ 0% AO@30C GPU@30.5C Tboard@31C Tdiode@32C AUX@30.5C CPU@31.5C thermal@30.8C "
        "PMIC@100C GPU 463/463 CPU 618/618 SOC 2936/2936 CV 0/0 VDDRQ 309/309 SYS5V 3306/3306"),
    FakeBoard(
        "orin-nano", "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
        _release(36, "4.3"), _conf({0: "15W", 1: "25W", 2: "MAXN_SUPER", 3: "7W"}, 1),
        "pmode:0002 fmode:quiet\n", "ina3221",
        (Monitor("1-0040", I2C, {1: ("VDD_IN", 6626), 2: ("VDD_CPU_GPU_CV", 1228),
                                 3: ("VDD_SOC", 2380)}),),
        "platform/bus@0/17000000.gpu", ("17000000.gpu",), "gpu", "platform/bus@0/17000000.gpu/load",
        1_020_000_000,
        (("cpu-thermal", 50125), ("gpu-thermal", 50562), ("cv0-thermal", NOT_REPORTING),
         ("cv1-thermal", NOT_REPORTING), ("cv2-thermal", NOT_REPORTING), ("soc0-thermal", 49250),
         ("soc1-thermal", 50437), ("soc2-thermal", 49125), ("tj-thermal", 50562)),
        "GR3D_FREQ 0% cpu@50.125C soc2@49.125C soc0@49.25C gpu@50.562C tj@50.562C "
        "soc1@50.437C VDD_IN 6626mW/6625mW VDD_CPU_GPU_CV 1228mW/1230mW VDD_SOC 2380mW/2380mW"),
    # The Orin NX is the Orin Nano's module family (p3767: same rails, same monitor); no public
    # Orin NX line was found, so its figures are the Orin Nano's line, on JetPack 5's layout.
    FakeBoard(
        "orin-nx", "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
        _release(35, "4.1"), _conf({0: "MAXN", 1: "10W", 2: "15W", 3: "25W"}, 2),
        "pmode:0000\n", "ina3221",
        (Monitor("1-0040", I2C, {1: ("VDD_IN", 6626), 2: ("VDD_CPU_GPU_CV", 1228),
                                 3: ("VDD_SOC", 2380)}),),
        "17000000.ga10b", ("17000000.ga10b",), "ga10b", "platform/gpu.0/load", 918_000_000,
        (("cpu-thermal", 50125), ("gpu-thermal", 50562), ("cv0-thermal", NOT_REPORTING),
         ("soc0-thermal", 49250), ("soc1-thermal", 50437), ("soc2-thermal", 49125),
         ("tj-thermal", 50562)),
        "(the Orin Nano's) cpu@50.125C soc2@49.125C soc0@49.25C gpu@50.562C tj@50.562C "
        "soc1@50.437C VDD_IN 6626mW/6625mW VDD_CPU_GPU_CV 1228mW/1230mW VDD_SOC 2380mW/2380mW"),
    FakeBoard(
        "agx-orin", "NVIDIA Jetson AGX Orin Developer Kit", _release(35, "1.0"),
        _conf({0: "MAXN", 1: "MODE_15W", 2: "MODE_30W", 3: "MODE_50W"}, 2), "pmode:0000\n",
        "ina3221",
        (Monitor("1-0040", I2C, {1: ("VDD_GPU_SOC", 2390), 2: ("VDD_CPU_CV", 796),
                                 3: ("VIN_SYS_5V0", 3522)}),
         Monitor("1-0041", I2C, {1: ("NC", 0), 2: ("VDDQ_VDD2_1V8AO", 301), 3: ("NC", 0)})),
        "17000000.ga10b", ("17000000.ga10b",), "ga10b", "platform/gpu.0/load", 1_300_500_000,
        (("cv0-thermal", NOT_REPORTING), ("cpu-thermal", 41437), ("soc2-thermal", 39062),
         ("soc0-thermal", 39031), ("cv1-thermal", NOT_REPORTING), ("gpu-thermal", NOT_REPORTING),
         ("tj-thermal", 41656), ("soc1-thermal", 38937), ("cv2-thermal", NOT_REPORTING)),
        "CV0@-256C CPU@41.437C SOC2@39.062C SOC0@39.031C CV1@-256C GPU@-256C tj@41.656C "
        "SOC1@38.937C CV2@-256C VDD_GPU_SOC 2390mW/2390mW VDD_CPU_CV 796mW/796mW VIN_SYS_5V0 "
        "3522mW/3522mW NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW"),
    FakeBoard(
        "thor", "NVIDIA Jetson AGX Thor Developer Kit", _release(38, "4.0"),
        _conf({0: "MAXN", 1: "120W"}, 1), "pmode:0001\n", "ina3221",
        (Monitor("2-0040", "platform/bus@0/c250000.i2c/i2c-2",
                 {1: ("VDD_GPU", 1962), 2: ("VDD_CPU_SOC_MSS", 5887), 3: ("VIN_SYS_5V0", 5635)}),),
        "platform/gpu", ("gpu-gpc-0", "gpu-nvd-0"), "", "", 1_575_000_000,
        (("tj-thermal", 38875), ("soc012-thermal", 37468), ("cpu-thermal", 37343),
         ("soc345-thermal", 37406), ("gpu-thermal", 38875)),
        "cpu@37.343C tj@38.875C soc012@37.468C gpu@38.875C soc345@37.406C VDD_GPU 1962mW/1962mW "
        "VDD_CPU_SOC_MSS 5887mW/5887mW VIN_SYS_5V0 5635mW/5635mW VIN 19780mW/19780mW",
        ina238_mw=19780),
)}
TRIPS = (("passive", 99000), ("critical", 104500))  # every zone's, for the pre-flight


def hwmon_reading(milliwatts: float) -> tuple[int, int]:
    """(mV, mA) at 5 V for a tegrastats power: the whole mA closest to it."""
    return 5000, round(milliwatts / 5)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _link(root: Path, link: str, target: str) -> None:
    """A relative symbolic link at root/link to root/target, as sysfs makes them."""
    path = root / link
    path.parent.mkdir(parents=True, exist_ok=True)
    (root / target).mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(root / target, path.parent), path)


def _power_monitors(root: Path, board: FakeBoard) -> None:
    for index, monitor in enumerate(board.monitors):
        device = f"sys/devices/{monitor.parent}/{monitor.bus_addr}"
        _link(root, f"sys/bus/i2c/drivers/{board.driver}/{monitor.bus_addr}", device)
        if board.driver == "ina3221x":  # JetPack 4: iio, channels from 0, power in mW
            folder = root / device / f"iio:device{index}"
            for n, (label, mw) in monitor.channels.items():
                _write(folder / f"rail_name_{n}", label)
                _write(folder / f"in_power{n}_input", f"{mw:g}")
                _write(folder / f"in_voltage{n}_input", "5000")
                _write(folder / f"in_current{n}_input", str(round(mw / 5)))
                _write(folder / f"crit_current_limit_{n}", "4000 ma")
                _write(folder / f"warn_current_limit_{n}", "3000 ma")
            continue
        hwmon = f"{device}/hwmon/hwmon{index + 1}"  # JetPack 5+: hwmon, channels from 1
        _link(root, f"sys/class/hwmon/hwmon{index + 1}", hwmon)
        _write(root / hwmon / "name", "ina3221")
        for n, (label, mw) in monitor.channels.items():
            millivolts, milliamps = hwmon_reading(mw)
            files = {f"in{n}_label": label, f"in{n}_input": str(millivolts),
                     f"curr{n}_input": str(milliamps), f"curr{n}_crit": "4000",
                     f"curr{n}_max": "3000", f"curr{n}_crit_alarm": "0",
                     f"curr{n}_max_alarm": "0"}
            for name, text in files.items():
                _write(root / hwmon / name, text)
        _write(root / hwmon / "in7_label", "sum of shunt voltages")
        _write(root / hwmon / "in7_input", "48")
    if board.ina238_mw:  # Thor: the board's input
        device = "sys/devices/platform/bus@0/c250000.i2c/i2c-2/2-0044"
        _link(root, "sys/bus/i2c/drivers/ina238/2-0044", device)
        hwmon = f"{device}/hwmon/hwmon{len(board.monitors) + 1}"
        for name, text in {"name": "ina238", "power1_input": f"{board.ina238_mw * 1000:.0f}",
                           "curr1_crit_alarm": "0", "power1_crit_alarm": "0"}.items():
            _write(root / hwmon / name, text)


def _gpu(root: Path, board: FakeBoard) -> None:
    device = f"sys/devices/{board.gpu_device}"
    for name in board.devfreq:
        folder = f"{device}/devfreq/{name}"
        for file in ("cur_freq", "min_freq", "max_freq"):
            _write(root / folder / file, str(board.max_hz))
        _link(root, f"{folder}/device", device)
        _link(root, f"sys/class/devfreq/{name}", folder)
    if board.of_node:
        node = f"sys/firmware/devicetree/base/{board.of_node}@17000000"
        _write(root / node / "name", board.of_node)
        _link(root, f"{device}/of_node", node)
    if board.load_file:
        _write(root / "sys/devices" / board.load_file, "0")


def _thermal(root: Path, board: FakeBoard) -> None:
    for n, (name, milli_c) in enumerate(board.zones):
        zone = f"sys/devices/virtual/thermal/thermal_zone{n}"
        _write(root / zone / "type", name)
        _write(root / zone / "temp", str(milli_c))
        for i, (kind, trip) in enumerate(TRIPS):
            _write(root / zone / f"trip_point_{i}_type", kind)
            _write(root / zone / f"trip_point_{i}_temp", str(trip))
        _link(root, f"sys/class/thermal/thermal_zone{n}", zone)


def write_board(key: str, root: Path) -> Path:
    """The board's tree under `root` (for PERFSUITE_SYSFS_ROOT)."""
    board = BOARDS[key]
    _write(root / "proc/device-tree/model", board.model + "\x00")
    _write(root / "proc/cpuinfo", "processor\t: 0\nmodel name\t: ARMv8 Processor\n")
    _write(root / "etc/nv_tegra_release", board.release)
    _write(root / "etc/nvpmodel.conf", board.nvpmodel_conf)
    _write(root / "var/lib/nvpmodel/status", board.nvpmodel_status)
    _power_monitors(root, board)
    _gpu(root, board)
    _thermal(root, board)
    return root


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in BOARDS:
        sys.exit(f"usage: python {sys.argv[0]} {'|'.join(BOARDS)} FOLDER")
    print(write_board(sys.argv[1], Path(sys.argv[2])))
