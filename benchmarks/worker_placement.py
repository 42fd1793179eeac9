"""Where two A/B workers' GPU speeds part (docs/gate.md, "A/B whole runs of the zoo"): inside one
process when its buffers move, between two processes alive at once, or by the CPU core.

    python benchmarks/worker_placement.py [--model resnet18] [--size 224] [--device cuda] \
        [--places 8] [--pairs 16] [--process-pairs 3] [--calls 100]

Three measurements, each printed with its spread:
1. places: one process builds the fp16 model and captures a CUDA graph `--places` times, each
   time after holding a padding buffer of a random size, so that weights, activations and the
   graph's pool land elsewhere (every build stays alive); each place is timed (median of 5
   trials of `--calls` replays, GPU compute by CUDA events), and the first again at the end.
2. pairs: two worker processes alive at once, driven one trial at a time in ABBA order as
   perfsuite's A/B does, `--pairs` pairs; then each rebuilds at a new place and `--pairs` more.
   The ratio B/A of each half, for `--process-pairs` fresh pairs of processes.
3. cores (eager): the eager fp16 model's GPU compute in one process pinned to each of a few
   cores in turn (a launch-bound model's GPU compute follows its host).
On a CPU (`--device cpu`, the smoke run) the same steps time the eager fp32 model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent  # child_timing.py, for the children

CHILD = r"""
import copy, random, sys
sys.path.insert(0, sys.argv[5])
import torch, torchvision
from child_timing import capture, trial_median
model_name, size, device, calls = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
cuda = device == "cuda"
torch.manual_seed(0)
base = getattr(torchvision.models, model_name)().eval()
held = []

def build(seed, graph=True):
    rng = random.Random(seed)
    if cuda and seed:
        held.append(torch.empty(rng.randrange(1, 4096) * 2**20, dtype=torch.uint8, device=device))
    model = copy.deepcopy(base).to(device)
    x = torch.randn(1, 3, size, size, device=device)
    if cuda:
        model, x = model.half(), x.half()
    with torch.inference_mode():
        for _ in range(20):
            model(x)
        return capture(model, x) if cuda and graph else (lambda: model(x))

built = []  # every build stays alive, so that each later one lands elsewhere
for line in sys.stdin:
    word, *rest = line.split()
    if word == "build":
        built.append(build(int(rest[0]), graph=rest[1] == "graph"))
        with torch.inference_mode():
            for _ in range(calls):
                built[-1]()
        print("ok", flush=True)
    elif word == "trial":
        with torch.inference_mode():
            print(trial_median(built[int(rest[0]) if rest else -1], calls, cuda), flush=True)
    elif word == "pin":
        import os; os.sched_setaffinity(0, {int(rest[0])}); print("ok", flush=True)
    else:
        break
"""


class Child:
    """One worker-like process that builds and times on request."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, args.model, str(args.size), args.device, str(args.calls),
             str(HERE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, request: str) -> str:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer:
            sys.exit(f"the child stopped at {request!r}")
        return answer

    def median(self, trials: int, which: str = "") -> float:
        return statistics.median(float(self.ask(f"trial {which}")) for _ in range(trials))

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=60)


def spread(values: list[float]) -> str:
    return f"{' '.join(f'{v:.4f}' for v in values)}; spread {max(values) / min(values) - 1:.1%}"


def places(args: argparse.Namespace, kind: str) -> None:
    child = Child(args)
    medians = []
    for place in range(args.places):
        child.ask(f"build {place} {kind}")
        medians.append(child.median(5))
    again = child.median(5, "0")
    child.close()
    print(f"places ({kind}): one process, {args.places} places: {spread(medians)} ms; "
          f"the first place again at the end: {again:.4f} ms")


def pairs(args: argparse.Namespace, kind: str) -> None:
    for index in range(args.process_pairs):
        sides = (Child(args), Child(args))
        halves = []
        for half in range(2):
            for number, side in enumerate(sides):
                side.ask(f"build {1000 * index + 10 * half + number + 1 if half else 0} {kind}")
            ratios = []
            for pair in range(args.pairs):
                order = sides if pair % 2 == 0 else sides[::-1]
                times = {id(side): float(side.ask("trial")) for side in order}
                ratios.append(times[id(sides[1])] / times[id(sides[0])])
            halves.append(statistics.median(ratios))
        for side in sides:
            side.close()
        print(f"pairs ({kind}): process pair {index + 1}: B/A x{halves[0]:.4f} at the first places, "
              f"x{halves[1]:.4f} after both rebuilt elsewhere")


def cores(args: argparse.Namespace) -> None:
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    chosen = sorted({available[0], available[len(available) // 2], available[-1]}) if available else []
    child = Child(args)
    child.ask("build 0 eager")
    found = []
    for _ in range(2):
        for core in chosen:
            child.ask(f"pin {core}")
            found.append(f"core {core} {child.median(5):.4f}")
    child.close()
    print(f"cores (eager): one process pinned in turn, twice round: {', '.join(found)} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--places", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=16, help="ABBA pairs a half")
    parser.add_argument("--process-pairs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=100, help="timed calls a trial")
    parser.add_argument("--parts", default="places,pairs,cores")
    args = parser.parse_args()
    kind = "graph" if args.device == "cuda" else "eager"
    parts = args.parts.split(",")
    if "places" in parts:
        places(args, kind)
    if "pairs" in parts:
        pairs(args, kind)
        if args.device == "cuda":
            pairs(args, "eager")
    if "cores" in parts:
        cores(args)


if __name__ == "__main__":
    main()
