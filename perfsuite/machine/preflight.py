"""Pre-flight checks: is this machine in a state whose timings mean something?

Each check gives a verdict ('ok', 'failed', or 'unknown' when it could not read what it needs),
a detail with the numbers, and for a failure the command that fixes it. They run before the
first latency benchmark and again at the end of the run; both sets are recorded in the JSON
and the summary. A failure before timing fails, skips or only warns about the latency
benchmarks, by `on_failure` (auto: fail when the CI environment variable is set, else warn);
'unknown' never fails anything, it is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from perfsuite.config.preflight_policy import (  # noqa: F401 (this module's public names)
    ON_FAILURE,
    PREFLIGHT_KEYS,
    PreflightConfig,
    failure_action,
    parse_preflight,
)
from perfsuite.machine import jetson
from perfsuite.machine.nvml import THROTTLING, NvmlGpu, open_gpu, reason_names
from perfsuite.machine.sysroot import SystemFiles

CLOCKS_FIX = "sudo jetson_clocks (locks the clocks at the power mode's maximum)"


@dataclass(frozen=True)
class PreflightCheck:
    name: str
    status: str  # "ok" | "failed" | "unknown"
    detail: str
    fix: str = ""

    def describe(self) -> str:
        verdict = {"ok": "ok", "failed": "FAILED", "unknown": "unknown"}[self.status]
        fix = f" Fix: {self.fix}." if self.fix and self.status == "failed" else ""
        return f"{self.name}: {verdict}: {self.detail}.{fix}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _unknown(name: str, why: str) -> PreflightCheck:
    return PreflightCheck(name, "unknown", why)


def jetson_checks(files: SystemFiles, config: PreflightConfig,
                  after: bool = False) -> tuple[PreflightCheck, ...]:
    """Power mode, GPU clock, temperatures, over-current alarms and GPU load, from sysfs; at the
    end of the run (`after`) without the load, which is then the run's own."""
    gpu = _gpu_checks(files, config)
    return (_power_mode(files, config), *(gpu[:1] if after else gpu), _temperatures(files),
            _alarms(files))


def _power_mode(files: SystemFiles, config: PreflightConfig) -> PreflightCheck:
    mode = jetson.power_mode(files)
    if not mode:
        return _unknown("power mode", files.problem(jetson.NVPMODEL_STATUS))
    name = jetson.power_mode_names(files).get(mode, "")
    note = jetson.power_mode_note(files)
    shown = f"mode {mode}" + (f" ({name})" if name else "") + (f", {note}" if note else "")
    if config.power_mode is None:
        return PreflightCheck("power mode", "ok", f"{shown}; not pinned (set [tool.perfsuite."
                              "preflight] power_mode to require one)")
    if int(mode) == config.power_mode:
        return PreflightCheck("power mode", "ok", f"{shown}, as configured")
    return PreflightCheck("power mode", "failed", f"{shown}, configured {config.power_mode}",
                          f"sudo nvpmodel -m {config.power_mode}, then {CLOCKS_FIX}")


def _gpu_checks(files: SystemFiles, config: PreflightConfig) -> list[PreflightCheck]:
    folder = jetson.gpu_devfreq(files)
    if folder is None:
        why = "no GPU devfreq folder under " + files.shown("sys/class/devfreq")
        return [_unknown("GPU clock locked", why), _unknown("GPU idle", why)]
    clock = jetson.gpu_clock(files, folder)
    if isinstance(clock, str):
        locked = _unknown("GPU clock locked", clock)
    else:
        numbers = (f"{clock.cur_mhz:g} MHz (min {clock.min_mhz:g}, max {clock.max_mhz:g}, "
                   f"{files.shown(folder)})")
        locked = (PreflightCheck("GPU clock locked", "ok", numbers) if clock.locked else
                  PreflightCheck("GPU clock locked", "failed", f"not locked at its maximum: "
                                 f"{numbers}", CLOCKS_FIX))
    load, source = _jetson_gpu_load(files, folder)
    return [locked, _load_check(load, config.max_gpu_load, "stop other GPU work on this runner "
                                "(one job at a time)", source)]


def _jetson_gpu_load(files: SystemFiles, folder: str) -> tuple[float | str, str]:
    """The GPU's load and where it was read: sysfs, else NVML (Thor has no sysfs load file;
    its GPU is NVML's, as jtop reads it)."""
    load = jetson.gpu_load_percent(files, folder)
    if not isinstance(load, str):
        return load, "sysfs"
    gpu = open_gpu()
    if isinstance(gpu, str):
        return f"{load}; {gpu}", ""
    nvml_load = gpu.load_percent()
    if nvml_load is None:
        return f"{load}; NVML does not report the GPU's utilization", ""
    return nvml_load, "NVML"


def _load_check(load: float | str | None, limit: float, fix: str,
                source: str = "") -> PreflightCheck:
    if load is None or isinstance(load, str):
        return _unknown("GPU idle", load or "the GPU's load cannot be read")
    status = "ok" if load <= limit else "failed"
    where = f", from {source}" if source else ""
    return PreflightCheck("GPU idle", status, f"load {load:g}% (limit {limit:g}%{where})", fix)


def _temperatures(files: SystemFiles) -> PreflightCheck:
    zones = jetson.thermal_zones(files)
    readable = [z for z in zones if isinstance(z, jetson.ThermalZone)]
    if not readable:
        why = "; ".join(z for z in zones if isinstance(z, str)) or (
            "no thermal zones under " + files.shown("sys/devices/virtual/thermal"))
        return _unknown("temperatures", why)
    hot = [z for z in readable if z.trip_c is not None and z.temp_c >= z.trip_c]
    shown = ", ".join(f"{z.name} {z.temp_c:g} °C" + (f" (trip {z.trip_c:g})" if z.trip_c else "")
                      for z in (hot or readable))
    if hot:
        return PreflightCheck("temperatures", "failed", f"at or above a trip point: {shown}",
                              "let the board cool down and check its fan (sudo jetson_clocks "
                              "--fan runs it at full speed)")
    return PreflightCheck("temperatures", "ok", f"below their trip points: {shown}")


def _alarms(files: SystemFiles) -> PreflightCheck:
    rails = jetson.ina3221_rails(files)
    if not rails:
        return _unknown("over-current alarms", "no INA3221 under " +
                        files.shown("sys/bus/i2c/drivers"))
    raised = [alarm for rail in rails for alarm in jetson.raised_alarms(files, rail)]
    if raised:
        return PreflightCheck("over-current alarms", "failed", "; ".join(raised),
                              "the board hit a current limit and throttles: use the power "
                              "supply the module needs, or a lower power mode (sudo nvpmodel -m N)")
    return PreflightCheck("over-current alarms", "ok",
                          f"none raised on {', '.join(r.name for r in rails)}")


def nvml_checks(gpu: NvmlGpu, config: PreflightConfig) -> tuple[PreflightCheck, ...]:
    """Clocks, throttle reasons and other processes of a discrete GPU."""
    sm, top = gpu.clock_mhz(), gpu.max_clock_mhz()
    clocks = (PreflightCheck("GPU clocks", "ok", f"SM {sm:g} MHz of {top:g} MHz, memory "
                             f"{gpu.clock_mhz(2) or 0:g} MHz, {gpu.temperature_c() or 0:g} °C")
              if sm is not None and top is not None else _unknown("GPU clocks", "NVML gave none"))
    bits = gpu.event_reasons()
    if bits is None:
        throttle = _unknown("throttle reasons", "NVML gave none")
    else:
        active = ", ".join(reason_names(bits)) or "none"
        throttle = (PreflightCheck("throttle reasons", "failed", f"clocks held back: {active}",
                                   "cool the GPU or raise its power limit (nvidia-smi -q -d "
                                   "PERFORMANCE shows why)") if bits & THROTTLING else
                    PreflightCheck("throttle reasons", "ok", f"no throttling ({active})"))
    return clocks, throttle, _other_processes(gpu)


def _other_processes(gpu: NvmlGpu) -> PreflightCheck:
    """A discrete GPU is idle when no other process computes on it (its load right now is this
    run's own warm-up)."""
    others, load = gpu.other_processes(), gpu.load_percent()
    shown = f"load {load:g}% (this run included)" if load is not None else "load unknown"
    if others is None:
        return _unknown("GPU idle", f"NVML lists no processes; {shown}")
    if others:
        return PreflightCheck("GPU idle", "failed", f"other processes compute on it: pids "
                              f"{', '.join(map(str, others))}; {shown}",
                              "stop other GPU work on this machine (one job at a time)")
    return PreflightCheck("GPU idle", "ok", f"no other process computes on it; {shown}")


def failed(checks: Sequence[PreflightCheck]) -> list[PreflightCheck]:
    return [c for c in checks if c.status == "failed"]


def failure_message(checks: Sequence[PreflightCheck], action: str) -> str:
    lines = [f"perfsuite pre-flight | {c.describe()}" for c in failed(checks)]
    how = ("--perf-preflight=warn (or [tool.perfsuite.preflight] on_failure = \"warn\") times "
           "anyway")
    return "\n".join([*lines, f"The latency benchmarks {'fail' if action == 'fail' else 'skip'} "
                              f"until it is fixed; {how}."])
