"""The machine's fingerprint and the baseline key derived from it.

The key names the hardware (ISA, CPU, GPU) and, on a Jetson, the board and its power mode
(perfsuite.machine.jetson reads both, through PERFSUITE_SYSFS_ROOT):
things that change latency and that a software upgrade does not. Volatile readings (clock rates,
temperatures) never enter it. Software versions are recorded beside it and compared separately.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from dataclasses import asdict, dataclass, field

from perfsuite import __version__
from perfsuite.lazy import is_installed, require
from perfsuite.machine.jetson import jetson_identity
from perfsuite.machine.nvml import NvmlGpu, open_gpu, torch_pci_bus_id
from perfsuite.machine.sysroot import SystemFiles, system_files

MACHINE_KEY_ENV = "PERFSUITE_MACHINE_KEY"
# What shapes every number, whatever the backends; the backend registry adds each backend's own
# (perfsuite.backends.software_packages).
SOFTWARE_PACKAGES = ("torch", "torchvision", "onnx", "numpy")


@dataclass(frozen=True)
class MachineFingerprint:
    isa: str
    cpu_model: str
    cpu_count: int
    gpu_name: str = ""
    compute_capability: str = ""
    sm_count: int = 0
    gpu_memory_gib: float = 0.0
    driver: str = ""
    cuda: str = ""
    jetson_model: str = ""
    l4t_release: str = ""
    jetpack: str = ""
    nvpmodel_mode: str = ""
    software: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def machine_key(fp: MachineFingerprint) -> str:
    """A readable slug of the hardware identity, e.g. x86_64-amd-epyc-2cpu-nvidia-h100-80gb-hbm3."""
    if fp.jetson_model:
        parts = [fp.jetson_model, f"mode-{fp.nvpmodel_mode}" if fp.nvpmodel_mode else ""]
    else:
        parts = [fp.isa, fp.cpu_model, f"{fp.cpu_count}cpu", fp.gpu_name]
    return "-".join(slug(p) for p in parts if p and slug(p))


def software_versions(packages: tuple[str, ...] = SOFTWARE_PACKAGES) -> dict[str, str]:
    """Installed versions of what shapes the numbers; read from package metadata, no imports."""
    versions = {"python": platform.python_version(), "perfsuite": __version__}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model(cpuinfo: str) -> str:
    for key in ("model name", "Model", "Hardware", "CPU part"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or "unknown-cpu"


def gpu_facts() -> dict[str, object]:
    """CUDA GPU identity through torch (only when torch is installed and sees a GPU)."""
    if not is_installed("torch"):
        return {}
    torch = require("torch")
    if not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {
        "gpu_name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "sm_count": int(props.multi_processor_count),
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "cuda": str(torch.version.cuda or ""),
        "driver": _driver_version(),
    }


def board_release(files: SystemFiles | None = None) -> dict[str, str]:
    """What engine cache keys carry of a Jetson: the release line's first field ('# R36
    (release)') and the board model; empty strings elsewhere."""
    files = files or system_files()
    return {"l4t": (files.text("etc/nv_tegra_release") or "").split(",")[0],
            "board": files.text("proc/device-tree/model") or ""}


def _driver_version() -> str:
    gpu = open_gpu(torch_pci_bus_id())
    return gpu.driver() if isinstance(gpu, NvmlGpu) else ""


def fingerprint(files: SystemFiles | None = None,
                packages: tuple[str, ...] = SOFTWARE_PACKAGES) -> MachineFingerprint:
    """This machine's fingerprint, read through `files` (default: PERFSUITE_SYSFS_ROOT), with the
    versions of `packages` (perfsuite.backends.software_packages: every backend's too)."""
    files = files or system_files()
    board = jetson_identity(files)
    facts = gpu_facts()
    software = software_versions(packages)
    if board is not None:  # what JetPack installed: an upgrade changes the numbers
        software.update({f"jetpack_{name}": version for name, version in (
            ("l4t", board.l4t), ("cuda", board.cuda), ("cudnn", board.cudnn),
            ("tensorrt", board.tensorrt)) if version})
    return MachineFingerprint(
        isa=platform.machine(),
        cpu_model=cpu_model(files.text("proc/cpuinfo") or ""),
        cpu_count=os.cpu_count() or 1,
        jetson_model=board.model if board else "",
        l4t_release=board.l4t if board else "",
        jetpack=board.jetpack if board else "",
        nvpmodel_mode=board.power_mode if board else "",
        software=software,
        **facts,  # type: ignore[arg-type]
    )
