"""Print pip constraints that keep the packages a Jetson's system Python already has.

JetPack installs NVIDIA's CUDA builds of torch and torchvision (e.g. 2.1.0a0+41361538.nv23.06)
and the TensorRT bindings into the system Python. A virtualenv made with
--system-site-packages sees them, but `pip install perfsuite` could still replace them with PyPI
builds that have no Jetson CUDA. Pinning each installed package at its exact version (pre-release
and local labels included) makes pip keep it. `./dev` runs this with the venv's interpreter;
standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

KEPT = ("torch", "torchvision", "tensorrt", "pycuda", "onnxruntime-gpu", "onnx")
# torch wheels built before 2.3 were compiled against NumPy 1.x and fail to import under NumPy 2
NUMPY_1_BEFORE_TORCH = (2, 3)


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def release(version: str) -> tuple[int, ...]:
    """The leading release numbers: '2.1.0a0+41361538.nv23.06' -> (2, 1, 0)."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def pins() -> list[str]:
    lines = [f"{name}=={version}" for name in KEPT
             if (version := installed(name)) is not None]
    torch = installed("torch")
    if torch is not None and release(torch)[:2] < NUMPY_1_BEFORE_TORCH:
        lines.append("numpy<2")
    return lines


if __name__ == "__main__":
    sys.stdout.write("".join(f"{line}\n" for line in pins()))
