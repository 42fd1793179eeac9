"""The A/B worker's own parts: how it spells its import path, where its timing thread runs, and
what both sides build."""

from __future__ import annotations

import os
import threading

import pytest

from perfsuite.errors import SideError
from perfsuite.results import CaseSpec
from perfsuite.run.ab.layout import SideLayout, padded
from perfsuite.run.ab.sides import AbSides
from perfsuite.run.ab.worker import Worker, _pin_other_threads


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

    from perfsuite.run.ab.process import WorkerSide

    side = WorkerSide.__new__(WorkerSide)
    side.spec = type("Spec", (), {"label": "HEAD"})()
    side.timeout_s, side.stopped, side.progress = 600.0, "", print
    side._replies, never = os.pipe()  # the worker never answers
    side.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    helper = threading.Thread(target=lambda: (time.sleep(0.5), signal.pthread_kill(
        threading.get_ident(), signal.SIGINT)))
    started = time.monotonic()
    # Python's own handler, even where this run started in the background with SIGINT ignored
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        helper.start()
        with pytest.raises(KeyboardInterrupt):
            side.wait("building")
    finally:
        helper.join()
        signal.signal(signal.SIGINT, handler)
        side.kill()
        side.process.wait()
        os.close(side._replies)
        os.close(never)
    assert time.monotonic() - started < 60  # the worker's time-out is 600 s
    assert side.process.returncode is not None and "interrupted while building" in side.stopped


# -- the protocol ------------------------------------------------------------------------------
def test_paths_travel_by_perfsuites_name_so_an_older_python_reads_them():
    """Python 3.13 pickles a Path as pathlib._local.PosixPath, which a worker on 3.12 or older
    cannot load: paths are sent by a function of perfsuite's instead, and come back as paths."""
    import pathlib
    import pickle

    from perfsuite.run.ab.wire import dumps

    message = ("start", {"own": [pathlib.Path("/a/b")], "pure": pathlib.PurePosixPath("/c")})
    data = dumps(message)
    assert b"pathlib" not in data
    assert pickle.loads(data) == message
    assert type(pickle.loads(data)[1]["own"][0]) is type(pathlib.Path("/a/b"))


def _boot_worker(wrapped: bool):
    """A worker started as A/B starts it, or from a shell that stays its parent (a wrapper script
    given to --perf-ab-python that does not `exec`)."""
    import subprocess
    import sys
    from pathlib import Path

    from perfsuite.run.ab.wire import BOOT

    to_worker, requests = os.pipe()
    replies, from_worker = os.pipe()
    root = str(Path(__file__).resolve().parents[3])
    argv = [sys.executable, "-c", BOOT, root, str(to_worker), str(from_worker), str(os.getpid())]
    if wrapped:
        argv = ["sh", "-c", '"$@"; exit $?', "wrapper", *argv]
    process = subprocess.Popen(argv, pass_fds=(to_worker, from_worker), stdin=subprocess.DEVNULL)
    os.close(to_worker)
    os.close(from_worker)
    return process, requests, replies


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_request_the_worker_cannot_read_is_answered_and_the_worker_goes_on(wrapped):
    import struct

    from perfsuite.run.ab.wire import receive, send

    process, requests, replies = _boot_worker(wrapped)
    try:
        unreadable = b"cno_such_module_of_a_newer_python\nThing\n."
        os.write(requests, struct.pack(">I", len(unreadable)) + unreadable)
        kind, text = receive(replies)
        assert kind == "error" and "the request cannot be read on" in text
        assert "no_such_module_of_a_newer_python" in text
        send(requests, ("leaks", ()))
        assert receive(replies) == ("ok", [])
        send(requests, ("close", ()))
        assert receive(replies) == ("ok", None)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(requests)
        os.close(replies)


def test_a_worker_keeps_its_heartbeat_where_heartbeats_are_off(monkeypatch):
    """A silent long build would be stopped at worker_timeout_s: the worker beats at least three
    times per time-out, and at the user's pace where that is faster."""
    from perfsuite.run.ab.process import _worker_env

    monkeypatch.setenv("PERFSUITE_PROGRESS_SECONDS", "0")
    assert float(_worker_env(900.0)["PERFSUITE_PROGRESS_SECONDS"]) == 300.0
    monkeypatch.setenv("PERFSUITE_PROGRESS_SECONDS", "30")
    assert float(_worker_env(900.0)["PERFSUITE_PROGRESS_SECONDS"]) == 30.0
    assert float(_worker_env(9.0)["PERFSUITE_PROGRESS_SECONDS"]) == 3.0


def test_a_tree_under_the_interpreters_prefix_is_still_a_tree(tmp_path):
    """A container's /usr prefix holding the repository at /usr/src/app: the deepest folder
    decides, so the isolation check still sees both trees (and a virtualenv inside the repository
    stays the interpreter's)."""
    prefix = tmp_path / "usr"
    this, ref = prefix / "src" / "app", prefix / "cache" / "ref"
    for folder in (this / "pkg", this / ".venv" / "lib", ref / "pkg"):
        folder.mkdir(parents=True)
    layout = SideLayout([str(ref)], [str(this)], [str(prefix), str(this / ".venv")])
    assert layout.owner(str(this / "pkg" / "m.py")) == "other"
    assert layout.owner(str(ref / "pkg" / "m.py")) == "own"
    assert layout.owner(str(this / ".venv" / "lib" / "torch.py")) == ""
    assert layout.owner(str(prefix / "lib" / "os.py")) == ""


class _RecordingSide:
    def __init__(self, label: str, calls: list) -> None:
        self.label, self.calls = label, calls

    def call(self, op, *args, what=""):
        self.calls.append((self.label, op))
        return {"answered by": self.label}


def test_what_refs_side_builds_for_sizes_and_drift_this_trees_side_builds_too_in_step():
    """A worker keeps what an op builds and times it later: a drift run only REF's side did made
    torch bf16 A/A comparisons lean x1.04-1.06 (docs/gate.md)."""
    calls: list = []
    sides = object.__new__(AbSides)
    sides.base, sides.current = _RecordingSide("REF", calls), _RecordingSide("this tree", calls)
    assert sides.sizes("m", True) == {"answered by": "REF"}
    assert sides.drift(CaseSpec("m", "torch", "bf16", "cpu")) == {"answered by": "REF"}
    assert calls == [("REF", "sizes"), ("this tree", "sizes"),
                     ("REF", "drift"), ("this tree", "drift")]

    def broken(op, *args, what=""):
        raise SideError("drift failed", "this tree")

    sides.current.call = broken  # this side's answer is not needed: REF's stands
    assert sides.drift(CaseSpec("m", "torch", "bf16", "cpu")) == {"answered by": "REF"}


def test_a_request_sent_ahead_is_answered_before_the_next_and_its_failure_is_dropped(tmp_path):
    """Workers build the run's models while the run goes on (`ahead`): the next request reads
    the reply first, so replies never answer the wrong request; a failure there is left for the
    request that needs what it made."""
    import sys
    from pathlib import Path

    from perfsuite.config.settings import SuiteConfig
    from perfsuite.run.ab.process import SideSpec, WorkerSide

    root = Path(__file__).resolve().parents[3]
    spec = SideSpec("REF", sys.executable, tmp_path, (tmp_path,), (), SuiteConfig())
    side = WorkerSide(spec, root, 60.0, lambda line: None)
    try:
        side.ahead("no_such_request", what="doing nothing")
        assert side.call("leaks") == []
        side.ahead("leaks", what="listing")
        side.ahead("no_such_request", what="doing nothing")
        assert side.call("leaks") == []
        assert not side.stopped
    finally:
        side.close()
