"""The machine's fingerprint and the baseline key derived from it.

The key names the hardware (ISA, CPU, GPU) and, on a Jetson, the board and its power mode:
things that change latency and that a software upgrade does not. Volatile readings (clock rates,
temperatures) never enter it. Software versions are recorded beside it and compared separately.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from perfsuite import __version__
from perfsuite.lazy import is_installed, require

MACHINE_KEY_ENV = "PERFSUITE_MACHINE_KEY"
# What shapes every number, whatever the backends; each backend adds its own (Backend.packages).
SOFTWARE_PACKAGES = ("torch", "torchvision", "onnx", "numpy")


def software_packages() -> tuple[str, ...]:
    from perfsuite.backends import BACKEND_TYPES  # here: the backends import this module

    return tuple(dict.fromkeys((*SOFTWARE_PACKAGES, *(p for backend in BACKEND_TYPES.values()
                                                     for p in backend.packages))))


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


def software_versions() -> dict[str, str]:
    """Installed versions of what shapes the numbers; read from package metadata, no imports."""
    versions = {"python": platform.python_version(), "perfsuite": __version__}
    for name in software_packages():
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return ""


def cpu_model(cpuinfo: str) -> str:
    for key in ("model name", "Model", "Hardware", "CPU part"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or "unknown-cpu"


def nvpmodel_mode(root: Path = Path("/")) -> str:
    executable = shutil.which("nvpmodel") if root == Path("/") else None
    if executable:
        try:
            out = subprocess.run([executable, "-q"], capture_output=True, text=True, timeout=10)
            match = re.search(r"NV Power Mode:\s*(\S+)", out.stdout)
            if match:
                return match.group(1)
        except (OSError, subprocess.TimeoutExpired):
            pass
    status = read_text(root / "var/lib/nvpmodel/status")
    return status.split(":")[-1] if status else ""


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


def _driver_version() -> str:
    executable = shutil.which("nvidia-smi")
    if not executable:
        return ""
    try:
        out = subprocess.run([executable, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


def fingerprint(root: Path = Path("/")) -> MachineFingerprint:
    """This machine's fingerprint; `root` lets tests point at a fake filesystem tree."""
    jetson = read_text(root / "proc/device-tree/model")
    l4t = read_text(root / "etc/nv_tegra_release").splitlines()
    facts = gpu_facts()
    return MachineFingerprint(
        isa=platform.machine(),
        cpu_model=cpu_model(read_text(root / "proc/cpuinfo")),
        cpu_count=os.cpu_count() or 1,
        jetson_model=jetson if "jetson" in jetson.lower() else "",
        l4t_release=l4t[0].lstrip("# ").strip() if l4t else "",
        nvpmodel_mode=nvpmodel_mode(root) if jetson else "",
        software=software_versions(),
        **facts,  # type: ignore[arg-type]
    )
