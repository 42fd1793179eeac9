"""The GPU's state around a measurement: clocks, temperature, power (discrete NVIDIA GPUs).

Read through nvidia-smi when it is on PATH; Jetsons have none (their telemetry comes from sysfs).
A failed read returns None: the measurement goes on, the state is just not recorded.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass

from perfsuite.lazy import require

QUERY = "clocks.sm,clocks.mem,temperature.gpu,power.draw"


@dataclass(frozen=True)
class GpuState:
    sm_clock_mhz: float | None
    memory_clock_mhz: float | None
    temperature_c: float | None
    power_w: float | None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def parse_nvidia_smi(line: str) -> GpuState | None:
    fields = [part.strip() for part in line.strip().split(",")]
    if len(fields) != 4:
        return None
    sm, mem, temp, power = (_number(f) for f in fields)
    return GpuState(sm, mem, temp, power)


def nvidia_smi_selector() -> str:
    """The current torch CUDA device as nvidia-smi names it (PCI bus id; index as fallback)."""
    torch = require("torch")
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")):
        return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
    return str(index)


def read_gpu_state(selector: str, timeout_s: float = 5.0) -> GpuState | None:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        completed = subprocess.run(
            [executable, "-i", selector, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0 or not completed.stdout.strip():
        return None
    return parse_nvidia_smi(completed.stdout.splitlines()[0])
