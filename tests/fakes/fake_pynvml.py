"""A stand-in for `pynvml` (nvidia-ml-py) with the calls perfsuite makes, typed as NVML gives
them: milliwatts, millijoules, MHz, degrees C, bit masks. State lives in module globals that a
test sets; `install(monkeypatch)` puts it in sys.modules as `pynvml`."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_InvalidArgument(NVMLError):
    pass


# nvml.h's nvmlClockType_t and nvmlTemperatureSensors_t: an id outside them is refused, as
# NVML_ERROR_INVALID_ARGUMENT; each clock type has its own reading.
NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_CLOCK_VIDEO = 0, 1, 2, 3
NVML_TEMPERATURE_GPU = 0
CLOCKS = {NVML_CLOCK_GRAPHICS: "graphics_mhz", NVML_CLOCK_SM: "sm_mhz", NVML_CLOCK_MEM: "mem_mhz",
          NVML_CLOCK_VIDEO: "video_mhz"}
MAX_CLOCKS = {NVML_CLOCK_GRAPHICS: "max_graphics_mhz", NVML_CLOCK_SM: "max_sm_mhz",
              NVML_CLOCK_MEM: "max_mem_mhz", NVML_CLOCK_VIDEO: "max_video_mhz"}


def _clock(table: dict[int, str], which: int) -> Any:
    if which not in table:
        raise NVMLError_InvalidArgument(f"clock type {which}: Invalid Argument")
    return _value(table[which])


STATE: dict[str, Any] = {}


def reset(**state: Any) -> None:
    STATE.clear()
    STATE.update(name="NVIDIA H100 80GB HBM3", power_mw=120_000, energy_mj=1_000_000.0,
                 sm_mhz=1980, mem_mhz=2619, max_sm_mhz=1980, temp_c=31, reasons=0x1,
                 graphics_mhz=1755, video_mhz=1635, max_graphics_mhz=1980, max_mem_mhz=2619,
                 max_video_mhz=1710,
                 load=0, driver="580.65.06", pids=(), bus_ids=("00000000:1B:00.0",), init_error=None)
    STATE.update(state)


def _value(key: str) -> Any:
    """The state's value; None (or a callable returning None) is a read NVML refuses."""
    value = STATE[key]
    value = value() if callable(value) else value
    if value is None:
        raise NVMLError_NotSupported(f"{key}: Not Supported")
    return value


def nvmlInit() -> None:
    if STATE["init_error"]:
        raise NVMLError(STATE["init_error"])


def nvmlDeviceGetHandleByPciBusId(bus_id: str) -> str:
    if bus_id not in STATE["bus_ids"]:
        raise NVMLError("Not Found")
    return bus_id


def nvmlDeviceGetHandleByIndex(index: int) -> str:
    return str(STATE["bus_ids"][index])


def nvmlDeviceGetName(handle: str) -> Any:
    return _value("name")  # str; bytes from older nvidia-ml-py releases


def nvmlDeviceGetPowerUsage(handle: str) -> int:
    return int(_value("power_mw"))


def nvmlDeviceGetTotalEnergyConsumption(handle: str) -> int:
    return int(_value("energy_mj"))


def nvmlDeviceGetClockInfo(handle: str, which: int) -> int:
    return int(_clock(CLOCKS, which))


def nvmlDeviceGetMaxClockInfo(handle: str, which: int) -> int:
    return int(_clock(MAX_CLOCKS, which))


def nvmlDeviceGetTemperature(handle: str, sensor: int) -> int:
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError_InvalidArgument(f"temperature sensor {sensor}: Invalid Argument")
    return int(_value("temp_c"))


def nvmlDeviceGetCurrentClocksEventReasons(handle: str) -> int:
    return int(_value("reasons"))


def nvmlDeviceGetUtilizationRates(handle: str) -> Any:
    return types.SimpleNamespace(gpu=_value("load"), memory=0)


def nvmlDeviceGetComputeRunningProcesses(handle: str) -> list[Any]:
    return [types.SimpleNamespace(pid=pid, usedGpuMemory=1 << 30) for pid in _value("pids")]


def nvmlSystemGetDriverVersion() -> Any:
    return _value("driver")  # str; bytes from older nvidia-ml-py releases


def install(monkeypatch: Any, **state: Any) -> types.ModuleType:
    reset(**state)
    module = sys.modules[__name__]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    monkeypatch.setattr(module, "__spec__", importlib.machinery.ModuleSpec("pynvml", None))
    return module
