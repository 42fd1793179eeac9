"""One side of an A/B run in its own worker process (perfsuite.run.ab.worker): which interpreter
(`--perf-ab-python`), how it is started (a private copy of perfsuite, a fixed address layout),
and the requests sent to it. A worker that crashes, exits or does not answer within
`[tool.perfsuite.ab] worker_timeout_s` is stopped and says why (SideStopped)."""

from __future__ import annotations

import collections
import functools
import hashlib
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsuite.config.settings import SuiteConfig
from perfsuite.errors import CacheError, PerfsuiteError, SideError, SideStopped
from perfsuite.models.artifacts import ArtifactCache
from perfsuite.progress import HEARTBEAT_ENV, Progress, heartbeat_seconds
from perfsuite.run.ab.wire import BOOT, receive, send

STDERR_LINES = 12
REAP_S = 30.0  # the longest the run waits for a killed worker to go
WAKE_S = 0.25  # the longest a wait for a worker blocks without looking at signals


@dataclass(frozen=True)
class SideSpec:
    """Where a side runs: its interpreter, its tree and what its worker is told."""

    label: str
    python: str
    cwd: Path
    own: tuple[Path, ...]  # the side's tree: rootdir, git top level
    other: tuple[Path, ...]  # the other side's, in the same order (empty: the same tree)
    config: SuiteConfig = field(repr=False, compare=False)
    timer: str | None = None


def harness(cache: ArtifactCache) -> Path:
    """A private copy of this perfsuite's package (content-addressed in the cache), put first
    on each worker's import path: the other interpreter needs no perfsuite of its own."""
    package = Path(__file__).resolve().parents[2]  # perfsuite/, from perfsuite/run/ab/
    files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())

    def build(folder: Path) -> None:
        for path in files:
            target = folder / "perfsuite" / path.relative_to(package)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    try:
        entry = cache.get_or_build("harness", "perfsuite", {"sources": digest.hexdigest()}, build)
    except (OSError, CacheError) as exc:
        raise PerfsuiteError(f"--perf-ab | cannot write the workers' copy of perfsuite into the "
                             f"cache ({exc}).\nRemedy: point PERFSUITE_CACHE_DIR at a writable "
                             "folder with room.") from exc
    return entry.path


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def timing_core() -> int | None:
    """The one CPU core both workers' timing threads share (the last this process may use;
    None where affinity cannot be set or one core is all there is)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1] if len(cores) > 1 else None


def fixed_layout(command: list[str]) -> list[str]:
    """`command` with address-space randomisation off (util-linux's `setarch -R`, where there
    is one): both workers then place their code, JIT kernels and buffers alike, which took the
    spread of one process's speed against another's from 2.9% to 0.5% (torch on a CPU)."""
    prefix = _setarch_prefix()
    return [*prefix, *command] if prefix else command


@functools.lru_cache(maxsize=1)
def _setarch_prefix() -> tuple[str, ...]:
    """`setarch ARCH -R` where it exists and works here (a seccomp filter may refuse it)."""
    setarch = shutil.which("setarch")
    if not sys.platform.startswith("linux") or setarch is None:
        return ()
    prefix = (setarch, platform.machine(), "-R")
    try:
        works = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        works = False
    return prefix if works else ()


def _worker_env(timeout_s: float) -> dict[str, str]:
    """Both workers hash strings alike (dict and set layouts, and so their host-side costs), and
    a long build says it is alive at least three times per `timeout_s`, even where heartbeats
    are off (PERFSUITE_PROGRESS_SECONDS=0): each line restarts the driver's time-out."""
    heartbeat = heartbeat_seconds()
    every = min(heartbeat, timeout_s / 3) if heartbeat > 0 else timeout_s / 3
    return {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"),
            HEARTBEAT_ENV: f"{max(every, 0.1):g}"}


class WorkerSide:
    """One side's worker process and the requests sent to it."""

    def __init__(self, spec: SideSpec, harness_path: Path, timeout_s: float,
                 progress: Progress) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.progress = progress
        self.stopped = ""  # why the side cannot go on
        self._ahead = ""  # what a request sent ahead (not waited for) is doing
        self.versions: dict[str, str] = {}
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        to_worker, self._requests = os.pipe()
        self._replies, from_worker = os.pipe()
        try:
            self.process = subprocess.Popen(
                fixed_layout([spec.python, "-c", BOOT, str(harness_path), str(to_worker),
                              str(from_worker), str(os.getpid())]),
                cwd=spec.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=_worker_env(timeout_s),
                stderr=subprocess.PIPE, pass_fds=(to_worker, from_worker))
        except OSError as exc:
            for fd in (self._requests, self._replies):
                os.close(fd)
            raise PerfsuiteError(f"{spec.label}'s worker cannot start ({spec.python}: {exc})") \
                from exc
        finally:
            os.close(to_worker)
            os.close(from_worker)
        self._tail_reader = threading.Thread(target=self._keep_tail, daemon=True,
                                             name=f"perfsuite-ab-{spec.label}")
        self._tail_reader.start()

    def _keep_tail(self) -> None:
        assert self.process.stderr is not None
        try:
            for line in iter(self.process.stderr.readline, b""):
                self._tail.append(line.decode(errors="replace").rstrip())
        except (OSError, ValueError):  # closed by close() while a stuck worker still held it
            return

    def ahead(self, op: str, *args: Any, what: str) -> None:
        """Send `op` without waiting: the worker does it while this process goes on. Its reply
        is read before the next request; a failure in it is dropped, as the request that needs
        what it made meets the same failure and reports it."""
        self.send(op, *args)
        self._ahead = what

    def send(self, op: str, *args: Any) -> None:
        if self._ahead:
            what, self._ahead = self._ahead, ""
            try:
                self.wait(what)
            except SideError:
                pass
        if self.stopped:
            raise SideStopped(self.stopped)
        try:
            send(self._requests, (op, args))
        except OSError:
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._stop("stopped accepting requests", op)
            self._stop(f"stopped ({_exit_reason(code)})", op)

    def wait(self, what: str) -> Any:
        """The reply to the request sent last; progress lines are passed on meanwhile. Interrupted
        (Ctrl-C) before the reply came, the worker is stopped: its late reply would otherwise
        answer the next request, and the run's end would wait on a worker still busy."""
        try:
            return self._wait(what)
        except (SideError, SideStopped):
            raise
        except BaseException:  # Ctrl-C, pytest.exit, a time-out plugin's Failed
            self.stopped = f"{self.spec.label}'s worker was stopped: the run was interrupted " \
                           f"while {what}"
            self.kill()
            raise

    def _wait(self, what: str) -> Any:
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left > 0:
                # short slices: a Ctrl-C that the kernel gave another thread of this process
                # (a backend's pool) does not interrupt this select, only the next bytecode
                ready = select.select([self._replies], [], [], min(left, WAKE_S))[0]
                if not ready:
                    continue
            else:
                self._stop(f"did not answer within {self.timeout_s:g} s "
                           "([tool.perfsuite.ab] worker_timeout_s)", what)
            try:
                kind, value = receive(self._replies)
            except (EOFError, OSError):
                try:
                    code = self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    code = None
                self._stop(f"stopped ({_exit_reason(code)})", what)
            if kind == "progress":
                self.progress(f"[{self.spec.label}] {value}")
                deadline = time.monotonic() + self.timeout_s
                continue
            if kind == "error":
                raise SideError(value, self.spec.label)
            return value

    def call(self, op: str, *args: Any, what: str = "") -> Any:
        self.send(op, *args)
        return self.wait(what or op)

    def _stop(self, reason: str, what: str) -> None:
        self.kill()
        self._reap()
        self._tail_reader.join(timeout=2)  # it reads what the worker wrote last
        tail = [line for line in tuple(self._tail) if line.strip()][-3:]
        said = f"; its last output: {' | '.join(tail)}" if tail else ""
        self.stopped = f"{self.spec.label}'s worker {reason} while {what}{said}"
        raise SideStopped(self.stopped)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def _reap(self) -> None:
        """Wait for the killed worker; one stuck in the kernel (a hung GPU driver) is left
        behind rather than hanging the run."""
        try:
            self.process.wait(timeout=REAP_S)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        """Ask the worker to finish; kill it if it does not within a few seconds."""
        if self.process.poll() is None and not self.stopped:
            try:
                send(self._requests, ("close", ()))
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self._reap()
        self._tail_reader.join(timeout=2)
        if self.process.stderr is not None:
            self.process.stderr.close()
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass


def sides_python(value: str | None) -> str:
    """--perf-ab-python's interpreter: a Python executable or a virtualenv's folder."""
    if not value:
        return sys.executable
    path = Path(value).expanduser()
    if path.is_dir():
        for candidate in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if candidate.exists():
                path = candidate
                break
    problem = ""
    if not path.exists():
        problem = "does not exist"
    else:
        try:
            done = subprocess.run([str(path), "-c", "import sys; print(sys.version_info >= (3, 8))"],
                                  capture_output=True, text=True, timeout=60)
            if done.stdout.strip() != "True":
                problem = ("is not a Python 3.8 or newer interpreter"
                           + (f" ({done.stderr.strip().splitlines()[-1]})" if done.stderr.strip()
                              else ""))
        except (OSError, subprocess.SubprocessError) as exc:
            problem = f"cannot run ({exc})"
    if problem:
        raise PerfsuiteError(f"--perf-ab-python={value} | {problem}.\nRemedy: name a Python 3.8+ "
                             "interpreter or a virtualenv's folder, e.g. "
                             "--perf-ab-python=.venv-old/bin/python.")
    return str(path.absolute())


def environment_label(python: str) -> str:
    """A short name for the other environment: its virtualenv's folder, else the interpreter."""
    path = Path(python)
    venv = path.parent.parent
    if (venv / "pyvenv.cfg").is_file():
        try:
            return os.path.relpath(venv)
        except ValueError:
            return str(venv)
    return python
