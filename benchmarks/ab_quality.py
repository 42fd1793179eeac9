"""How well `--perf-ab` separates real slowdowns from noise (docs/gate.md, "A/B").

    python benchmarks/ab_quality.py record --out runs/ --aa 10 --slow 2 --ops 6,24 --size 40000 \\
        --pairs 1500 [pytest options]
    python benchmarks/ab_quality.py evaluate runs/ [--chunk 150]

With `--calibrate 3.2 --calibrate-on e2e`, `record` first measures the first `--ops` level in a
short process (`--calibrate-pairs`) and scales it so that the slowdown of that statistic comes
near +3.2% (how much a pass costs differs by machine).

`record` makes a git repository whose factory builds mobilenet_v3_small and runs its latency
tests with `--perf-ab=HEAD` in fresh pytest processes: A/A (the tree unchanged), and with the
working tree's helper module asking for `--ops` extra passes inside the forward
(benchmarks/slowdown_plugin.py's `slowed`), an uncommitted change that only this tree's side
has, as a regression in a pull request would be. Each process measures `--pairs`
ABBA pairs per benchmark and keeps them in its pytest-benchmark JSON. `evaluate` cuts each run's
pairs into consecutive comparisons of `--chunk` pairs (the default A/B run's 150) and judges
each exactly as the gate does (perfsuite.measure.paired.judge_pairs): the share flagged among A/A
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

from perfsuite.config.gate_policy import GatePolicy  # noqa: E402
from perfsuite.config.parts import AbConfig  # noqa: E402
from perfsuite.gate.ab_gate import sequential_rule  # noqa: E402
from perfsuite.measure.paired import (  # noqa: E402
    PairedTrials,
    clear_answer,
    headline,
    judge_pairs,
)

FACTORY = """
import torchvision

from abq_slow import SLOW_OPS, SLOW_SIZE
from slowdown import slowed


def build():
    model = torchvision.models.mobilenet_v3_small(weights=None)
    return slowed(model, SLOW_OPS, SLOW_SIZE) if SLOW_OPS else model
"""


def make_repo(folder: Path, args: argparse.Namespace, pairs: int) -> Path:
    """A git repository whose factory builds mobilenet_v3_small and takes its slowdown from a
    helper module of another name (abq_slow.py, committed with none)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        "[tool.perfsuite]\n[[tool.perfsuite.models]]\nname = \"mobilenet_v3_small\"\n"
        "factory = \"abq_model:build\"\ninput_shape = [1, 3, 224, 224]\n"
        f"[tool.perfsuite.ab]\npairs = {pairs}\n"
        f"min_pairs = {pairs}\nmax_seconds = 3600.0\n"  # every pair kept: no early stop
        f"rounds_per_trial = {args.rounds_per_trial}\n"
        f"gpu_rounds_per_trial = {args.gpu_rounds_per_trial}\n")
    (folder / "abq_model.py").write_text(FACTORY)
    (folder / "abq_slow.py").write_text(f"SLOW_OPS = 0\nSLOW_SIZE = {args.size}\n")
    shutil.copy(REPO / "benchmarks/slowdown_plugin.py", folder / "slowdown.py")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "abq"]):
        subprocess.run(["git", "-c", "user.email=abq@perfsuite", "-c", "user.name=abq", *command],
                       cwd=folder, check=True, capture_output=True)
    return folder


def run_process(repo: Path, target: Path, ops: int, size: int,
                pytest_args: list[str]) -> subprocess.CompletedProcess[str]:
    """One fresh pytest process of `--perf-ab=HEAD` with `ops` extra passes in this tree."""
    # the slowdown is an uncommitted change to the helper: only this tree's side has it
    (repo / "abq_slow.py").write_text(f"SLOW_OPS = {ops}\nSLOW_SIZE = {size}\n")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
               "--perf-suite=only", "-k", "test_latency", "--perf-ab=HEAD",
               f"--benchmark-json={target.resolve()}", *pytest_args]
    env = {key: value for key, value in os.environ.items() if key != "PERFSUITE_CONFIG"}
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)


def ratios(path: Path) -> dict[tuple[str, str], float]:
    """(benchmark, statistic) -> the run's overall median ratio this tree / HEAD."""
    found = {}
    for bench in json.loads(path.read_text())["benchmarks"]:
        info = bench["extra_info"]
        paired = info.get("paired") or []
        for one in paired if isinstance(paired, list) else [paired]:
            base = np.asarray(one["base_trial_medians_ms"])
            current = np.asarray(one["current_trial_medians_ms"])
            found[(f"{info['backend']} {info['precision']}", one["statistic"])] = \
                float(np.exp(np.median(np.log(current / base))))
    return found


def calibrated(args: argparse.Namespace, ops: int, pytest_args: list[str], out: Path) -> int:
    """`ops` scaled so that `--calibrate-on`'s slowdown comes near `--calibrate` percent."""
    repo = make_repo(Path(tempfile.mkdtemp(prefix="abq-cal-")) / "repo", args,
                     args.calibrate_pairs)
    target = out / "calibration" / f"slow{ops}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    done = run_process(repo, target, ops, args.size, pytest_args)
    found = [r for (_, stat), r in ratios(target).items() if stat == args.calibrate_on] \
        if target.is_file() else []
    if done.returncode not in (0, 1) or not found:
        sys.exit(f"calibration failed (exit {done.returncode}):\n{done.stdout[-2000:]}"
                 f"{done.stderr[-2000:]}")
    slowdown = float(np.mean(found)) - 1
    scaled = max(1, round(ops * args.calibrate / 100 / slowdown)) if slowdown > 0 else ops * 4
    print(f"calibration: {ops} passes made {args.calibrate_on} {slowdown:+.2%}; "
          f"using {scaled} for +{args.calibrate:g}%", flush=True)
    return scaled


def record(args: argparse.Namespace, pytest_args: list[str]) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    levels = [int(ops) for ops in args.ops.split(",")]
    if args.calibrate:
        levels = [calibrated(args, levels[0], pytest_args, out)]
    repo = make_repo(Path(tempfile.mkdtemp(prefix="abq-")) / "repo", args, args.pairs)
    runs = [("aa", 0)] * args.aa + [(f"slow{ops}", ops) for ops in levels] * args.slow
    order = sorted(range(len(runs)), key=lambda i: (i % max(args.aa // 2, 1), i))  # interleave
    if args.slow_first:  # a run cut off by a time limit then loses A/A processes only
        order.sort(key=lambda i: runs[i][0] == "aa")
    for count, index in enumerate(order):
        kind, ops = runs[index]
        done = run_process(repo, out / f"{kind}-{index:03d}.json", ops, args.size, pytest_args)
        tail = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
        print(f"[{count + 1}/{len(runs)}] {kind} ops={ops}: exit {done.returncode}, {tail[0]}",
              flush=True)
        if done.returncode not in (0, 1):
            print(done.stdout[-2000:] + done.stderr[-2000:], flush=True)


def evaluate(args: argparse.Namespace) -> None:
    policy = GatePolicy()
    limits = {"gpu": policy.ab_min_increase if args.min_increase is None else args.min_increase,
              "e2e": policy.ab_e2e_min_increase if args.e2e_min_increase is None
              else args.e2e_min_increase}
    args.limits = limits
    rows: dict[tuple[str, str], list[tuple[bool, float]]] = defaultdict(list)
    achieved: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    deciders: dict[tuple[str, str], int] = defaultdict(int)
    used: dict[tuple[str, str], list[int]] = defaultdict(list)  # pairs taken per comparison
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
                      np.asarray(p["current_trial_medians_ms"]),
                      p.get("calls_per_trial", args.gpu_calls if p["statistic"] == "gpu" else 1))
                     for p in paired]
            final = policy.ab_confidence(args.benchmarks if args.sequential else 1, len(sides))
            for stat, base, current, _ in sides:
                achieved[(name, kind, stat)].append(
                    float(np.exp(np.median(np.log(current / base)))))
            for start in range(0, len(sides[0][1]) - args.chunk + 1, args.chunk):
                cut = slice(start, start + args.chunk)
                verdicts = [judge_pairs(name, "HEAD",
                                        PairedTrials(stat, *_taken(b[cut], c[cut], stat, calls,
                                                                   len(sides), args)),
                                        limits[stat], final) for stat, b, c, calls in sides]
                used[(name, kind)].append(sum(v.pairs for v in verdicts))
                shown = headline(verdicts)
                rows[(name, kind)].append((any(v.failed for v in verdicts), shown.resolution))
                deciders[(name, shown.statistic)] += 1
    print(f"comparisons of {args.chunk} ABBA pairs; flagged = a statistic's median ratio's lower "
          f"bound ({final:.4%}, the benchmark's confidence shared among its statistics) above "
          f"+{limits['gpu']:.1%} (GPU compute) or +{limits['e2e']:.1%} (end to end)")
    print("| benchmark | runs | A/A flagged | slowed run | achieved | slowed flagged "
          "| resolves (median) | pairs used (mean, statistics together) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted({name for name, _ in rows}):
        aa = rows.get((name, "aa"), [])
        resolves = np.median([r for _, r in aa]) if aa else float("nan")
        slowed = sorted(kind for other, kind in rows if other == name and kind != "aa")
        stats = sorted({stat for other, _, stat in achieved if other == name})
        for kind in slowed or [""]:
            slow = rows.get((name, kind), [])
            runs = len(achieved.get((name, "aa", stats[0]), [])) + \
                len(achieved.get((name, kind, stats[0]), []))
            made = ", ".join(f"{stat} {100 * (np.mean(achieved[(name, kind, stat)]) - 1):+.1f}%"
                             for stat in stats if (name, kind, stat) in achieved) or "-"
            taken = used.get((name, kind), []) + used.get((name, "aa"), [])
            print(f"| {name} | {runs} | {_share(aa)} | {kind or '-'} | {made} "
                  f"| {_share(slow)} | +{100 * resolves:.1f}% | "
                  f"A/A {np.mean(used.get((name, 'aa'), [0])):.0f}, slowed "
                  f"{np.mean(used.get((name, kind), [0])):.0f} of {args.chunk * len(stats)} "
                  f"({len(taken)} comparisons) |")
        for stat in stats:
            each = achieved.get((name, "aa", stat), [])
            print(f"  {name} A/A processes' overall ratios ({stat}): "
                  + " ".join(f"x{r:.3f}" for r in each)
                  + (f"; sd {100 * np.std(each, ddof=1):.2f}%" if len(each) > 1 else ""))
    print("statistic shown (failed, else the finest; comparisons):",
          ", ".join(f"{name} {stat}: {count}" for (name, stat), count in sorted(deciders.items())))


def _taken(base: np.ndarray, current: np.ndarray, statistic: str, calls: int, statistics: int,
           args: argparse.Namespace) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The pairs a comparison takes: all of them, or with --sequential up to where the gate's
    stopping rule (in a run of --benchmarks latency benchmarks) finds the answer clear or, with
    --max-seconds, its time bound is spent (`calls` calls a trial)."""
    if not args.sequential:
        return tuple(base), tuple(current)
    ab = AbConfig(pairs=len(base), min_pairs=min(AbConfig().min_pairs, len(base)))
    rule = sequential_rule(GatePolicy(ab_min_increase=args.limits["gpu"],
                                      ab_e2e_min_increase=args.limits["e2e"]),
                           ab, statistic, args.benchmarks, statistics)
    spent = np.cumsum(calls * (base + current)) / 1e3  # seconds of pairs, as the gate's clock
    for taken in range(rule.min_pairs, len(base), rule.block):
        if clear_answer(base[:taken], current[:taken], rule) or spent[taken - 1] > args.max_seconds:
            return tuple(base[:taken]), tuple(current[:taken])
    return tuple(base), tuple(current)


def _share(rows: list[tuple[bool, float]]) -> str:
    flagged = sum(row[0] for row in rows)
    return f"{flagged} of {len(rows)} ({100 * flagged / len(rows) if rows else 0:.1f}%)"


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
    rec.add_argument("--gpu-rounds-per-trial", type=int, default=AbConfig().gpu_rounds_per_trial,
                     help="calls a GPU-compute trial (the gate picks fewer for slow calls)")
    rec.add_argument("--slow-first", action="store_true", help="the slowed processes first")
    rec.add_argument("--calibrate", type=float, default=0.0,
                     help="scale the first --ops level to this slowdown in percent")
    rec.add_argument("--calibrate-on", choices=("e2e", "gpu"), default="e2e")
    rec.add_argument("--calibrate-pairs", type=int, default=300)
    ev = sub.add_parser("evaluate")
    ev.add_argument("folder")
    ev.add_argument("--chunk", type=int, default=150)
    ev.add_argument("--sequential", action="store_true",
                    help="stop each comparison where the gate's stopping rule would")
    ev.add_argument("--benchmarks", type=int, default=1,
                    help="with --sequential: the run's latency benchmarks (its budget's share)")
    ev.add_argument("--max-seconds", type=float, default=float("inf"),
                    help="with --sequential: the time bound of a statistic's pairs (the gate's "
                         "max_seconds: 6 on CUDA, 2 on a CPU; default: not replayed)")
    ev.add_argument("--gpu-calls", type=int, default=5,
                    help="with --max-seconds: calls a GPU-compute trial where the recording "
                         "does not say (recorded before it did)")
    ev.add_argument("--min-increase", type=float, default=None,
                    help="ab_min_increase (GPU compute) to judge at (default: the gate's)")
    ev.add_argument("--e2e-min-increase", type=float, default=None,
                    help="ab_e2e_min_increase (end to end) to judge at (default: the gate's)")
    args, rest = parser.parse_known_args()
    if args.command == "record":
        record(args, rest)
    else:
        evaluate(args)


if __name__ == "__main__":
    main()
