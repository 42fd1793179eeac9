from __future__ import annotations

from pathlib import Path

from perfsuite.machine.fingerprint import (
    MachineFingerprint,
    board_release,
    cpu_model,
    fingerprint,
    machine_key,
)
from perfsuite.machine.sysroot import SystemFiles


def fake_jetson(root: Path) -> Path:
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    (root / "etc").mkdir()
    (root / "etc/nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64\n")
    (root / "var/lib/nvpmodel").mkdir(parents=True)
    (root / "var/lib/nvpmodel/status").write_text("pmode:0002 fmode:quiet\n")
    (root / "proc/cpuinfo").write_text("processor : 0\nCPU part : 0xd42\n")
    return root


def test_jetson_identity_and_power_mode_make_the_key(tmp_path):
    files = SystemFiles(fake_jetson(tmp_path))
    fp = fingerprint(files)
    assert fp.jetson_model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert (fp.l4t_release, fp.jetpack) == ("36.4.0", "6.1")
    assert fp.nvpmodel_mode == "2"
    assert machine_key(fp) == "nvidia-jetson-agx-orin-developer-kit-mode-2"
    # engine cache keys keep the release line's first field, as before
    assert board_release(files) == {"l4t": "# R36 (release)",
                                    "board": "NVIDIA Jetson AGX Orin Developer Kit"}


def test_key_names_hardware_only():
    base = MachineFingerprint(isa="x86_64", cpu_model="AMD EPYC 7B13", cpu_count=2,
                              gpu_name="NVIDIA H100 80GB HBM3", software={"torch": "2.11"})
    upgraded = MachineFingerprint(**{**base.__dict__, "software": {"torch": "2.15"}})
    assert machine_key(base) == machine_key(upgraded) == \
        "x86-64-amd-epyc-7b13-2cpu-nvidia-h100-80gb-hbm3"


def test_cpu_model_from_cpuinfo():
    assert cpu_model("model name\t: AMD EPYC\nflags : x\n") == "AMD EPYC"
