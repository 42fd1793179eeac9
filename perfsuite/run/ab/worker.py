"""An A/B worker: one side of `--perf-ab` in its own process (perfsuite.run.ab.process starts it,
perfsuite.run.ab.sides drives it).

It runs as `python -c BOOT HARNESS READ_FD WRITE_FD PARENT_PID` in the side's tree, where
HARNESS is a private copy of perfsuite (so the worker's interpreter needs only the standard library
and the model's own packages, not perfsuite). Its import path then starts with the harness and the
side's tree (its root, and `src/` where present); entries that point into the other side's tree
(PYTHONPATH, a `.pth` file of an editable install) are mapped onto this side's tree or dropped.
Requests and replies are length-prefixed pickles on two pipes; stdout goes to stderr, which the
driver keeps the tail of. The worker builds its side's models and runners once, times trials the
way the pytest process does (host clock, CUDA events), and reports the files of the modules it
loaded so the driver can check that no module came from the other side's tree.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from typing import Any, Iterator

from perfsuite.run.ab.layout import SideLayout, leaks
from perfsuite.run.ab.wire import PROTOCOL, receive, send


def versions() -> dict[str, str]:
    """Python and the packages a benchmark's numbers depend on."""
    from importlib import metadata

    found = {"python": sys.version.split()[0], "executable": sys.executable}
    for package in ("torch", "onnxruntime", "onnxruntime-gpu", "tensorrt", "tensorrt-cu12",
                    "numpy"):
        try:
            found[package] = metadata.version(package)
        except Exception:  # not installed, or metadata unreadable
            continue
    try:
        torch = importlib.import_module("torch")
        found["cuda"] = torch.version.cuda or "none"
    except Exception:  # noqa: BLE001 - no torch: the side fails when it builds
        pass
    return found


class Worker:
    """Serves one side's requests: its PerfRun, timed trials, sizes, drift, loaded modules."""

    def __init__(self, write_fd: int) -> None:
        self.write_fd = write_fd
        self.perf: Any = None
        self.layout: SideLayout | None = None
        self.clock = time.perf_counter
        self.core: int | None = None

    def progress(self, message: str) -> None:
        send(self.write_fd, ("progress", message))

    def op_start(self, harness: str, side: dict[str, Any]) -> dict[str, str]:
        self.layout = SideLayout(side["own"], side["other"], [harness, *side["exempt"]],
                                 side.get("lengths"))
        sys.path[:] = self.layout.import_path(harness, side["first"])
        from perfsuite.run.workshop import PerfRun

        self.perf = PerfRun(side["config"], progress=self.progress)
        self.perf.paired_mode = True
        self.core = side.get("core")
        if side.get("timer"):
            module, _, attr = side["timer"].rpartition(".")
            self.clock = getattr(importlib.import_module(module), attr)
        return versions()

    def op_import_factories(self) -> list[str]:
        """Import every factory's module (building nothing); the errors, for the record."""
        from perfsuite.models.torch_model import resolve_factory

        errors = []
        for spec in self.perf.config.models:
            if spec.factory:
                try:
                    resolve_factory(spec)
                except Exception as exc:  # noqa: BLE001 - reported when the model builds
                    errors.append(str(exc).splitlines()[0])
        return errors

    def op_build_models(self, names: list[str]) -> int:
        """Build the named models this side configures, ahead of the requests that use them; a
        model that fails is left for the request that needs it to report (its artifacts keep
        the failure)."""
        from perfsuite.errors import PerfsuiteError

        known = [spec.name for spec in self.perf.config.models]
        for name in (n for n in names if n in known):
            try:
                self.perf.artifacts(name).torch_model()
            except PerfsuiteError:
                continue
        return len(known)

    def op_leaks(self) -> list[tuple[str, str, str]]:
        return leaks(self.layout) if self.layout is not None else []

    def _case(self, key: tuple[str, str, str]) -> Any:
        return self.perf.case(*key)

    def op_prepare(self, key: tuple[str, str, str]) -> dict[str, Any]:
        case = self._case(key)
        runner = self.perf.runner(case)
        return {"details": runner.describe(), "input_shape": tuple(runner.input_shape),
                "artifact_bytes": int(runner.artifact_bytes),
                "timed_by_tool": bool(runner.timed_by_tool),
                "gpu": runner.device_enqueue(self._sample(case)) is not None}

    def _sample(self, case: Any) -> Any:
        return self.perf.inputs(case.model)[0]

    def op_warm(self, key: tuple[str, str, str]) -> int:
        from perfsuite.measure.timing import warm_up

        case = self._case(key)
        runner, sample, timing = self.perf.runner(case), self._sample(case), self.perf.config.timing
        return warm_up(lambda: runner.run(sample), timing.warmup_seconds, timing.warmup_min_runs)

    @contextlib.contextmanager
    def _on_timing_core(self) -> Iterator[None]:
        """This thread on the timing core for one trial, every other thread of this worker (a
        backend's pool) on the other cores: both workers time on one core, so both sides meet
        its state (its clock, caches, other work) at every moment, and each side's threads sit
        where the other side's sat. Left to the scheduler, a pool thread woken by the timing
        thread sometimes ran beside it on its core: ONNX Runtime A/A runs then differed by up
        to 8.6% from one process to the next. This thread gets its cores back after the trial,
        so the threads a backend starts later (made with their maker's cores) are free too."""
        if self.core is None:
            yield
            return
        free = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, {self.core})
            if free - {self.core}:
                _pin_other_threads(free - {self.core})
        except OSError:  # a cpuset that changed under us: time unpinned
            self.core = None
        try:
            yield
        finally:
            os.sched_setaffinity(0, free)

    def op_trial(self, key: tuple[str, str, str], statistic: str, rounds: int,
                 after_other: bool = False) -> list[float]:
        """`rounds` durations in seconds: host-timed calls ('e2e') or CUDA-event timed
        back-to-back launches ('gpu', whose median leaves the first out). After the other
        side's trial an untimed call comes first: it wakes this worker's threads and brings its
        model back into the caches, as the previous call of a run in one process would have."""
        case = self._case(key)
        runner, sample = self.perf.runner(case), self._sample(case)
        with self._on_timing_core():
            if statistic == "gpu":
                from perfsuite.measure.timing import cuda_event_samples

                enqueue = runner.device_enqueue(sample)
                return list(cuda_event_samples(enqueue, rounds, warmup_runs=0).gpu_s)
            from perfsuite.measure.paired import host_timed

            if after_other:
                runner.run(sample)
            return host_timed(lambda: runner.run(sample), self.clock)(rounds)

    def op_sizes(self, model: str, fp16_onnx: bool) -> dict[str, int]:
        from perfsuite.measure.sizes import model_sizes

        return model_sizes(self.perf.artifacts(model), fp16_onnx)

    def op_drift(self, key: tuple[str, str, str]) -> dict[str, float] | None:
        found = self.perf.drift(self._case(key))
        return None if found is None else found.as_dict()


def _pin_other_threads(cores: set[int]) -> None:
    """Every thread of this process but the calling one onto `cores` (Linux: /proc lists
    them; a thread that ended meanwhile is skipped)."""
    try:
        threads = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return
    me = threading.get_native_id()
    for thread in threads:
        if thread != me:
            try:
                os.sched_setaffinity(thread, cores)
            except OSError:
                pass


def main(argv: list[str]) -> None:
    read_fd, write_fd = int(argv[0]), int(argv[1])
    for fd in (read_fd, write_fd):  # a process the model starts must not hold the protocol
        os.set_inheritable(fd, False)
    _die_with_parent(int(argv[2]))
    os.dup2(2, 1)  # the model's prints go to the log the driver keeps, never into the protocol
    harness = sys.path[0]
    worker = Worker(write_fd)
    from perfsuite.errors import PerfsuiteError

    while True:
        try:
            op, args = receive(read_fd)
        except EOFError:
            return
        except Exception as exc:  # noqa: BLE001 - a request this interpreter cannot load
            send(write_fd, ("error", f"the request cannot be read on {sys.version.split()[0]}: "
                                     f"{type(exc).__name__}: {exc}"))
            continue
        if op == "close":
            worker.perf is not None and worker.perf.close()
            send(write_fd, ("ok", None))
            return
        try:
            if op == "start":
                value: Any = {"protocol": PROTOCOL, **worker.op_start(harness, *args)}
            else:
                value = getattr(worker, f"op_{op}")(*args)
        except PerfsuiteError as exc:
            send(write_fd, ("error", str(exc)))
        except Exception as exc:  # noqa: BLE001 - the side's code: reported, the worker lives on
            send(write_fd, ("error", f"{type(exc).__name__}: {exc}"))
        else:
            send(write_fd, ("ok", value))


def _die_with_parent(parent: int) -> None:
    """No worker outlives the pytest process, even one killed with SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watcher below
            pass
    first = os.getppid()  # the pytest process, or a wrapper script that did not exec
    exit_now = os._exit  # bound now: a factory's guard patches os._exit while it runs

    def driver_alive() -> bool:
        if os.getppid() != first:
            return False
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return False
        except OSError:  # alive, owned by someone else
            pass
        return True

    if not driver_alive():  # the driver died before prctl took effect
        exit_now(1)

    def watch() -> None:
        while driver_alive():
            time.sleep(0.5)
        exit_now(1)

    threading.Thread(target=watch, daemon=True).start()
