"""The Jetson install path: ./dev keeps JetPack's own builds of torch and TensorRT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
JETPACK5 = {"torch": "2.1.0a0+41361538.nv23.06", "torchvision": "0.16.1",
            "tensorrt": "8.5.2.2", "pycuda": "2022.2.2"}


def fake_site_packages(folder: Path, versions: dict[str, str]) -> Path:
    """Installed-package metadata as pip leaves it, for importlib.metadata to read."""
    for name, version in versions.items():
        info = folder / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder


def pins_for(site: Path) -> list[str]:
    result = subprocess.run([sys.executable, "-S", str(REPO / "tools" / "system_pins.py")],
                            env={"PYTHONPATH": str(site)}, capture_output=True, text=True,
                            check=True)
    return result.stdout.splitlines()


def test_jetpack_builds_are_pinned_exactly(tmp_path):
    pins = pins_for(fake_site_packages(tmp_path, JETPACK5))
    assert pins == ["torch==2.1.0a0+41361538.nv23.06", "torchvision==0.16.1",
                    "tensorrt==8.5.2.2", "pycuda==2022.2.2", "numpy<2"]


def test_nothing_is_pinned_without_system_packages(tmp_path):
    assert pins_for(tmp_path) == []


def test_a_recent_torch_needs_no_numpy_cap(tmp_path):
    assert pins_for(fake_site_packages(tmp_path, {"torch": "2.5.0a0+872d972e41.nv24.08"})) == [
        "torch==2.5.0a0+872d972e41.nv24.08"]


@pytest.mark.parametrize("version", ["2.1.0a0+41361538.nv23.06", "2.1.0",
                                     "2.5.0a0+872d972e41.nv24.08"])
def test_perfsuites_torch_requirement_accepts_jetpack_builds(version):
    """pip takes an installed pre-release as satisfying a requirement (it checks installed
    versions with prereleases=True), so JetPack 5's torch builds stay."""
    from packaging.requirements import Requirement

    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    jetson = {"platform_machine": "aarch64"}
    (torch,) = [r for r in map(Requirement, project["dependencies"])
                if r.name == "torch" and r.marker is not None and r.marker.evaluate(jetson)]
    assert torch.specifier.contains(version, prereleases=True)
    assert not Requirement("torch>=2.1").specifier.contains("2.1.0a0", prereleases=True), \
        "a floor of 2.1 would refuse JetPack 5.1.2's 2.1.0a0 build: the floor must admit it"
    assert not torch.specifier.contains("2.0.0+nv23.05", prereleases=True), \
        "torch 2.0 cannot trace fp16 on a CPU (docs/jetson.md)"
