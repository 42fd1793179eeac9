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


STATE: dict[str, Any] = {}


def reset(**state: Any) -> None:
    STATE.clear()
    STATE.update(name="NVIDIA H100 80GB HBM3", power_mw=120_000, energy_mj=1_000_000.0,
                 sm_mhz=1980, mem_mhz=2619, max_sm_mhz=1980, temp_c=31, reasons=0x1,
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


def nvmlDeviceGetName(handle: str) -> str:
    return str(_value("name"))


def nvmlDeviceGetPowerUsage(handle: str) -> int:
    return int(_value("power_mw"))


def nvmlDeviceGetTotalEnergyConsumption(handle: str) -> int:
    return int(_value("energy_mj"))


def nvmlDeviceGetClockInfo(handle: str, which: int) -> int:
    return int(_value("sm_mhz" if which == 1 else "mem_mhz"))


def nvmlDeviceGetMaxClockInfo(handle: str, which: int) -> int:
    return int(_value("max_sm_mhz"))


def nvmlDeviceGetTemperature(handle: str, sensor: int) -> int:
    return int(_value("temp_c"))


def nvmlDeviceGetCurrentClocksEventReasons(handle: str) -> int:
    return int(_value("reasons"))


def nvmlDeviceGetUtilizationRates(handle: str) -> Any:
    return types.SimpleNamespace(gpu=_value("load"), memory=0)


def nvmlDeviceGetComputeRunningProcesses(handle: str) -> list[Any]:
    return [types.SimpleNamespace(pid=pid, usedGpuMemory=1 << 30) for pid in _value("pids")]


def nvmlSystemGetDriverVersion() -> str:
    return str(_value("driver"))


def install(monkeypatch: Any, **state: Any) -> types.ModuleType:
    reset(**state)
    module = sys.modules[__name__]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    monkeypatch.setattr(module, "__spec__", importlib.machinery.ModuleSpec("pynvml", None))
    return module
