"""The compute device: resolving 'auto', what it can run, and the settings every side records."""

from __future__ import annotations

import functools
import os

from perfsuite.errors import BackendUnavailable
from perfsuite.lazy import is_installed, require

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def torch_available() -> tuple[bool, str]:
    """Whether torch is installed (without importing it), with the reason when it is not."""
    if not is_installed("torch"):
        return False, "torch is not installed (pip install torch)"
    return True, ""


def torch_dtype(precision: str) -> object:
    return getattr(require("torch"), _DTYPES[precision])


def resolve_device(requested: str) -> str:
    """'cpu' or 'cuda'; 'auto' picks cuda when torch sees a CUDA device."""
    if requested != "auto":
        return requested
    if not is_installed("torch"):
        return "cpu"
    return "cuda" if require("torch").cuda.is_available() else "cpu"


def available_cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def configure_torch(cpu_threads: int, tf32: bool) -> int:
    """Set torch's CPU thread count and TF32 switches explicitly; returns the thread count."""
    torch = require("torch")
    threads = cpu_threads or available_cpu_threads()
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return threads


def check_torch_device(device: str, precision: str) -> None:
    """Raise BackendUnavailable, with the reason, when torch cannot run `precision` on `device`."""
    reason = _torch_device_problem(device, precision)
    if reason:
        raise BackendUnavailable(reason)


@functools.lru_cache(maxsize=None)  # functools.cache is Python 3.9+
def _torch_device_problem(device: str, precision: str) -> str:
    torch = require("torch")
    if device == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available to torch on this machine (no GPU or no CUDA build)"
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            major, minor = torch.cuda.get_device_capability()
            return (f"bf16 needs compute capability >= 8.0; {torch.cuda.get_device_name()} "
                    f"is {major}.{minor}")
    dtype = torch_dtype(precision)
    try:  # a tiny convolution proves the kernels exist for this dtype on this device
        x = torch.ones(1, 1, 4, 4, dtype=dtype, device=device)
        torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3, dtype=dtype, device=device))
    except RuntimeError as exc:
        return f"torch {torch.__version__} cannot run {precision} convolutions on {device}: {exc}"
    return ""


def cuda_device_name() -> str:
    torch = require("torch")
    return str(torch.cuda.get_device_name()) if torch.cuda.is_available() else ""


# CPU flags (x86 /proc/cpuinfo "flags", Arm "Features") whose arithmetic is native for a precision.
NATIVE_CPU_FLAGS = {"fp16": ("avx512_fp16", "amx_fp16", "asimdhp"),
                    "bf16": ("avx512_bf16", "amx_bf16", "bf16")}


def native_precisions(cpuinfo: str, cuda_capability: tuple[int, int] | None) -> tuple[str, ...]:
    """The precisions this machine computes natively: a CUDA GPU fp16 (bf16 from compute
    capability 8.0); a CPU only where its flags say so (elsewhere torch emulates fp16 and bf16
    convolutions, 0.6-1.1 s a call for a small CNN on a 2-core x86 machine)."""
    if cuda_capability is not None:
        return ("fp32", "fp16", "bf16") if cuda_capability >= (8, 0) else ("fp32", "fp16")
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return ("fp32", *(p for p, names in NATIVE_CPU_FLAGS.items() if flags & set(names)))


def cuda_capability() -> tuple[int, int] | None:
    """The first CUDA GPU's compute capability, None without one (or without torch)."""
    if not is_installed("torch"):
        return None
    torch = require("torch")
    if not torch.cuda.is_available():
        return None
    return tuple(torch.cuda.get_device_capability())  # type: ignore[return-value]
