"""The Jetson, sysfs and NVML readers on the edge cases real boards show, each result compared
whole: skipped channels and zones, fallbacks, boundaries, first-found rules, the exact paths and
messages. These close the gaps mutation testing found (docs/mutation.md)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from perfsuite.machine import jetson, jetson_boards, nvml
from perfsuite.machine.jetson import GpuClock, Rail, ThermalZone
from perfsuite.machine.sysroot import SYSFS_ROOT_ENV, SystemFiles, system_files
from tests.fakes import fake_pynvml


def tree(root: Path, files: dict[str, str]) -> SystemFiles:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return SystemFiles(root)


ZONES = "sys/devices/virtual/thermal/thermal_zone"


def test_thermal_zones_skip_pmic_name_untyped_zones_and_take_the_lowest_throttling_trip(tmp_path):
    files = tree(tmp_path, {
        f"{ZONES}0/type": "PMIC-Die", f"{ZONES}0/temp": "100000",  # a fixed placeholder: skipped
        f"{ZONES}1/temp": "-40000",  # no type file; exactly the not-reporting bound
        f"{ZONES}2/type": "CPU-therm", f"{ZONES}2/temp": "45500",
        f"{ZONES}2/trip_point_0_type": "active", f"{ZONES}2/trip_point_0_temp": "30000",
        f"{ZONES}2/trip_point_1_type": "passive", f"{ZONES}2/trip_point_1_temp": "95500",
        f"{ZONES}2/trip_point_2_type": "hot", f"{ZONES}2/trip_point_2_temp": "0",
        f"{ZONES}2/trip_point_3_type": "critical", f"{ZONES}2/trip_point_3_temp": "105000",
        f"{ZONES}3/type": "GPU-therm",  # its temp file is missing
        f"{ZONES}4/type": "SOC-therm", f"{ZONES}4/temp": "-39999",
        f"{ZONES}4/trip_point_0_type": "hot", f"{ZONES}4/trip_point_0_temp": "1",
        f"{ZONES}5/type": "Tboard", f"{ZONES}5/temp": "30000",
    })
    assert jetson.thermal_zones(files) == [
        "thermal_zone1: reports -40 °C (not reporting)",
        ThermalZone("CPU-therm", 45.5, 95.5, "passive"),
        f"GPU-therm: {tmp_path}/{ZONES}3/temp is missing",
        ThermalZone("SOC-therm", -39.999, 0.001, "hot"),
        ThermalZone("Tboard", 30.0, None, ""),
    ]


HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
IIO = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
INA238 = "sys/bus/i2c/drivers/ina238/2-0044/hwmon/hwmon5"


def test_rails_in_every_layout_skip_unnamed_nc_and_sum_channels(tmp_path):
    files = tree(tmp_path, {
        f"{HWMON}/in1_label": "nc", f"{HWMON}/in2_label": "VDD_GPU_SOC",
        f"{HWMON}/in3_label": "", f"{HWMON}/in4_label": "Sum of shunt voltages",
        f"{HWMON}/in5_label": "VDD_CPU_CV",
        f"{IIO}/rail_name_0": "NC", f"{IIO}/rail_name_1": "POM_5V_GPU",
        f"{IIO}/rail_name_2": "sum of SHUNT", f"{IIO}/rail_name_3": "POM_5V_IN",
        f"{IIO}/rail_name_4": "",
        f"{INA238}/power1_input": "12000000",
    })
    assert jetson.ina3221_rails(files) == [
        Rail("VDD_GPU_SOC", voltage_mv=f"{HWMON}/in2_input", current_ma=f"{HWMON}/curr2_input",
             alarms=(f"{HWMON}/curr2_crit_alarm", f"{HWMON}/curr2_max_alarm")),
        Rail("VDD_CPU_CV", voltage_mv=f"{HWMON}/in5_input", current_ma=f"{HWMON}/curr5_input",
             alarms=(f"{HWMON}/curr5_crit_alarm", f"{HWMON}/curr5_max_alarm")),
        Rail("POM_5V_GPU", power=f"{IIO}/in_power1_input", current_ma=f"{IIO}/in_current1_input",
             crit_ma=f"{IIO}/crit_current_limit_1"),
        Rail("POM_5V_IN", power=f"{IIO}/in_power3_input", current_ma=f"{IIO}/in_current3_input",
             crit_ma=f"{IIO}/crit_current_limit_3"),
        Rail("VIN", power=f"{INA238}/power1_input", power_unit_w=1e-6, chip="INA238",
             alarms=(f"{INA238}/curr1_crit_alarm", f"{INA238}/power1_crit_alarm")),
    ]


def test_rail_power_takes_zero_and_refuses_negative_readings(tmp_path):
    files = tree(tmp_path, {"v": "5000", "i": "0", "p": "0.5", "n": "-1"})
    assert jetson.rail_power_w(files, Rail("A", voltage_mv="v", current_ma="i")) == 0.0
    assert jetson.rail_power_w(files, Rail("B", power="p")) == pytest.approx(0.0005)
    assert jetson.rail_power_w(files, Rail("C", voltage_mv="v", current_ma="n")) is None
    assert jetson.rail_power_w(files, Rail("D", voltage_mv="v", current_ma="missing")) is None


def test_a_current_at_its_critical_limit_raises_the_alarm_and_a_zero_limit_none(tmp_path):
    files = tree(tmp_path, {"i": "1", "limit": "1", "zero": "0", "alarm": "1", "quiet": "0"})
    at = Rail("GPU", current_ma="i", crit_ma="limit", alarms=("alarm", "quiet"))
    assert jetson.raised_alarms(files, at) == [
        f"GPU: {tmp_path}/alarm = 1",
        f"GPU: 1 mA at or above its critical limit 1 mA ({tmp_path}/limit)"]
    assert jetson.raised_alarms(files, Rail("X", current_ma="i", crit_ma="zero")) == []


DPKG = """Status: install ok installed
Version: 1.0

Package: libnvinfer8
Status: deinstall ok config-files
Version: 7.1.3-1+cuda10.2

Package: libcudnn8
Status: install ok installed
Architecture: arm64

Package: libnvinfer8
Status: install ok installed
Version: 8.2.1-1+cuda10.2

Package: libnvinfer10
Status: install ok installed
Version: 10.3.0.30-1+cuda12.6

Package: cuda-cudart-10-2
Version: 10.2.300-1

Package: cuda-cudart-10-2
Status: install ok installed
Version: 10.2.460-1

Package: libcudnn8-dev
Status: install ok installed
Version: 8.0.0-1
"""


def test_package_versions_take_the_first_installed_match_only():
    assert jetson.package_versions(DPKG) == {"tensorrt": "8.2.1", "cudnn": "", "cuda": "10.2.460"}


def test_identity_needs_the_release_file_or_a_jetson_model(tmp_path):
    release = "# R35 (release), REVISION: 4.1, GCID: 1, BOARD: t186ref"
    assert jetson.jetson_identity(tree(tmp_path / "pi", {
        "proc/device-tree/model": "Raspberry Pi 4 Model B"})) is None
    assert jetson.jetson_identity(tree(tmp_path / "bare", {
        "etc/nv_tegra_release": release, "etc/nvpmodel.conf": "< PM_CONFIG DEFAULT=7 >"})) == \
        jetson.JetsonIdentity("unknown Jetson", "35.4.1", "5.1.2", "7", "")
    assert jetson.jetson_identity(tree(tmp_path / "modelonly", {
        "proc/device-tree/model": "NVIDIA Jetson Nano Developer Kit",
        "var/lib/nvpmodel/status": "pmode:0001"})) == \
        jetson.JetsonIdentity("NVIDIA Jetson Nano Developer Kit", "", "", "1", "")
    assert jetson.jetson_identity(tree(tmp_path / "orin", {
        "proc/device-tree/model": "NVIDIA Orin Nano Developer Kit", "etc/nv_tegra_release": release,
        "var/lib/nvpmodel/status": "pmode:0000 fmode:quiet", "var/lib/dpkg/status": DPKG,
        "etc/nvpmodel.conf": "< POWER_MODEL ID=0 NAME=15W >\n< POWER_MODEL ID=1 NAME=7W >"})) == \
        jetson.JetsonIdentity("NVIDIA Orin Nano Developer Kit", "35.4.1", "5.1.2", "0", "15W",
                              cuda="10.2.460", cudnn="", tensorrt="8.2.1")


def test_power_mode_of_an_unreadable_status_is_unknown_not_the_default(tmp_path):
    files = tree(tmp_path, {"etc/nvpmodel.conf": "< PM_CONFIG DEFAULT=2 >"})
    (tmp_path / "var/lib/nvpmodel/status").mkdir(parents=True)  # there, but not a file
    assert jetson.power_mode(files) == "" and jetson.power_mode_note(files) == ""
    assert jetson.l4t_release("# R32 (release)") == ""


def test_gpu_devfreq_by_device_tree_node_or_folder_name(tmp_path):
    files = tree(tmp_path, {
        "sys/class/devfreq/13e10000.host1x/device/of_node/name": "host1x",
        "sys/class/devfreq/15340000.vic/device/of_node/name": "vic",
        "sys/class/devfreq/17000000.gpu/device/of_node/name": "gpu",
    })
    assert jetson.gpu_devfreq(files) == "sys/class/devfreq/17000000.gpu"
    by_node = tree(tmp_path / "node", {  # the folder's name says nothing; its node does
        "sys/class/devfreq/13e10000.host1x/device/of_node/name": "host1x",
        "sys/class/devfreq/57000000.dev/device/of_node/name": "gpu"})
    assert jetson.gpu_devfreq(by_node) == "sys/class/devfreq/57000000.dev"
    named = tree(tmp_path / "thor", {"sys/class/devfreq/a-host1x/cur_freq": "1",
                                     "sys/class/devfreq/b.ga10b/cur_freq": "1"})
    assert jetson.gpu_devfreq(named) == "sys/class/devfreq/b.ga10b"
    assert jetson.gpu_devfreq(tree(tmp_path / "none", {"sys/class/devfreq/x.vic/cur_freq": "1"})) \
        is None


def test_gpu_clock_names_the_file_it_cannot_read(tmp_path):
    folder = "sys/class/devfreq/17000000.gpu"
    full = {f"{folder}/cur_freq": "918000000", f"{folder}/min_freq": "306000000",
            f"{folder}/max_freq": "918000000"}
    assert jetson.gpu_clock(tree(tmp_path / "a", full), folder) == \
        GpuClock(folder, 918.0, 306.0, 918.0)
    for gone in ("min_freq", "max_freq"):
        files = tree(tmp_path / gone, {k: v for k, v in full.items() if not k.endswith(gone)})
        assert jetson.gpu_clock(files, folder) == f"{tmp_path}/{gone}/{folder}/{gone} is missing"


@pytest.mark.parametrize("path", ["sys/devices/gpu.0/load", "sys/devices/platform/gpu.0/load"])
def test_gpu_load_falls_back_to_the_gpu_nodes(tmp_path, path):
    assert jetson.gpu_load_percent(tree(tmp_path, {path: "875"}), "sys/class/devfreq/x") == 87.5


def test_board_rows_as_printed():
    nano = jetson_boards.board_for("NVIDIA Jetson Nano Developer Kit\x00")
    assert nano is not None and nano.as_dict() == {
        "board": nano.name, "soc": nano.soc, "power monitor": nano.power_monitor,
        "input rail": nano.input_rail or "none: the rails are summed",
        "GPU rail": "/".join(nano.gpu_rails) + (f" ({nano.gpu_rail_note})"
                                                if nano.gpu_rail_note else ""),
        "GPU load from": nano.gpu_load}
    assert list(nano.as_dict()) == ["board", "soc", "power monitor", "input rail", "GPU rail",
                                    "GPU load from"]
    for board in jetson_boards.BOARDS:
        row = board.as_dict()
        assert row["input rail"] == (board.input_rail or "none: the rails are summed")
        assert row["GPU rail"].startswith(board.gpu_rails[0] + ("/" if len(board.gpu_rails) > 1
                                                                else ""))
        assert row["GPU rail"].endswith(f"({board.gpu_rail_note})" if board.gpu_rail_note
                                        else board.gpu_rails[-1])
        assert jetson_boards.input_rails(board) == ((board.input_rail,) if board.input_rail
                                                    else ())
        assert jetson_boards.gpu_rails(board) == board.gpu_rails
    assert jetson_boards.board_for("NVIDIA\x00Jetson\x00Nano Developer Kit") is nano


# -- sysroot -----------------------------------------------------------------------------------
def test_system_files_root_and_text(tmp_path):
    from perfsuite.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        system_files({SYSFS_ROOT_ENV: str(tmp_path / "nowhere")})
    assert str(refused.value) == (
        f"{SYSFS_ROOT_ENV}={str(tmp_path / 'nowhere')!r} | no such folder.\nRemedy: point it at "
        "a tree holding sys/, proc/ and etc/ (a container's mount of the host's), or unset it to "
        "read this machine's.")
    assert system_files({}).root == Path("/")
    assert system_files({SYSFS_ROOT_ENV: ""}).root == Path("/")
    assert system_files({SYSFS_ROOT_ENV: str(tmp_path)}).root == tmp_path
    files = tree(tmp_path, {})
    (tmp_path / "bad").write_bytes(b"caf\xe9 \xc3\xa9")
    assert files.text("/bad") == "caf\ufffd é"
    assert files.path("//sys/x") == tmp_path / "sys/x"
    assert files.glob("/ba*") == ["bad"] and files.exists("/bad") and not files.exists("nope")
    assert not files.missing("bad") and files.missing("nope")
    # below a file: lstat fails with ENOTDIR, which is unreadable, not missing
    assert not files.missing("bad/inside")


# -- NVML --------------------------------------------------------------------------------------
def test_nvml_reads_each_value_from_its_handle_and_none_where_refused(monkeypatch):
    module = fake_pynvml.install(monkeypatch, name=b"NVIDIA H200", driver=b"580.65.06",
                                 bus_ids=("00000000:1B:00.0", "00000000:2C:00.0"))
    seen = []
    for call in ("nvmlDeviceGetPowerUsage", "nvmlDeviceGetUtilizationRates"):
        real = getattr(module, call)
        monkeypatch.setattr(module, call, lambda handle, *a, _real=real: (seen.append(handle),
                                                                          _real(handle, *a))[1])
    gpu = nvml.open_gpu("00000000:2C:00.0")
    assert isinstance(gpu, nvml.NvmlGpu) and gpu.name == "NVIDIA H200"
    assert gpu.driver() == "580.65.06" and gpu.power_w() == 120.0 and gpu.load_percent() == 0.0
    assert seen == ["00000000:2C:00.0", "00000000:2C:00.0"], "each read names this GPU"
    by_index = nvml.open_gpu(index=1)
    assert isinstance(by_index, nvml.NvmlGpu) and by_index._handle == "00000000:2C:00.0"
    fake_pynvml.reset(name=None, power_mw=None, temp_c=None, max_sm_mhz=None, load=None,
                      driver=None)
    assert (gpu.power_w(), gpu.temperature_c(), gpu.max_clock_mhz(), gpu.load_percent()) == \
        (None, None, None, None)
    fake_pynvml.reset(driver="580.95.05")
    assert gpu.driver() == "580.95.05"
    fake_pynvml.reset(name=None, driver=None)
    silent = nvml.open_gpu()
    assert isinstance(silent, nvml.NvmlGpu) and silent.name == "" and silent.driver() == ""


def test_nvml_throttle_reasons_under_the_name_older_drivers_use(monkeypatch):
    module = fake_pynvml.install(monkeypatch, reasons=0x20 | 0x1)
    monkeypatch.delattr(module, "nvmlDeviceGetCurrentClocksEventReasons")
    monkeypatch.setattr(module, "nvmlDeviceGetCurrentClocksThrottleReasons",
                        lambda handle: 0x20 | 0x1, raising=False)
    gpu = nvml.open_gpu()
    assert isinstance(gpu, nvml.NvmlGpu) and gpu.event_reasons() == 0x21
    monkeypatch.delattr(module, "nvmlDeviceGetCurrentClocksThrottleReasons")
    assert gpu.event_reasons() is None


def test_torch_pci_bus_id_as_nvml_names_it(monkeypatch):
    props = types.SimpleNamespace(pci_domain_id=0, pci_bus_id=0x1B, pci_device_id=0)
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(
        current_device=lambda: 3, get_device_properties=lambda index: props if index == 3 else None))
    monkeypatch.setattr(nvml, "require", lambda name: fake_torch if name == "torch" else None)
    assert nvml.torch_pci_bus_id() == "00000000:1B:00.0"
    del props.pci_device_id
    assert nvml.torch_pci_bus_id() == ""


def test_own_processes_follow_children_past_unreadable_entries(tmp_path):
    import os

    me = os.getpid()
    tree(tmp_path, {f"{me}/task/1/children": "50 60", f"{me}/task/2/children": "bad",
                    f"{me}/task/3/children": "80", "50/task/50/children": "70 50",
                    "70/task/70/children": "", "80/task/80/children": "90"})
    (tmp_path / f"{me}/task/4").mkdir()  # a task that ended: no children file
    assert nvml.own_processes(str(tmp_path)) == {me, 50, 60, 70, 80, 90}
