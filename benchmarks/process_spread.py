"""How far apart fresh processes of the same code time one model, outside perfsuite (docs/gate.md,
"A/B whole runs of the zoo"): the spread between processes that A/B pairs cannot see.

    python benchmarks/process_spread.py [--processes 5] [--model resnet18] [--size 224] \
        [--device cuda] [--calls 100] [--trials 7]

Each process builds the torchvision model (seeded random weights) and prints the median over
`--trials` trials of the per-call median time: on CUDA a CUDA graph of the fp16 model timed
with CUDA events around each replay (GPU compute), and the eager fp32 model the same way; on a
CPU the eager fp32 model with perf_counter. Prints each process's medians and their spread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent  # child_timing.py, for the children

CHILD = r"""
import json, statistics, sys
sys.path.insert(0, sys.argv[6])
import torch, torchvision
from child_timing import capture, trial_median
model_name, device = sys.argv[1], sys.argv[3]
size, calls, trials = int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)
out = {}
kinds = ("graph fp16", "eager fp32") if device == "cuda" else ("eager fp32",)
for kind in kinds:
    model = getattr(torchvision.models, model_name)().eval().to(device)
    x = torch.randn(1, 3, size, size, device=device)
    if kind == "graph fp16":
        model, x = model.half(), x.half()
    with torch.inference_mode():
        for _ in range(30):
            model(x)
        call = capture(model, x) if kind == "graph fp16" else (lambda: model(x))
        for _ in range(calls // 2):
            call()
        medians = [trial_median(call, calls, device == "cuda") for _ in range(trials)]
    out[kind] = statistics.median(medians)
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--calls", type=int, default=100, help="timed calls a trial")
    parser.add_argument("--trials", type=int, default=7)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {}
    for index in range(args.processes):
        done = subprocess.run([sys.executable, "-c", CHILD, args.model, str(args.size), args.device,
                               str(args.calls), str(args.trials), str(HERE)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"process {index + 1} failed:\n{done.stderr[-2000:]}")
        for kind, ms in json.loads(done.stdout.strip().splitlines()[-1]).items():
            runs.setdefault(kind, []).append(ms)
    for kind, values in runs.items():
        spread = max(values) / min(values) - 1
        print(f"{args.model} {kind} on {args.device}, {args.processes} fresh processes: "
              f"{' '.join(f'{v:.4f}' for v in values)} ms; spread {spread:.1%}")


if __name__ == "__main__":
    main()
