"""A Jetson read from sysfs, procfs and /etc, without root: identity, GPU clock, temperatures
and INA3221 power rails (both layouts). Everything goes through one SystemFiles root.

Sources (docs/jetson.md has the paths per board): /proc/device-tree/model, /etc/nv_tegra_release,
/var/lib/nvpmodel/status with /etc/nvpmodel.conf, /var/lib/dpkg/status; GPU devfreq under
/sys/class/devfreq; thermal zones under /sys/devices/virtual/thermal; INA3221 under
/sys/bus/i2c/drivers/ina3221 (JetPack 5+, hwmon: in*_label, in*_input mV, curr*_input mA,
curr*_crit_alarm, curr*_max_alarm) or ina3221x (JetPack 4, iio: rail_name_N, in_power N mW,
in_current N mA, crit_current_limit_N mA), and Thor's INA238 (power1_input, uW).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from perfsuite.machine.sysroot import SystemFiles

# L4T release -> JetPack, every public release from 32.4 (jetson_stats' NVIDIA_JETPACK table,
# from NVIDIA's JetPack archive; 36.4.2 was a re-release of 6.1).
JETPACK = {
    "32.4.2": "4.4 DP", "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1",
    "32.5.2": "4.5.1", "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3",
    "32.7.4": "4.6.4", "32.7.5": "4.6.5", "32.7.6": "4.6.6", "34.0.1": "5.0 PRE-DP",
    "34.1.0": "5.0 DP", "34.1.1": "5.0.1 DP", "35.1.0": "5.0.2", "35.2.1": "5.1",
    "35.3.0": "5.1.1 PRE", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "35.6.1": "5.1.5", "35.6.2": "5.1.5", "35.6.3": "5.1.5", "35.6.4": "5.1.6",
    "36.0.0": "6.0 EA", "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.2": "6.1",
    "36.4.3": "6.2", "36.4.4": "6.2.1", "36.4.7": "6.2.1", "36.5.0": "6.2.2", "38.2.0": "7.0",
    "38.2.1": "7.0", "38.2.2": "7.0", "38.4.0": "7.1", "39.0.0": "7.2 EA", "39.2.0": "7.2",
}
JETPACK_MAJOR = {"32": "4", "34": "5", "35": "5", "36": "6", "38": "7", "39": "7"}
GPU_DEVFREQ_NAMES = ("gpu", "gv11b", "gp10b", "ga10b", "gb10b", "gm20b")
NVPMODEL_STATUS = "var/lib/nvpmodel/status"
NVPMODEL_CONF = "etc/nvpmodel.conf"
TRIP_TYPES = ("passive", "hot", "critical")  # "active" trips only start fans
NOT_REPORTING_MILLI_C = -40000  # a power-gated zone reads -256000 (Orin JetPack 6, Thor)
# dpkg package name patterns of what a JetPack ships, e.g. libnvinfer8, libcudnn9-cuda-12
PACKAGES = {"cuda": r"cuda-cudart-\d+-\d+", "cudnn": r"libcudnn\d+(-cuda-\d+)?",
            "tensorrt": r"libnvinfer\d+"}


@dataclass(frozen=True)
class JetsonIdentity:
    model: str
    l4t: str  # e.g. "36.4.0"
    jetpack: str  # e.g. "6.1" ("" when the release is not in the table)
    power_mode: str  # nvpmodel's mode id, e.g. "0" ("" when unreadable)
    power_mode_name: str  # e.g. "MAXN" (from /etc/nvpmodel.conf)
    cuda: str = ""
    cudnn: str = ""
    tensorrt: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def l4t_release(text: str) -> str:
    """'# R36 (release), REVISION: 4.0, ...' -> '36.4.0'."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)", text)
    return ".".join(match.groups()) if match else ""


def jetpack_for(l4t: str) -> str:
    """The JetPack of an L4T release; a release newer than the table, 'N.x'; '' when unknown."""
    if l4t in JETPACK:
        return JETPACK[l4t]
    major = JETPACK_MAJOR.get(l4t.split(".")[0])
    return f"{major}.x" if major else ""


def jetson_identity(files: SystemFiles) -> JetsonIdentity | None:
    """The board's identity, or None when this is not a Jetson."""
    model = files.text("proc/device-tree/model") or ""
    release = files.text("etc/nv_tegra_release")
    if release is None and "jetson" not in model.lower():
        return None
    l4t = l4t_release(release or "")
    mode = power_mode(files)
    versions = package_versions(files.text("var/lib/dpkg/status") or "")
    return JetsonIdentity(model or "unknown Jetson", l4t, jetpack_for(l4t), mode,
                          power_mode_names(files).get(mode, ""), **versions)


def power_mode(files: SystemFiles) -> str:
    """nvpmodel's current mode id ('pmode:0002 fmode:quiet' -> '2'); where its status file is
    missing, the configuration's default mode (power_mode_note says so); '' when unknown."""
    status = files.text(NVPMODEL_STATUS)
    if status is None and files.missing(NVPMODEL_STATUS):
        return default_power_mode(files)
    match = re.search(r"pmode:\s*(\d{1,9})\b", status or "")
    return str(int(match.group(1))) if match else ""


def default_power_mode(files: SystemFiles) -> str:
    """The mode /etc/nvpmodel.conf names as its default ('< PM_CONFIG DEFAULT=2 >'), or ''."""
    match = re.search(r"<\s*PM_CONFIG\s+DEFAULT=(\d{1,9})\s*>", files.text(NVPMODEL_CONF) or "")
    return str(int(match.group(1))) if match else ""


def power_mode_note(files: SystemFiles) -> str:
    """Where power_mode's answer came from when it is not nvpmodel's status file ('' when it is,
    or when there is no answer)."""
    if not files.missing(NVPMODEL_STATUS) or not default_power_mode(files):
        return ""
    return (f"assumed: the default of {files.shown(NVPMODEL_CONF)} "
            f"({files.shown(NVPMODEL_STATUS)} is missing)")


def power_mode_names(files: SystemFiles) -> dict[str, str]:
    """Mode id -> name, from '< POWER_MODEL ID=0 NAME=MAXN >' lines of /etc/nvpmodel.conf."""
    text = files.text(NVPMODEL_CONF) or ""
    return dict(re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", text))


def package_versions(dpkg_status: str) -> dict[str, str]:
    """CUDA runtime, cuDNN and TensorRT versions from dpkg's status file (installed only)."""
    found: dict[str, str] = {}
    for stanza in dpkg_status.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Status|Version):\s*(.+)$", stanza, re.MULTILINE))
        if "installed" not in fields.get("Status", "").split():
            continue
        for name, pattern in PACKAGES.items():
            if name not in found and re.fullmatch(pattern, fields.get("Package", "")):
                found[name] = fields.get("Version", "").split("-")[0]
    return found


@dataclass(frozen=True)
class GpuClock:
    devfreq: str  # the folder, relative to the root
    cur_mhz: float
    min_mhz: float
    max_mhz: float

    @property
    def locked(self) -> bool:
        return self.cur_mhz == self.max_mhz or self.min_mhz == self.max_mhz


def gpu_devfreq(files: SystemFiles) -> str | None:
    """The GPU's devfreq folder (Nano 57000000.gpu, Orin 17000000.ga10b, Thor gpu-gpc-0)."""
    for folder in files.glob("sys/class/devfreq/*"):
        name = folder.rsplit("/", 1)[-1].lower()
        node = (files.text(f"{folder}/device/of_node/name") or "").lower()
        if node in GPU_DEVFREQ_NAMES or any(n in name.split(".")[-1] for n in GPU_DEVFREQ_NAMES):
            return folder
    return None


def gpu_clock(files: SystemFiles, folder: str) -> GpuClock | str:
    """The GPU clock in MHz, or why it cannot be read."""
    values = [files.number(f"{folder}/{f}") for f in ("cur_freq", "min_freq", "max_freq")]
    for name, value in zip(("cur_freq", "min_freq", "max_freq"), values):
        if value is None:
            return files.problem(f"{folder}/{name}")
    cur, low, high = (v / 1e6 for v in values if v is not None)
    return GpuClock(folder, cur, low, high)


def gpu_load_percent(files: SystemFiles, folder: str) -> float | str:
    """The GPU's load (the driver reports per mille), or why it cannot be read."""
    for path in (f"{folder}/device/load", "sys/devices/gpu.0/load",
                 "sys/devices/platform/gpu.0/load"):
        value = files.number(path)
        if value is not None:
            return value / 10
    return files.problem(f"{folder}/device/load")


@dataclass(frozen=True)
class ThermalZone:
    name: str
    temp_c: float
    trip_c: float | None  # the lowest passive/hot/critical trip point
    trip_type: str


def thermal_zones(files: SystemFiles) -> list[ThermalZone | str]:
    """Each zone's temperature and lowest throttling trip point; a string for an unreadable one.
    PMIC zones are skipped: they report a fixed placeholder (jtop skips them too)."""
    zones: list[ThermalZone | str] = []
    for folder in files.glob("sys/devices/virtual/thermal/thermal_zone*"):
        name = files.text(f"{folder}/type") or folder.rsplit("/", 1)[-1]
        if "pmic" in name.lower():
            continue
        temp = files.number(f"{folder}/temp")
        if temp is None or temp <= NOT_REPORTING_MILLI_C:
            zones.append(f"{name}: " + (files.problem(f"{folder}/temp") if temp is None else
                                        f"reports {temp / 1e3:g} °C (not reporting)"))
            continue
        trips = []
        for trip in files.glob(f"{folder}/trip_point_*_type"):
            kind = files.text(trip) or ""
            value = files.number(trip.replace("_type", "_temp"))
            if kind in TRIP_TYPES and value is not None and value > 0:
                trips.append((value / 1e3, kind))
        low = min(trips) if trips else (None, "")
        zones.append(ThermalZone(name, temp / 1e3, low[0], low[1]))
    return zones


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: where its readings are, in either layout."""

    name: str
    power: str = ""  # JetPack 4 iio: in_powerN_input (mW); Thor's INA238: power1_input (uW)
    power_unit_w: float = 1e-3
    voltage_mv: str = ""  # JetPack 5+ hwmon: inN_input (mV) ...
    current_ma: str = ""  # ... and currN_input (mA)
    alarms: tuple[str, ...] = ()  # files that read 1 when an over-current alarm is raised
    crit_ma: str = ""  # JetPack 4: crit_current_limit_N (no alarm files there)
    chip: str = "INA3221"


def ina3221_rails(files: SystemFiles) -> list[Rail]:
    """Every named INA3221 channel ('NC' and the shunt-voltage sum skipped)."""
    rails = []
    for label in files.glob("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label"):
        name, folder = files.text(label) or "", label.rsplit("/", 1)[0]
        n = label.rsplit("/in", 1)[-1].split("_")[0]
        if _skipped(name):
            continue
        rails.append(Rail(name, voltage_mv=f"{folder}/in{n}_input", current_ma=f"{folder}/curr{n}_input",
                          alarms=(f"{folder}/curr{n}_crit_alarm", f"{folder}/curr{n}_max_alarm")))
    for label in files.glob("sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*"):
        name, folder = files.text(label) or "", label.rsplit("/", 1)[0]
        n = label.rsplit("_", 1)[-1]
        if _skipped(name):
            continue
        rails.append(Rail(name, power=f"{folder}/in_power{n}_input",
                          current_ma=f"{folder}/in_current{n}_input",
                          crit_ma=f"{folder}/crit_current_limit_{n}"))
    for power in files.glob("sys/bus/i2c/drivers/ina238/*/hwmon/hwmon*/power1_input"):
        folder = power.rsplit("/", 1)[0]  # Thor's board input (jtop names it VIN)
        rails.append(Rail("VIN", power=power, power_unit_w=1e-6, chip="INA238",
                          alarms=(f"{folder}/curr1_crit_alarm", f"{folder}/power1_crit_alarm")))
    return rails


def _skipped(name: str) -> bool:
    return not name or name.upper() == "NC" or "sum of shunt" in name.lower()


def rail_power_w(files: SystemFiles, rail: Rail) -> float | None:
    """The rail's power in W; None when unreadable or negative (a sensor fault, never 0 W)."""
    if rail.power:
        readings = [files.number(rail.power)]
        scale = rail.power_unit_w
    else:
        readings = [files.number(rail.voltage_mv), files.number(rail.current_ma)]
        scale = 1e-6
    watts = scale
    for value in readings:
        if value is None or value < 0:
            return None
        watts *= value
    return watts


def raised_alarms(files: SystemFiles, rail: Rail) -> list[str]:
    """This rail's over-current alarms that are raised, each naming its file."""
    raised = [f"{rail.name}: {files.shown(a)} = 1" for a in rail.alarms if files.number(a) == 1]
    if rail.crit_ma:
        current, limit = files.number(rail.current_ma), files.number(rail.crit_ma)
        if current is not None and limit is not None and limit > 0 and current >= limit:
            raised.append(f"{rail.name}: {current:g} mA at or above its critical limit "
                          f"{limit:g} mA ({files.shown(rail.crit_ma)})")
    return raised


def pick_rail(rails: list[Rail], preferred: tuple[str, ...]) -> Rail | None:
    by_name = {r.name.upper(): r for r in rails}
    return next((by_name[n] for n in preferred if n in by_name), None)
