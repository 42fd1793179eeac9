"""How often `perfsuite bisect` names the right commit with real timing (docs/bisect.md).

    python benchmarks/bisect_quality.py --bisects 10 --commits 32 [--blocks 19 --extra 2] \
        [--seed 1] [--out results.json] [--device cuda --backend torch-cudagraph --size 64]

Each bisect builds a fresh git repository of `--commits` commits whose factory
(`models:build`) makes a small convolutional network of `--blocks` identical blocks; one
commit, drawn at random after the first, adds `--extra` blocks (a slowdown fixed by
construction: 2 of 20 convolutions is +10%, whatever the machine's speed), and every commit
changes a notes file. It then runs `perfsuite bisect FIRST LAST` with the real clock (on the
CPU unless `--device cuda`) and checks the commit it names. Prints one line a bisect (a step
marked * was settled by level or measured again: perfsuite.bisect.settle) and the share found.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from run_false_alarms import plugin_args  # noqa: E402

PYPROJECT = """
[tool.perfsuite]
backends = ["{backend}"]
precisions = ["fp32"]
device = "{device}"

[[tool.perfsuite.models]]
name = "convs"
factory = "models:build"
input_shape = [1, 3, {size}, {size}]
"""
MODELS = """
from torch import nn

BLOCKS = {blocks}


def build():
    blocks = []
    for _ in range(BLOCKS):
        blocks += [nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()]
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), *blocks,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
"""
ANSWER = re.compile(r"^perfsuite bisect: first slower commit: \S+ (c\d+)", re.MULTILINE)
STEP = re.compile(r"^step \d+: \w+ (c\d+): (\w+)[^\[\n]*(\[[^\]\n]*\])?", re.MULTILINE)


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=bq@perfsuite", "-c", "user.name=bq", *args],
                          cwd=folder, check=True, capture_output=True, text=True).stdout


def history(folder: Path, commits: int, slow: int, args: argparse.Namespace) -> None:
    """Commits c1..c<commits>; from c<slow> on the model has `args.extra` more blocks."""
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT.format(backend=args.backend,
                                                            device=args.device, size=args.size))
    git(folder, "init", "-q")
    for number in range(1, commits + 1):
        count = args.blocks + (args.extra if number >= slow else 0)
        (folder / "models.py").write_text(MODELS.format(blocks=count))
        (folder / "notes.txt").write_text(f"change {number}\n")
        git(folder, "add", "-A")
        git(folder, "commit", "-q", "-m", f"c{number}")


def bisect_once(work: Path, index: int, args: argparse.Namespace, slow: int) -> dict:
    folder = work / f"repo{index:02d}"
    history(folder, args.commits, slow, args)
    env = {**os.environ, "PERFSUITE_CACHE_DIR": str(work / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "perfsuite", "bisect", "--out", "bisect.md",
                           f"HEAD~{args.commits - 1}", "HEAD", "-p", "no:cacheprovider",
                           *plugin_args()],
                          cwd=folder, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    found = ANSWER.search(done.stdout)
    steps = STEP.findall(done.stdout)
    answer = found.group(1) if found else f"none (exit {done.returncode})"
    if not found:
        print(done.stdout[-2000:], done.stderr[-2000:])
    return {"slow": f"c{slow}", "answer": answer, "right": answer == f"c{slow}",
            "steps": len(steps), "seconds": round(seconds, 1),
            "verdicts": [f"{name} {verdict}{'*' if note else ''}" for name, verdict, note in steps],
            "notes": [note for _, _, note in steps if note]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bisects", type=int, default=10)
    parser.add_argument("--commits", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=19, help="blocks of every commit")
    parser.add_argument("--extra", type=int, default=2, help="blocks the slow commit adds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="every bisect's result as JSON")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--backend", default="torch", help="e.g. torch-cudagraph on a GPU")
    parser.add_argument("--size", type=int, default=16, help="input height and width")
    args = parser.parse_args()
    draw = random.Random(args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="bisect-quality-") as work:
        for index in range(args.bisects):
            slow = draw.randint(2, args.commits)
            result = bisect_once(Path(work), index, args, slow)
            results.append(result)
            print(f"bisect {index + 1}: slow {result['slow']}, named {result['answer']} "
                  f"({'right' if result['right'] else 'WRONG'}), {result['steps']} steps, "
                  f"{result['seconds']:.0f} s: {', '.join(result['verdicts'])}", flush=True)
    right = sum(r["right"] for r in results)
    print(f"named the slow commit in {right} of {len(results)} bisects of {args.commits} commits "
          f"(+{args.extra} of {args.blocks + 1} convolutions); mean "
          f"{sum(r['seconds'] for r in results) / max(1, len(results)):.0f} s a bisect")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
