"""How well `--perf-ab` separates real slowdowns from noise (docs/gate.md, "A/B").

    python benchmarks/ab_quality.py record --out runs/ --aa 10 --slow 2 --ops 6,24 --size 40000 \\
        --pairs 1500 [pytest options]
    python benchmarks/ab_quality.py evaluate runs/ [--chunk 150]

`record` makes a git repository whose factory builds mobilenet_v3_small and runs its latency
tests with `--perf-ab=HEAD` in fresh pytest processes: A/A (the tree unchanged), and with the
working tree's helper module asking for `--ops` extra passes inside the forward
(benchmarks/slowdown_plugin.py's `slowed`), an uncommitted change that only this tree's side
has, as a regression in a pull request would be. Each process measures `--pairs`
ABBA pairs per benchmark and keeps them in its pytest-benchmark JSON. `evaluate` cuts each run's
pairs into consecutive comparisons of `--chunk` pairs (the default A/B run's 150) and judges
each exactly as the gate does (perfsuite.paired.judge_pairs): the share flagged among A/A
comparisons is the false-alarm rate; among slowed ones, the detection rate at the slowdown
achieved (the run's overall ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from perfsuite.gate import GatePolicy  # noqa: E402
from perfsuite.paired import PairedTrials, decide, judge_pairs  # noqa: E402


FACTORY = """
import torchvision

from abq_slow import SLOW_OPS, SLOW_SIZE
from slowdown import slowed


def build():
    model = torchvision.models.mobilenet_v3_small(weights=None)
    return slowed(model, SLOW_OPS, SLOW_SIZE) if SLOW_OPS else model
"""


def make_repo(folder: Path, args: argparse.Namespace) -> Path:
    """A git repository whose factory builds mobilenet_v3_small and takes its slowdown from a
    helper module of another name (abq_slow.py, committed with none)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        "[tool.perfsuite]\n[[tool.perfsuite.models]]\nname = \"mobilenet_v3_small\"\n"
        "factory = \"abq_model:build\"\ninput_shape = [1, 3, 224, 224]\n"
        f"[tool.perfsuite.ab]\npairs = {args.pairs}\n"
        f"rounds_per_trial = {args.rounds_per_trial}\n")
    (folder / "abq_model.py").write_text(FACTORY)
    (folder / "abq_slow.py").write_text(f"SLOW_OPS = 0\nSLOW_SIZE = {args.size}\n")
    shutil.copy(REPO / "benchmarks/slowdown_plugin.py", folder / "slowdown.py")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "abq"]):
        subprocess.run(["git", "-c", "user.email=abq@perfsuite", "-c", "user.name=abq", *command],
                       cwd=folder, check=True, capture_output=True)
    return folder


def record(args: argparse.Namespace, pytest_args: list[str]) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    repo = make_repo(Path(tempfile.mkdtemp(prefix="abq-")) / "repo", args)
    levels = [int(ops) for ops in args.ops.split(",")]
    runs = [("aa", 0)] * args.aa + [(f"slow{ops}", ops) for ops in levels] * args.slow
    order = sorted(range(len(runs)), key=lambda i: (i % max(args.aa // 2, 1), i))  # interleave
    for count, index in enumerate(order):
        kind, ops = runs[index]
        target = out / f"{kind}-{index:03d}.json"
        # the slowdown is an uncommitted change to the helper: only this tree's side has it
        (repo / "abq_slow.py").write_text(f"SLOW_OPS = {ops}\nSLOW_SIZE = {args.size}\n")
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                   "--perf-suite=only", "-k", "test_latency", "--perf-ab=HEAD",
                   f"--benchmark-json={target.resolve()}", *pytest_args]
        env = {key: value for key, value in os.environ.items() if key != "PERFSUITE_CONFIG"}
        done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        tail = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
        print(f"[{count + 1}/{len(runs)}] {kind} ops={ops}: exit {done.returncode}, {tail[0]}",
              flush=True)
        if done.returncode not in (0, 1):
            print(done.stdout[-2000:] + done.stderr[-2000:], flush=True)


def evaluate(args: argparse.Namespace) -> None:
    policy = GatePolicy()
    rows: dict[tuple[str, str], list[tuple[bool, float]]] = defaultdict(list)
    achieved: dict[tuple[str, str], list[float]] = defaultdict(list)
    deciders: dict[tuple[str, str], int] = defaultdict(int)
    for path in sorted(Path(args.folder).glob("*.json")):
        kind = path.name.split("-")[0]
        try:
            benchmarks = json.loads(path.read_text())["benchmarks"]
        except (ValueError, KeyError):
            print(f"skipped {path.name}: not a finished pytest-benchmark JSON (a cut-off run)")
            continue
        for bench in benchmarks:
            info = bench["extra_info"]
            paired = info.get("paired")
            if not paired:
                continue
            paired = paired if isinstance(paired, list) else [paired]
            name = f"{info['backend']} {info['precision']}"
            sides = [(p["statistic"], np.asarray(p["base_trial_medians_ms"]),
                      np.asarray(p["current_trial_medians_ms"])) for p in paired]
            _, base, current = sides[-1]
            achieved[(name, kind)].append(float(np.exp(np.median(np.log(current / base)))))
            for start in range(0, len(base) - args.chunk + 1, args.chunk):
                cut = slice(start, start + args.chunk)
                verdicts = decide([judge_pairs(name, "HEAD", PairedTrials(stat, tuple(b[cut]),
                                                                          tuple(c[cut])),
                                               policy.ab_min_increase) for stat, b, c in sides])
                decider = next(v for v in verdicts if v.decides)
                rows[(name, kind)].append((decider.failed, decider.resolution))
                deciders[(name, decider.statistic)] += 1
    print(f"comparisons of {args.chunk} ABBA pairs; flagged = median ratio's lower 99% bound above "
          f"+{policy.ab_min_increase:.0%}")
    print("| benchmark | runs | A/A flagged | slowed run | achieved | slowed flagged | resolves (median) |")
    print("|---|---|---|---|---|---|---|")
    for name in sorted({name for name, _ in rows}):
        aa = rows.get((name, "aa"), [])
        resolves = np.median([r for _, r in aa]) if aa else float("nan")
        slowed = sorted(kind for other, kind in rows if other == name and kind != "aa")
        for kind in slowed or [""]:
            slow = rows.get((name, kind), [])
            runs = len(achieved.get((name, "aa"), [])) + len(achieved.get((name, kind), []))
            slowdown = np.mean(achieved[(name, kind)]) - 1 if slow else float("nan")
            print(f"| {name} | {runs} | {sum(f for f, _ in aa)} of {len(aa)} "
                  f"({100 * np.mean([f for f, _ in aa]) if aa else 0:.1f}%) "
                  f"| {kind or '-'} | {100 * slowdown:+.1f}% | {sum(f for f, _ in slow)} of {len(slow)} "
                  f"({100 * np.mean([f for f, _ in slow]) if slow else 0:.1f}%) "
                  f"| +{100 * resolves:.1f}% |")
    print("deciding statistic (comparisons):",
          ", ".join(f"{name} {stat}: {count}" for (name, stat), count in sorted(deciders.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--out", required=True)
    rec.add_argument("--aa", type=int, default=8, help="A/A processes")
    rec.add_argument("--slow", type=int, default=2,
                     help="processes per slowdown with the current side slowed")
    rec.add_argument("--ops", default="12", help="extra passes inside the forward, e.g. 6,24")
    rec.add_argument("--size", type=int, default=40000, help="elements per pass (0: the output)")
    rec.add_argument("--pairs", type=int, default=1500)
    rec.add_argument("--rounds-per-trial", type=int, default=1)
    ev = sub.add_parser("evaluate")
    ev.add_argument("folder")
    ev.add_argument("--chunk", type=int, default=150)
    args, rest = parser.parse_known_args()
    if args.command == "record":
        record(args, rest)
    else:
        evaluate(args)


if __name__ == "__main__":
    main()
