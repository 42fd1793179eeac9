"""The machine's instruments for a run: a Jetson's sysfs, a discrete GPU's NVML, or none.

One Telemetry per run gives: identity facts, pre-flight checks, the GPU's state (clocks,
temperature, power) around each timed window, and an energy meter for the energy windows.
`open_telemetry` picks it: a Jetson (read through PERFSUITE_SYSFS_ROOT) first, else NVML for a
CUDA run, else none, with one notice line saying why.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from perfsuite.machine import jetson, preflight
from perfsuite.machine.jetson_boards import board_for, gpu_rails, input_rails
from perfsuite.machine.nvml import NVML_CLOCK_MEM, NvmlGpu, open_gpu, torch_pci_bus_id
from perfsuite.machine.preflight import PreflightCheck, PreflightConfig
from perfsuite.machine.sysroot import SystemFiles
from perfsuite.measure.energy import Clock, CounterMeter, EnergyMeter, EnergyReading, SampledMeter


@dataclass(frozen=True)
class GpuState:
    sm_clock_mhz: float | None
    memory_clock_mhz: float | None
    temperature_c: float | None
    power_w: float | None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


class Telemetry:
    """What a machine's instruments give; this base has none (kind 'none'), and `notice` says
    why in one line."""

    kind = "none"

    def __init__(self, notice: str = "") -> None:
        self.notice = notice

    def identity(self) -> dict[str, str]:
        return {}

    def checks(self, config: PreflightConfig, after: bool = False) -> tuple[PreflightCheck, ...]:
        """The pre-flight checks; `after`: at the end of the run (load is then this run's own)."""
        return ()

    def gpu_state(self) -> GpuState | None:
        return None

    def meter(self, clock: Clock = time.perf_counter) -> EnergyMeter | None:
        """A meter whose windows are timed by `clock` (the benchmark's timer)."""
        return None

    def sample(self, seconds: float) -> dict[str, Any]:
        return {}


class JetsonTelemetry(Telemetry):
    kind = "jetson"

    def __init__(self, files: SystemFiles, identity: jetson.JetsonIdentity) -> None:
        super().__init__()
        self.files, self._identity = files, identity
        self.rails = jetson.ina3221_rails(files)
        self.devfreq = jetson.gpu_devfreq(files)
        self.board = board_for(identity.model)

    def identity(self) -> dict[str, str]:
        return self._identity.as_dict()

    def checks(self, config: PreflightConfig, after: bool = False) -> tuple[PreflightCheck, ...]:
        return preflight.jetson_checks(self.files, config, after)

    def rails_w(self) -> dict[str, float]:
        found = {r.name: jetson.rail_power_w(self.files, r) for r in self.rails}
        return {name: watts for name, watts in found.items() if watts is not None}

    def gpu_state(self) -> GpuState | None:
        clock = jetson.gpu_clock(self.files, self.devfreq) if self.devfreq else None
        zones = [z for z in jetson.thermal_zones(self.files)
                 if isinstance(z, jetson.ThermalZone) and "gpu" in z.name.lower()]
        gpu_rail = self.gpu_rail()
        power = jetson.rail_power_w(self.files, gpu_rail) if gpu_rail else None
        return GpuState(clock.cur_mhz if isinstance(clock, jetson.GpuClock) else None, None,
                        zones[0].temp_c if zones else None, power)

    def input_rail(self) -> jetson.Rail | None:
        """The rail carrying the board's input power (None: the rails are summed)."""
        return jetson.pick_rail(self.rails, input_rails(self.board))

    def gpu_rail(self) -> jetson.Rail | None:
        """The rail carrying the GPU (on some boards with other units: the board table says)."""
        return jetson.pick_rail(self.rails, gpu_rails(self.board))

    def meter(self, clock: Clock = time.perf_counter) -> EnergyMeter | None:
        if not self.rails:
            return None
        total = self.input_rail()
        source = f"{total.chip} {total.name}" if total else "INA3221 sum of rails"
        return SampledMeter(source, self.rails_w, total.name if total else None, clock=clock)

    def sample(self, seconds: float) -> dict[str, Any]:
        meter = self.meter()
        reading = _idle_window(meter, seconds)
        zones = jetson.thermal_zones(self.files)
        state = self.gpu_state()
        total = self.input_rail()
        read = reading is not None and (total.name in reading.rails_w if total
                                        else bool(reading.rails_w))
        unusable = [r.name for r in self.rails if jetson.rail_power_w(self.files, r) is None]
        note = {"power_note": "no usable reading (missing, not a number, NaN or negative) "
                              f"from {', '.join(unusable)}: power unknown there"} if unusable else {}
        gpu_rail = self.gpu_rail()
        board = self.board.as_dict() if self.board else {
            "board": f"not in perfsuite's board table ({self._identity.model}): every board's "
                     "rail names are tried"}
        return {**note, "seconds": seconds, "board": board,
                "source": meter.source if meter else "none (no INA3221)",
                "power_w": reading.mean_w if reading and read else None,
                "rails_w": dict(reading.rails_w) if reading else {},
                "temperatures_c": {z.name: z.temp_c for z in zones
                                   if isinstance(z, jetson.ThermalZone)},
                "gpu_mhz": state.sm_clock_mhz if state else None,
                "gpu_rail": gpu_rail.name if gpu_rail else None,
                "gpu_power_w": state.power_w if state else None}


class NvmlTelemetry(Telemetry):
    kind = "nvml"

    def __init__(self, gpu: NvmlGpu) -> None:
        super().__init__()
        self.gpu = gpu

    def identity(self) -> dict[str, str]:
        return {"gpu": self.gpu.name, "driver": self.gpu.driver()}

    def checks(self, config: PreflightConfig, after: bool = False) -> tuple[PreflightCheck, ...]:
        return preflight.nvml_checks(self.gpu, config)

    def gpu_state(self) -> GpuState | None:
        return GpuState(self.gpu.clock_mhz(), self.gpu.clock_mhz(NVML_CLOCK_MEM),
                        self.gpu.temperature_c(), self.gpu.power_w())

    def meter(self, clock: Clock = time.perf_counter) -> EnergyMeter | None:
        if self.gpu.energy_mj() is not None:
            return CounterMeter("NVML total energy", self.gpu.energy_mj, clock)
        if self.gpu.power_w() is None:
            return None
        return SampledMeter("NVML power", lambda: {"board": self.gpu.power_w() or 0.0}, "board",
                            clock=clock)

    def sample(self, seconds: float) -> dict[str, Any]:
        meter = self.meter()
        reading = _idle_window(meter, seconds)
        state = self.gpu_state()
        return {"seconds": seconds, "source": meter.source if meter else "none",
                "power_w": reading.mean_w if reading else None,
                **(state.as_dict() if state else {}),
                "throttle_reasons": self.gpu.event_reasons()}


def _idle_window(meter: EnergyMeter | None, seconds: float) -> EnergyReading | None:
    """What `meter` reads over `seconds` of doing nothing (`perfsuite machine`'s sample)."""
    if meter is None:
        return None
    meter.start()
    time.sleep(seconds)
    return meter.stop()


NOT_A_JETSON = ("Jetson features off: not a Jetson ({tree} has no etc/nv_tegra_release and its "
                "proc/device-tree/model names none)")


def open_telemetry(files: SystemFiles, device: str) -> Telemetry:
    """A Jetson's sysfs, else NVML on a CUDA run, else nothing (with the notice saying why)."""
    identity = jetson.jetson_identity(files)
    if identity is not None:
        return JetsonTelemetry(files, identity)
    notice = NOT_A_JETSON.format(tree=files.root)
    if device != "cuda":
        return Telemetry(f"{notice}; no GPU power or energy on {device}.")
    gpu = open_gpu(torch_pci_bus_id())
    if isinstance(gpu, str):
        return Telemetry(f"{notice}; GPU power and energy off: {gpu}.")
    return NvmlTelemetry(gpu)
