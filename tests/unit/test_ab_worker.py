"""The A/B worker's own parts: how it spells its import path and where its timing thread runs."""

from __future__ import annotations

import os
import threading

import pytest

from perfsuite.ab_layout import SideLayout, padded
from perfsuite.ab_worker import Worker, _pin_other_threads


@pytest.mark.parametrize("missing", [0, 1, 2, 5])
def test_a_padded_path_has_the_asked_length_and_names_the_same_folder(tmp_path, missing):
    folder = str(tmp_path)
    spelled = padded(folder, len(folder) + missing)
    assert len(spelled) == len(folder) + missing
    assert os.path.realpath(spelled) == os.path.realpath(folder)
    assert os.path.isdir(os.path.join(spelled, os.pardir, tmp_path.name))


def test_both_sides_import_paths_have_equal_lengths_and_point_into_their_own_trees(tmp_path):
    short = tmp_path / "t"
    long = tmp_path / "cache" / "tree" / "0123456789ab"
    for tree in (short, long):
        (tree / "src").mkdir(parents=True)
    lengths = [len(str(long))]
    paths = {}
    for own, other in ((short, long), (long, short)):
        layout = SideLayout([str(own)], [str(other)], [], lengths)
        # the interpreter's path holds the other tree's src/ (an editable install, say)
        paths[own] = layout.import_path("/harness", [str(own), str(own / "src")])[:3] + \
            [layout.mapped(str(other / "src"))]
    assert [len(entry) for entry in paths[short]] == [len(entry) for entry in paths[long]]
    for own, entries in paths.items():
        assert [os.path.realpath(e) for e in entries[1:]] == \
            [str(own), str(own / "src"), str(own / "src")]


def test_an_entry_outside_both_trees_is_left_as_it_is(tmp_path):
    layout = SideLayout([str(tmp_path / "a")], [str(tmp_path / "bb")], [], [99])
    assert layout.spelling("/usr/lib/python3/dist-packages") == "/usr/lib/python3/dist-packages"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2
                    or not os.path.isdir("/proc/self/task"),
                    reason="needs Linux's per-thread CPU affinity and at least two cores")
def test_a_trial_runs_on_the_timing_core_with_the_other_threads_beside_it_and_then_frees_it():
    free = os.sched_getaffinity(0)
    worker = Worker(write_fd=-1)
    worker.core = max(free)
    pool_started, stop = threading.Event(), threading.Event()
    seen: dict[str, set[int]] = {}

    def pool_thread() -> None:  # a backend's thread, made before the trial
        seen["pool id"] = {threading.get_native_id()}
        pool_started.set()
        stop.wait()

    pool = threading.Thread(target=pool_thread)
    pool.start()
    pool_started.wait()
    try:
        with worker._on_timing_core():
            seen["trial"] = os.sched_getaffinity(0)
            seen["pool"] = os.sched_getaffinity(next(iter(seen["pool id"])))
    finally:
        stop.set()
        pool.join()
        _pin_other_threads(free)  # this test process's threads get their cores back
    later = threading.Thread(target=lambda: seen.setdefault("later", os.sched_getaffinity(0)))
    later.start()
    later.join()
    assert seen["trial"] == {max(free)}
    assert seen["pool"] == free - {max(free)}
    assert seen["later"] == free and os.sched_getaffinity(0) == free


def test_ctrl_c_given_to_another_thread_still_stops_a_wait_for_a_worker():
    """The kernel may hand SIGINT to any thread (a backend's pool); the pytest process waiting on
    a silent worker must still stop within a moment, not at the worker's time-out."""
    import signal
    import subprocess
    import sys
    import time

    from perfsuite.ab_process import WorkerSide

    side = WorkerSide.__new__(WorkerSide)
    side.spec = type("Spec", (), {"label": "HEAD"})()
    side.timeout_s, side.stopped, side.progress = 600.0, "", print
    side._replies, never = os.pipe()  # the worker never answers
    side.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    helper = threading.Thread(target=lambda: (time.sleep(0.5), signal.pthread_kill(
        threading.get_ident(), signal.SIGINT)))
    started = time.monotonic()
    try:
        helper.start()
        with pytest.raises(KeyboardInterrupt):
            side.wait("building")
    finally:
        helper.join()
        side.kill()
        side.process.wait()
        os.close(side._replies)
        os.close(never)
    assert time.monotonic() - started < 60  # the worker's time-out is 600 s
    assert side.process.returncode is not None and "interrupted while building" in side.stopped
