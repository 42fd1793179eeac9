"""The torch worker: run by another interpreter (JetPack 4.6's system Python 3.6 with NVIDIA's
CUDA torch 1.10), it builds one model session and runs or times it on request.

This file is run by path and imports nothing of perfsuite: it must stay valid Python 3.6 (no
dataclasses, no `from __future__ import annotations`, no walrus, no positional-only
parameters). tests/e2e/test_torch_worker.py compiles it under 3.6 and runs it.

Protocol (torch_worker.py is the other end): on stdin, requests; on stdout, replies; each a
4-byte big-endian length and a pickle (protocol 4) of plain values. Arrays travel as
("ndarray", dtype string, shape, bytes): numpy's own pickles differ between its versions.
Replies are ("ok", value) or ("error", message). Anything the model prints goes to stderr.
"""

import importlib
import os
import pickle
import struct
import sys
import time
import traceback

PROTOCOL = 4
STEADY = 0.05  # warm-up ends when two blocks' medians agree this closely ...
WARMUP_CAP_S = 3.0  # ... or after this long (an H200 worker took 1-3 s to reach its speed)


def read_message(stream):
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return pickle.loads(stream.read(size))


def write_message(stream, value):
    data = pickle.dumps(value, protocol=PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def to_wire(array):
    return ("ndarray", array.dtype.str, tuple(array.shape), array.tobytes())


def from_wire(value):
    import numpy as np

    _, dtype, shape, data = value
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()


def import_attr(name, search_path):
    """'module:attr' or 'module.attr', imported with `search_path` first on sys.path."""
    module, sep, attr = name.partition(":")
    if not sep:
        module, _, attr = name.rpartition(".")
    for folder in reversed(search_path):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    target = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


class Session:
    """One model on one device at one precision."""

    def __init__(self, request):
        import torch

        self.torch = torch
        self.device = torch.device("cuda" if request["device"] == "cuda" else "cpu")
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16}[request["precision"]]
        torch.set_num_threads(request["threads"] or torch.get_num_threads())
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = request["tf32"]
        # inference mode (torch 1.9+) skips autograd's bookkeeping, as perfsuite's own runner does
        self.no_autograd = getattr(torch, "inference_mode", torch.no_grad)
        model = self._architecture(request)
        state = dict((key, torch.from_numpy(from_wire(value)))
                     for key, value in request["state"].items())
        model.load_state_dict(state, strict=True)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.clock = (import_attr(request["timer"], request["search_path"])
                      if request.get("timer") else time.perf_counter)

    def _architecture(self, request):
        if request["torchvision"]:
            import torchvision

            return getattr(torchvision.models, request["torchvision"])()
        return import_attr(request["factory"], request["search_path"])()

    def _input(self, array):
        return self.torch.from_numpy(from_wire(array)).to(device=self.device, dtype=self.dtype)

    def run(self, array):
        with self.no_autograd():
            output = self.model(self._input(array))
        return to_wire(output.float().cpu().numpy())

    def warm_up(self, call, warmup_s, min_runs):
        """Calls until `warmup_s` and `min_runs` are reached and two blocks of 10 calls agree
        within STEADY; a fresh process (lazy CUDA modules, allocator, cuDNN's choices) takes
        seconds where perfsuite's own process is already warm. At most WARMUP_CAP_S."""
        started, runs, previous = time.perf_counter(), 0, None
        while True:
            block = []
            for _ in range(10):
                t0 = time.perf_counter()
                call()
                block.append(time.perf_counter() - t0)
            runs += 10
            median = sorted(block)[5]
            elapsed = time.perf_counter() - started
            steady = previous is not None and abs(median - previous) <= STEADY * previous
            previous = median
            if (steady and elapsed >= warmup_s and runs >= min_runs) or \
                    elapsed >= max(WARMUP_CAP_S, warmup_s):
                return runs

    def time(self, array, rounds, warmup_s, min_runs=10):
        """`rounds` calls after the warm-up: end to end by the clock (synchronised), and on a
        GPU the enqueue (the call's return) and GPU compute (CUDA events)."""
        torch, x, on_gpu = self.torch, self._input(array), self.device.type == "cuda"

        def call():
            self.model(x)
            if on_gpu:
                torch.cuda.synchronize()

        with self.no_autograd():
            self.warm_up(call, warmup_s, min_runs)
            e2e, enqueue, gpu = [], [], []
            for _ in range(rounds):
                if on_gpu:
                    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                        enable_timing=True)
                    t0 = self.clock()
                    begin.record()
                    self.model(x)
                    end.record()
                    launched = self.clock()
                    torch.cuda.synchronize()
                    e2e.append(self.clock() - t0)
                    enqueue.append(launched - t0)
                    gpu.append(begin.elapsed_time(end) / 1e3)
                else:
                    t0 = self.clock()
                    self.model(x)
                    e2e.append(self.clock() - t0)
        return {"e2e_s": e2e, "gpu_s": gpu or None, "enqueue_s": enqueue or None}


def describe():
    import torch

    return {"python": sys.version.split()[0], "executable": sys.executable,
            "torch": torch.__version__, "cuda": bool(torch.cuda.is_available()),
            "threads": torch.get_num_threads()}


def main():
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the model's prints must not reach the protocol stream
    session = None
    while True:
        message = read_message(requests)
        if message is None or message[0] == "close":
            return 0
        op, argument = message
        try:
            if op == "describe":
                value = describe()
            elif op == "build":
                session = Session(argument)
                value = None
            elif op == "run":
                value = session.run(argument)
            elif op == "time":
                value = session.time(*argument)
            else:
                raise ValueError(f"unknown request {op!r}")
        except Exception as exc:  # reported to perfsuite, which names the worker
            detail = traceback.format_exc(limit=-2).strip().splitlines()
            where = detail[-2].strip() if len(detail) > 1 else ""
            write_message(replies, ("error", f"{type(exc).__name__}: {exc} ({where})"))
        else:
            write_message(replies, ("ok", value))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
