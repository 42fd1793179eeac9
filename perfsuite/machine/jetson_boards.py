"""Every Jetson generation as its files really are: power monitor, input and GPU rails, GPU
devfreq, where GPU load is read, thermal zones and the default power mode.

Sources (docs/jetson.md cites them per row): jetson_stats (jtop's power, GPU and temperature
readers and its test captures), public tegrastats lines, NVIDIA's design guides and the upstream
Tegra device trees. A board that is not in the table is read with every board's names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Board:
    """What perfsuite needs to know of one Jetson generation."""

    name: str  # e.g. "Jetson AGX Xavier"
    soc: str  # e.g. "T194"
    model_words: tuple[str, ...]  # words of /proc/device-tree/model that name it (lower case)
    power_monitor: str  # the chip, its driver and i2c addresses
    input_rail: str  # the rail carrying the board's input power; "" where the rails are summed
    gpu_rails: tuple[str, ...]  # the rail(s) carrying the GPU
    gpu_rail_note: str  # what else a GPU rail carries ("" when it is the GPU's own)
    devfreq: tuple[str, ...]  # the GPU's folders under /sys/class/devfreq
    gpu_load: str  # "sysfs" or "NVML"
    thermal_zones: tuple[str, ...]  # the zones' types (PMIC-Die is a placeholder: skipped)
    default_mode: str  # /etc/nvpmodel.conf's PM_CONFIG DEFAULT ("" where not confirmed)

    def as_dict(self) -> dict[str, str]:
        return {"board": self.name, "soc": self.soc, "power monitor": self.power_monitor,
                "input rail": self.input_rail or "none: the rails are summed",
                "GPU rail": "/".join(self.gpu_rails) + (f" ({self.gpu_rail_note})"
                                                        if self.gpu_rail_note else ""),
                "GPU load from": self.gpu_load}


BOARDS = (
    Board("Jetson Nano", "T210", ("nano",), "INA3221, iio (ina3221x) at 6-0040", "POM_5V_IN",
          ("POM_5V_GPU",), "", ("57000000.gpu",), "sysfs",
          ("AO-therm", "CPU-therm", "GPU-therm", "PLL-therm", "PMIC-Die", "thermal-fan-est"), "0"),
    Board("Jetson TX2", "T186", ("tx2", "quill"),
          "INA3221 x2, iio (ina3221x) at 0-0040 and 0-0041", "VDD_IN", ("VDD_SYS_GPU",), "",
          ("17000000.gp10b",), "sysfs",
          ("BCPU-therm", "MCPU-therm", "GPU-therm", "PLL-therm", "AO-therm", "Tboard_tegra",
           "Tdiode_tegra", "PMIC-Die", "thermal-fan-est"), "3"),
    Board("Jetson Xavier NX", "T194", ("xavier nx",),
          "INA3221 at 7-0040, iio (ina3221x, JetPack 4) or hwmon (ina3221, JetPack 5)", "VDD_IN",
          ("VDD_CPU_GPU_CV",), "shared with the CPU and the CV engines", ("17000000.gv11b",),
          "sysfs", ("AO-therm", "CPU-therm", "GPU-therm", "AUX-therm", "PMIC-Die",
                    "thermal-fan-est"), ""),
    Board("Jetson AGX Xavier", "T194", ("agx xavier", "jetson-agx"),
          "INA3221 x2 at 1-0040 and 1-0041, iio (JetPack 4) or hwmon (JetPack 5)", "", ("GPU",),
          "", ("17000000.gv11b",), "sysfs",
          ("AO-therm", "CPU-therm", "GPU-therm", "AUX-therm", "Tboard_tegra", "Tdiode_tegra",
           "PMIC-Die", "thermal-fan-est"), "2"),
    Board("Jetson Orin Nano", "T234", ("orin nano",), "INA3221, hwmon (ina3221) at 1-0040",
          "VDD_IN", ("VDD_CPU_GPU_CV",), "shared with the CPU and the CV engines",
          ("17000000.ga10b", "17000000.gpu"), "sysfs",
          ("cpu-thermal", "gpu-thermal", "cv0-thermal", "cv1-thermal", "cv2-thermal",
           "soc0-thermal", "soc1-thermal", "soc2-thermal", "tj-thermal"), ""),
    Board("Jetson Orin NX", "T234", ("orin nx",), "INA3221, hwmon (ina3221) at 1-0040", "VDD_IN",
          ("VDD_CPU_GPU_CV",), "shared with the CPU and the CV engines",
          ("17000000.ga10b", "17000000.gpu"), "sysfs",
          ("cpu-thermal", "gpu-thermal", "cv0-thermal", "cv1-thermal", "cv2-thermal",
           "soc0-thermal", "soc1-thermal", "soc2-thermal", "tj-thermal"), ""),
    Board("Jetson AGX Orin", "T234", ("agx orin",),
          "INA3221 x2, hwmon (ina3221) at 1-0040 and 1-0041", "", ("VDD_GPU_SOC",),
          "shared with the SoC", ("17000000.ga10b", "17000000.gpu"), "sysfs",
          ("cpu-thermal", "gpu-thermal", "cv0-thermal", "cv1-thermal", "cv2-thermal",
           "soc0-thermal", "soc1-thermal", "soc2-thermal", "tj-thermal"), "2"),
    Board("Jetson AGX Thor", "T264", ("thor",),
          "INA3221, hwmon (ina3221) at 2-0040; INA238 (hwmon, power1_input in uW) for the input",
          "VIN", ("VDD_GPU",), "", ("gpu-gpc-0", "gpu-nvd-0"), "NVML",
          ("tj-thermal", "soc012-thermal", "cpu-thermal", "soc345-thermal", "gpu-thermal"), "1"),
)
# A board the table does not know is read with every board's names, most specific first.
ANY_INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN")
ANY_GPU_RAILS = ("VDD_GPU", "GPU", "POM_5V_GPU", "VDD_SYS_GPU", "VDD_GPU_SOC",
                 "VDD_CPU_GPU_CV")


def board_for(model: str) -> Board | None:
    """The board /proc/device-tree/model names ('NVIDIA Jetson AGX Orin Developer Kit'), or
    None. Longer names are tried first: 'orin nano' is not a Nano."""
    text = " ".join(model.lower().replace("\x00", " ").split())
    candidates = sorted(((word, board) for board in BOARDS for word in board.model_words),
                        key=lambda pair: -len(pair[0]))
    return next((board for word, board in candidates if word in text), None)


def input_rails(board: Board | None) -> tuple[str, ...]:
    """The names to look for the board's input rail under (none where the rails are summed)."""
    if board is None:
        return ANY_INPUT_RAILS
    return (board.input_rail,) if board.input_rail else ()


def gpu_rails(board: Board | None) -> tuple[str, ...]:
    return board.gpu_rails if board is not None else ANY_GPU_RAILS
