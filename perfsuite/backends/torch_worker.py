"""torch eager in a worker process under another interpreter: `[tool.perfsuite.torch] python`.

On a Jetson Nano (JetPack 4.6) NVIDIA's CUDA torch exists only for the system Python 3.6, which
perfsuite itself does not run on. perfsuite (3.8+) starts `python torch_worker_main.py` under
that interpreter, sends it the architecture (a torchvision name or the factory) and the weights
perfsuite made (so both interpreters hold the same model), and asks it to run or time the
model. The worker times its own calls (timed_by_tool, like trtexec): end to end on its clock,
and on a GPU the enqueue and GPU compute from CUDA events. Rows name the interpreter and its
torch version.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any, ClassVar, cast

import numpy as np

from perfsuite.backends import torch_worker_main as wire
from perfsuite.backends.base import CaseSpec, Runner, ToolTimings
from perfsuite.errors import BackendUnavailable, PerfsuiteError
from perfsuite.models.torch_model import ModelSpec

WORKER_SCRIPT = Path(wire.__file__)
PRECISIONS = ("fp32", "fp16")  # bf16 needs torch 1.10's CUDA 11; JetPack 4.6 has CUDA 10.2


class WorkerError(PerfsuiteError):
    """The worker interpreter failed or refused a request."""


class TorchWorker:
    """One worker process: requests in, replies out, its stderr kept for error messages."""

    def __init__(self, python: str, cwd: Path) -> None:
        self.python = python
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                [python, str(WORKER_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, cwd=str(cwd))
        except OSError as exc:
            self._stderr.close()
            raise BackendUnavailable(f"the torch worker's interpreter {python} cannot be "
                                     f"started: {exc.strerror or exc}") from exc

    def call(self, op: str, argument: Any = None) -> Any:
        process = self._process
        try:
            wire.write_message(cast(IO[bytes], process.stdin), (op, argument))
        except BrokenPipeError:
            pass  # it has exited: what it wrote to stdout, or its exit status, says why
        except (OSError, ValueError) as exc:  # ValueError: the worker was closed
            raise WorkerError(f"torch worker {self.python} | {op}: {exc}") from exc
        try:
            reply = wire.read_message(cast(IO[bytes], process.stdout))
        except pickle.UnpicklingError as exc:  # something else wrote to its stdout first
            raise WorkerError(f"torch worker {self.python} | {op}: its reply is not perfsuite's "
                              f"worker protocol ({exc}); does the interpreter print to stdout "
                              "when it starts (a sitecustomize, a wrapper script)?") from exc
        except (OSError, EOFError, ValueError) as exc:
            reply = None
            if not isinstance(exc, (BrokenPipeError, EOFError)):
                raise WorkerError(f"torch worker {self.python} | {op}: {exc}") from exc
        if reply is None:
            raise WorkerError(f"torch worker {self.python} stopped during '{op}' "
                              f"(exit status {process.wait(timeout=30)}): {self._stderr_tail()}")
        status, value = reply
        if status != "ok":
            raise WorkerError(f"torch worker {self.python} | {op}: {value}")
        return value

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return " | ".join(lines[-6:]) or "nothing on stderr"

    def close(self) -> None:
        process = self._process
        if process.poll() is None:
            try:
                wire.write_message(cast(IO[bytes], process.stdin), ("close", None))
                process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout, self._stderr):
            if stream is not None:
                with contextlib.suppress(OSError):  # a request left unsent to a dead worker
                    stream.close()


def worker_device(setting: str, has_cuda: bool, python: str) -> str:
    """Where the worker runs: CUDA when its torch has it (unless the run is set to cpu)."""
    if setting == "cpu" or (setting == "auto" and not has_cuda):
        return "cpu"
    if not has_cuda:
        raise BackendUnavailable(f"device = \"cuda\" but the torch worker's torch ({python}) "
                                 "has no CUDA")
    return "cuda"


def build_request(spec: ModelSpec, model: Any, precision: str, device: str, threads: int,
                  timer: str, tf32: bool = False) -> dict[str, Any]:
    state = {key: wire.to_wire(value.detach().cpu().numpy())
             for key, value in model.state_dict().items()}
    return {"torchvision": spec.torchvision or "", "factory": spec.factory or "",
            "search_path": [str(p) for p in spec.search_path], "state": state,
            "precision": precision, "device": device, "threads": threads, "timer": timer,
            "tf32": tf32}


class TorchWorkerRunner(Runner):
    timed_by_tool: ClassVar[bool] = True

    def __init__(self, case: CaseSpec, spec: ModelSpec, worker: TorchWorker,
                 facts: dict[str, Any], artifact_bytes: int, device: str) -> None:
        super().__init__(case, spec.input_shape, artifact_bytes)
        self._worker, self._facts, self._device = worker, facts, device
        self._warmup_min_runs = 10  # perfsuite's default warmup_min_runs

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, wire.from_wire(self._worker.call("run", wire.to_wire(inputs))))

    def tool_timings(self, inputs: np.ndarray, rounds: int, warmup_s: float) -> ToolTimings:
        timed = self._worker.call("time", (wire.to_wire(inputs), rounds, warmup_s,
                                           self._warmup_min_runs))
        return ToolTimings(e2e_s=tuple(timed["e2e_s"]),
                           gpu_s=tuple(timed["gpu_s"]) if timed["gpu_s"] else None,
                           enqueue_s=tuple(timed["enqueue_s"]) if timed["enqueue_s"] else None)

    def describe(self) -> dict[str, str]:
        facts = self._facts
        # the table's device column is the run's (this process's torch); the worker's own
        # torch decides where it runs, so the note says where that differs
        elsewhere = f" on {self._device}" if self._device != self.case.device else ""
        return {"runtime": f"torch {facts['torch']} eager (Python {facts['python']} worker)",
                "recipe": f"Python {facts['python']} worker{elsewhere}, torch {facts['torch']}",
                "interpreter": str(facts["executable"]), "dtype": self.case.precision,
                "device": self._device, "threads": str(facts["threads"]),
                "cuda_graph": "off"}

    def close(self) -> None:
        self._worker.close()
        super().close()


def start_worker_runner(python: str, spec: ModelSpec, model: Any, precision: str,
                        run_device: str, device_setting: str, threads: int, timer: str,
                        sample: np.ndarray, tf32: bool = False) -> TorchWorkerRunner:
    """A runner whose model lives in a worker under `python`, checked by one call on `sample`:
    what the worker's torch cannot run (fp16 convolutions on a CPU, in 1.10) is unavailable."""
    import copy

    from perfsuite.machine.device import torch_dtype
    from perfsuite.measure.sizes import state_dict_bytes

    weights_bytes = state_dict_bytes(copy.deepcopy(model).to(dtype=torch_dtype(precision)))
    worker = TorchWorker(python, Path(os.getcwd()))
    try:
        facts = worker.call("describe")
        device = worker_device(device_setting, bool(facts["cuda"]), python)
        worker.call("build", build_request(spec, model, precision, device, threads, timer, tf32))
        worker.call("run", wire.to_wire(sample))
        # asked again after the build: the threads column is what the model runs with
        facts = worker.call("describe")
    except WorkerError as exc:
        worker.close()
        raise BackendUnavailable(f"{exc}") from None
    except BaseException:
        worker.close()
        raise
    case = CaseSpec(spec.name, "torch", precision, run_device)
    return TorchWorkerRunner(case, spec, worker, facts, weights_bytes, device)

