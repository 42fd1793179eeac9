"""The CPU-load pre-flight check: other processes' CPU use against the cores the benchmark needs."""

from __future__ import annotations

import pytest

from perfsuite.machine.cpu_load import USER_HZ, CpuTimes, cpu_check, read_cpu_times, sample_cpu_check
from perfsuite.machine.monitor import RunMonitor
from perfsuite.machine.preflight import PreflightCheck, PreflightConfig
from perfsuite.machine.sysroot import SystemFiles


def stat_line(user: int, system: int, idle: int, iowait: int = 0, steal: int = 0) -> str:
    return f"cpu  {user} 0 {system} {idle} {iowait} 0 0 {steal} 0 0\ncpu0 1 2 3 4\n"


def test_proc_stat_gives_busy_seconds_without_idle_and_iowait(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/stat").write_text(stat_line(300, 100, 1000, iowait=50, steal=20))
    times = read_cpu_times(SystemFiles(tmp_path), own=lambda: 1.5, clock=lambda: 7.0)
    assert times == CpuTimes((300 + 100 + 20) / USER_HZ, 1.5, 7.0)  # steal counts as busy


def test_unreadable_proc_stat_is_named(tmp_path):
    assert read_cpu_times(SystemFiles(tmp_path)) == f"{tmp_path}/proc/stat is missing"
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/stat").write_text("intr 1 2 3\n")
    assert "has no 'cpu' line" in str(read_cpu_times(SystemFiles(tmp_path)))
    check = cpu_check("why", CpuTimes(0, 0, 0), 2, 2, None, 0.5)
    assert check.status == "unknown" and check.detail == "why"


def test_other_processes_on_the_benchmarks_cores_fail_it():
    # 1 s window: 1.8 busy CPU seconds, 0.1 of them this process's: others keep 1.7 cores busy
    before, after = CpuTimes(10.0, 2.0, 100.0), CpuTimes(11.8, 2.1, 101.0)
    check = cpu_check(before, after, cores=2, threads=2, loadavg=3.9, limit=0.5)
    assert check.status == "failed" and check.fix
    assert check.detail.startswith("oversubscribed: other processes keep 1.70 of 2 cores busy "
                                   "(allowed 0.5: 2 cores, 2 benchmark threads, max_other_cpu "
                                   "0.5), load average 3.9")
    # the same load on a machine with cores to spare for it
    roomy = cpu_check(before, after, cores=8, threads=4, loadavg=3.9, limit=0.5)
    assert roomy.status == "ok"


def test_this_processes_own_work_is_not_load():
    before, after = CpuTimes(10.0, 2.0, 100.0), CpuTimes(11.9, 3.8, 101.0)  # 1.8 of 1.9 are ours
    check = cpu_check(before, after, cores=2, threads=2, loadavg=None, limit=0.5)
    assert check.status == "ok" and "keep 0.10 of 2 cores busy" in check.detail


def test_sample_waits_the_window_between_two_readings(tmp_path):
    (tmp_path / "proc").mkdir()
    stat = tmp_path / "proc/stat"
    stat.write_text(stat_line(0, 0, 0))
    (tmp_path / "proc/loadavg").write_text("0.50 0.40 0.30 1/100 42\n")
    waited = []

    def sleep(seconds: float) -> None:  # another process burns 100 s of CPU meanwhile
        waited.append(seconds)
        stat.write_text(stat_line(100 * USER_HZ, 0, 0))

    check = sample_cpu_check(SystemFiles(tmp_path), threads=1, limit=0.5, window_s=0.25,
                             sleep=sleep)
    assert waited == [0.25]
    assert check.status == "failed" and "load average 0.5" in check.detail


def test_monitor_runs_the_cpu_check_before_timing_and_after_the_run(tmp_path):
    calls = []

    def fake_check(files: SystemFiles, threads: int, limit: float) -> PreflightCheck:
        calls.append((threads, limit))
        return PreflightCheck("CPU idle", "failed", "oversubscribed", "stop other work")

    monitor = RunMonitor(PreflightConfig(max_other_cpu=0.25), "warn", lambda: "cpu",
                         lambda: SystemFiles(tmp_path), threads=lambda: 2, cpu_check=fake_check)
    assert monitor.before_timing() == ("pre-flight: CPU idle: FAILED: oversubscribed. Fix: stop "
                                       "other work.",)
    monitor.after_run()
    assert calls == [(2, 0.25), (2, 0.25)]
    strict = RunMonitor(PreflightConfig(), "fail", lambda: "cpu", lambda: SystemFiles(tmp_path),
                        cpu_check=fake_check)
    with pytest.raises(Exception, match="CPU idle: FAILED"):
        strict.before_timing()
