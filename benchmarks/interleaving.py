"""Whether spreading each benchmark's rounds over the whole run steadies its median between runs
(docs/bisect.md, "Slow spells"): the zoo timed in one fresh process twice, blocked and
interleaved.

    python benchmarks/interleaving.py record --out spells/ --processes 20 [--models a,b] \
        [--sizes 64,96] [--passes 10] [--rounds 100]
        [--spells 6,12]
    python benchmarks/interleaving.py evaluate spells/ [--reps 2000] [--lengths 20,40]

`record` runs `--processes` fresh processes one after another. Each builds the zoo's cases
(torchvision models at each size; torch fp32, fp16 and bf16, ONNX Runtime fp32 and fp16; on the
CPU) through perfsuite's workshop, then times every case in two schedules, their order swapped
in every other process:
- blocked, as a pytest run does: each case in turn, warm-up (0.2 s, 10 calls) then `--rounds`
  timed calls;
- interleaved: `--passes` passes over the cases, each pass in a new random order; a visit is
  3 warm-up calls then `--rounds / --passes` timed calls.
A case's median is over its `--rounds` timed calls in either schedule, so both cost about the
same. One JSON per process. `--spells ON,OFF` makes slow spells on purpose, as a busy
neighbour would: while each process runs, one busy process per CPU core spins for ON seconds
and rests for OFF, starting at a random point of its cycle. `evaluate` prints, per schedule,
the median log sd between processes by backend, and the change points found in synthetic
histories of +10% steps drawn from each schedule's medians (benchmarks/change_point_quality.py's
method).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from change_point_quality import histories  # noqa: E402

SCHEDULES = ("blocked", "interleaved")
ZOO = """[tool.perfsuite]
backends = ["torch", "onnxruntime"]
precisions = ["fp32", "fp16", "bf16"]
device = "cpu"
"""
MODEL = """
[[tool.perfsuite.models]]
name = "{name}_{size}"
torchvision = "{name}"
input_shape = [1, 3, {size}, {size}]
"""

CHILD = r"""
import json, random, sys, time
from pathlib import Path
from perfsuite.backends import BACKEND_TYPES
from perfsuite.config.settings import load_config
from perfsuite.errors import BackendUnavailable
from perfsuite.measure.timing import warm_up
from perfsuite.run.workshop import PerfRun

project, first, passes, rounds, seed = Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:6])
perf = PerfRun(load_config(project, list(BACKEND_TYPES)))
calls = {}
for model, backend, precision in perf.case_params():
    case = perf.case(model, backend, precision)
    try:
        runner = perf.runner(case)
    except BackendUnavailable:
        continue
    sample = perf.inputs(model)[0]
    calls[f"{model} {backend} {precision}"] = (lambda r=runner, s=sample: r.run(s))

def timed(call, count):
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times

def blocked():
    out = {}
    for name, call in calls.items():
        warm_up(call, 0.2, 10)
        out[name] = timed(call, rounds)
    return out

def interleaved():
    out = {name: [] for name in calls}
    order = list(calls)
    rng = random.Random(seed)
    for _ in range(passes):
        rng.shuffle(order)
        for name in order:
            warm_up(calls[name], 0.0, 3)
            out[name] += timed(calls[name], rounds // passes)
    return out

plans = {"blocked": blocked, "interleaved": interleaved}
result = {}
for schedule in ([first, *[s for s in plans if s != first]]):
    start = time.perf_counter()
    times = plans[schedule]()
    result[schedule] = {name: 1e3 * sorted(t)[len(t) // 2] for name, t in times.items()}
    result[schedule + " seconds"] = time.perf_counter() - start
    result[schedule + " calls"] = {name: len(t) for name, t in times.items()}
print(json.dumps(result))
"""


SPELL = r"""
import sys, time
on, off, phase = map(float, sys.argv[1:4])
time.sleep(phase)
while True:
    until = time.perf_counter() + on
    while time.perf_counter() < until:
        pass
    time.sleep(off)
"""


def parse_spells(text: str) -> tuple[float, float] | None:
    """'ON,OFF' seconds as a pair; '' as None (no busy neighbours)."""
    if not text:
        return None
    on, off = (float(value) for value in text.split(","))
    return on, off


@contextmanager
def busy_neighbours(spells: tuple[float, float] | None, seed: int) -> Iterator[None]:
    """While the body runs, one spinning process per CPU core, on and off as `spells` says
    (none without); they are stopped when it ends."""
    neighbours = []
    if spells is not None:
        on, off = spells
        phase = random.Random(seed).uniform(0, on + off)
        neighbours = [subprocess.Popen([sys.executable, "-c", SPELL, str(on), str(off),
                                        str(phase)]) for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for neighbour in neighbours:
            neighbour.kill()
            neighbour.wait()


def record(out: Path, processes: int, models: list[str], sizes: list[int], passes: int,
           rounds: int, spells: tuple[float, float] | None = None) -> None:
    """`processes` fresh processes, each timing the zoo blocked and interleaved."""
    out.mkdir(parents=True, exist_ok=True)
    project = Path(tempfile.mkdtemp(prefix="spells-"))
    text = ZOO + "".join(MODEL.format(name=m, size=s) for m in models for s in sizes)
    (project / "pyproject.toml").write_text(text)
    for index in range(processes):
        first = SCHEDULES[index % 2]
        with busy_neighbours(spells, index):
            done = subprocess.run([sys.executable, "-c", CHILD, str(project), first,
                                   str(passes), str(rounds), str(index)],
                                  capture_output=True, text=True, cwd=REPO)
        if done.returncode:
            raise SystemExit(f"process {index} failed:\n{done.stderr[-3000:]}")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        (out / f"spells_{index:02d}.json").write_text(json.dumps(measured, indent=1))
        print(f"process {index:02d} ({first} first): "
              + ", ".join(f"{s} {measured[s + ' seconds']:.1f} s" for s in SCHEDULES), flush=True)


def medians(folder: Path, schedule: str) -> dict[str, list[float]]:
    """Per case, its median in every recorded process under `schedule`."""
    found: dict[str, list[float]] = {}
    for path in sorted(folder.glob("spells_*.json")):
        for name, value in json.loads(path.read_text())[schedule].items():
            found.setdefault(name, []).append(value)
    return found


def evaluate(folder: Path, reps: int, lengths: list[int], step: float) -> None:
    """Spread between processes and change-point detection, per schedule."""
    print(f"| schedule | processes | median log sd: torch / ONNX Runtime | "
          f"+{100 * (step - 1):.0f}% steps found (points: detected, known place t / rank) |")
    print("|---|---|---|---|")
    for schedule in SCHEDULES:
        found = medians(folder, schedule)
        logs = {name: np.log(values) for name, values in found.items() if min(values) > 0}
        spread = {backend: statistics.median(float(np.std(v, ddof=1)) for n, v in logs.items()
                                             if f" {backend} " in n)
                  for backend in ("torch", "onnxruntime")}
        noise = {name: v - v.mean() for name, v in logs.items()}
        cells = []
        for length in lengths:
            got = histories(noise, length, step, reps, seed=1)
            cells.append(f"{length}: {100 * got['detected']:.1f}%, "
                         f"{100 * got['known_t']:.1f}% / {100 * got['known_rank']:.1f}%")
        runs = len(next(iter(found.values()), []))
        print(f"| {schedule} | {runs} | {spread['torch']:.3f} / {spread['onnxruntime']:.3f} | "
              f"{'; '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--processes", type=int, default=20)
    rec.add_argument("--models", default="mobilenet_v3_small,squeezenet1_1,shufflenet_v2_x0_5")
    rec.add_argument("--sizes", default="64,96")
    rec.add_argument("--passes", type=int, default=10)
    rec.add_argument("--rounds", type=int, default=100, help="timed calls a case, per schedule")
    rec.add_argument("--spells", default="", help="ON,OFF seconds of busy neighbours")
    ev = commands.add_parser("evaluate")
    ev.add_argument("folder", type=Path)
    ev.add_argument("--reps", type=int, default=2000)
    ev.add_argument("--lengths", default="20,40")
    ev.add_argument("--step", type=float, default=1.10)
    args = parser.parse_args()
    if args.command == "record":
        if args.rounds < args.passes:
            parser.error("--rounds must be at least --passes (each visit times one call or more)")
        record(args.out, args.processes, args.models.split(","),
               [int(s) for s in args.sizes.split(",")], args.passes, args.rounds,
               parse_spells(args.spells))
    else:
        evaluate(args.folder, args.reps, [int(n) for n in args.lengths.split(",")], args.step)


if __name__ == "__main__":
    main()
