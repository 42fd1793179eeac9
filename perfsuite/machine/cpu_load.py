"""The CPU-load pre-flight check, on every machine: do other processes leave the benchmark the
cores its threads need?

An oversubscribed CPU does not make timings noisy, it makes them wrong: on the 2-core machine
at load average 3.9, unchanged torch fp32 measured 136 ms against 8 ms quiet. The check samples
`/proc/stat` over a short window (through `PERFSUITE_SYSFS_ROOT`), subtracts this process's own
CPU time, and compares what the others keep busy, in cores, with the cores the benchmark's
threads leave free. Steal time (a virtual machine's host taking the CPU) counts as busy. The
1-minute load average is shown beside it; it counts this run's own threads, so it decides
nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from perfsuite.machine.preflight import PreflightCheck
from perfsuite.machine.sysroot import SystemFiles

NAME = "CPU idle"
WINDOW_S = 0.25
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
FIX = ("stop other work on this machine (one benchmark job at a time), or give the benchmark "
       "fewer threads (cpu_threads in [tool.perfsuite])")


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative seconds: every CPU busy (all processes), and this process's own."""

    busy_s: float
    own_s: float
    wall_s: float


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def read_cpu_times(files: SystemFiles, own: Callable[[], float] = own_cpu_seconds,
                   clock: Callable[[], float] = time.monotonic) -> CpuTimes | str:
    """The machine's busy CPU seconds from proc/stat's first line, or why it cannot be read."""
    text = files.text("proc/stat")
    first = text.splitlines()[0].split() if text else []
    try:
        ticks = [int(v) for v in first[1:9]]
    except ValueError:
        ticks = []
    if not first or first[0] != "cpu" or len(ticks) < 4:
        return files.problem("proc/stat") if text is None else (
            f"{files.shown('proc/stat')} has no 'cpu' line of tick counts")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    return CpuTimes((sum(ticks) - idle) / USER_HZ, own(), clock())


def load_average(files: SystemFiles) -> float | None:
    return files.number("proc/loadavg")


def cpu_check(before: CpuTimes | str, after: CpuTimes | str, cores: int, threads: int,
              loadavg: float | None, limit: float) -> PreflightCheck:
    """Others' CPU use over the window between two readings against the cores the benchmark's
    `threads` leave free (plus `limit` cores of slack)."""
    if isinstance(before, str) or isinstance(after, str):
        return PreflightCheck(NAME, "unknown", before if isinstance(before, str) else str(after))
    wall = after.wall_s - before.wall_s
    if wall <= 0:
        return PreflightCheck(NAME, "unknown", "no time passed between the two readings")
    others = max(0.0, (after.busy_s - before.busy_s) - (after.own_s - before.own_s)) / wall
    allowed = max(0, cores - threads) + limit
    load = f", load average {loadavg:g}" if loadavg is not None else ""
    detail = (f"other processes keep {others:.2f} of {cores} cores busy (allowed {allowed:g}: "
              f"{cores} cores, {threads} benchmark threads, max_other_cpu {limit:g}){load}")
    if others > allowed:
        return PreflightCheck(NAME, "failed", f"oversubscribed: {detail}; timings would measure "
                              "the contention", FIX)
    return PreflightCheck(NAME, "ok", detail)


def sample_cpu_check(files: SystemFiles, threads: int, limit: float,
                     window_s: float = WINDOW_S,
                     sleep: Callable[[float], None] = time.sleep) -> PreflightCheck:
    """Read, wait `window_s`, read again, and judge."""
    cores = os.cpu_count() or 1
    before = read_cpu_times(files)
    sleep(window_s)
    after = read_cpu_times(files)
    return cpu_check(before, after, cores, min(threads, cores) if threads else cores,
                     load_average(files), limit)
