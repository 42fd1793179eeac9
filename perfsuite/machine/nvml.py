"""A discrete NVIDIA GPU read through NVML (`nvidia-ml-py`, module `pynvml`): power, the
total-energy counter, clocks, temperature, throttle reasons, load, driver version.

Imported lazily; `open_gpu` returns why NVML cannot be used (not installed, no driver, a Jetson)
instead of raising. Every read returns None when the GPU does not support it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from perfsuite.lazy import is_installed, require

# nvmlClocksEventReason* bits (NVML's stable ABI): which of them mean the GPU is held back.
EVENT_REASONS = {
    0x1: "GPU idle", 0x2: "applications clocks setting", 0x4: "software power cap",
    0x8: "hardware slowdown", 0x10: "sync boost", 0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown", 0x80: "hardware power brake", 0x100: "display clock setting",
}
THROTTLING = 0x8 | 0x20 | 0x40 | 0x80  # thermal, power brake, hardware slowdown
NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0


class NvmlGpu:
    """One GPU's NVML handle; reads are cheap (microseconds) and never raise."""

    def __init__(self, pynvml: Any, handle: Any) -> None:
        self._nvml, self._handle = pynvml, handle
        name = self._read(pynvml.nvmlDeviceGetName) or ""
        self.name = name.decode() if isinstance(name, bytes) else str(name)

    def _read(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(self._handle, *args)
        except self._nvml.NVMLError:
            return None

    def power_w(self) -> float | None:
        milliwatts = self._read(self._nvml.nvmlDeviceGetPowerUsage)
        return milliwatts / 1e3 if milliwatts is not None else None

    def energy_mj(self) -> float | None:
        """The total-energy counter since the driver loaded (Volta and later)."""
        value = self._read(self._nvml.nvmlDeviceGetTotalEnergyConsumption)
        return float(value) if value is not None else None

    def clock_mhz(self, which: int = NVML_CLOCK_SM) -> float | None:
        value = self._read(self._nvml.nvmlDeviceGetClockInfo, which)
        return float(value) if value is not None else None

    def max_clock_mhz(self, which: int = NVML_CLOCK_SM) -> float | None:
        value = self._read(self._nvml.nvmlDeviceGetMaxClockInfo, which)
        return float(value) if value is not None else None

    def temperature_c(self) -> float | None:
        value = self._read(self._nvml.nvmlDeviceGetTemperature, NVML_TEMPERATURE_GPU)
        return float(value) if value is not None else None

    def event_reasons(self) -> int | None:
        """The clock event (throttle) reason bits; NVML 12 renamed the call."""
        for name in ("nvmlDeviceGetCurrentClocksEventReasons",
                     "nvmlDeviceGetCurrentClocksThrottleReasons"):
            function = getattr(self._nvml, name, None)
            if function is not None:
                value = self._read(function)
                return int(value) if value is not None else None
        return None

    def other_processes(self) -> list[int] | None:
        """PIDs of compute processes on this GPU other than this one and its children (an A/B
        run's workers), None where NVML cannot say."""
        running = self._read(self._nvml.nvmlDeviceGetComputeRunningProcesses)
        if running is None:
            return None
        return sorted({int(p.pid) for p in running} - own_processes())

    def load_percent(self) -> float | None:
        rates = self._read(self._nvml.nvmlDeviceGetUtilizationRates)
        return float(rates.gpu) if rates is not None else None

    def driver(self) -> str:
        try:
            version = self._nvml.nvmlSystemGetDriverVersion()
        except self._nvml.NVMLError:
            return ""
        return version.decode() if isinstance(version, bytes) else str(version)


def reason_names(bits: int) -> list[str]:
    return [name for bit, name in EVENT_REASONS.items() if bits & bit]


def open_gpu(pci_bus_id: str = "", index: int = 0) -> NvmlGpu | str:
    """The GPU at `pci_bus_id` (or `index`), or the reason NVML cannot read it."""
    if not is_installed("pynvml"):
        return "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    pynvml = require("pynvml")
    try:
        pynvml.nvmlInit()
        handle = (pynvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id) if pci_bus_id
                  else pynvml.nvmlDeviceGetHandleByIndex(index))
    except pynvml.NVMLError as exc:
        return f"NVML cannot be used here ({exc})"
    return NvmlGpu(pynvml, handle)


def torch_pci_bus_id() -> str:
    """The current torch CUDA device's PCI bus id as NVML names it ('' when torch cannot say)."""
    torch = require("torch")
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")):
        return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
    return ""


def own_processes(proc: str = "/proc") -> set[int]:
    """This process and its descendants (Linux /proc; elsewhere this process alone)."""
    found, queue = set(), [os.getpid()]
    while queue:
        pid = queue.pop()
        if pid in found:
            continue
        found.add(pid)
        try:
            tasks = os.listdir(f"{proc}/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"{proc}/{pid}/task/{task}/children") as children:
                    queue.extend(int(child) for child in children.read().split())
            except (OSError, ValueError):
                continue
    return found
