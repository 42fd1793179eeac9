"""Gate quality: false-alarm and detection rates of perfsuite's gate and of pytest-benchmark's
`--benchmark-compare-fail=median:5%`, on the same recorded runs.

    python benchmarks/gate_quality.py record --out runs/ --aa 20 --slow 8 [pytest options]
    python benchmarks/gate_quality.py evaluate runs/

`record` runs the latency benchmarks in fresh processes: `--aa` runs of identical code, then
`--slow` runs for each injected slowdown (5, 10, 15, 30%; see slowdown_plugin.py). `evaluate`
replays the gates offline:
- perfsuite: the baseline is `--recordings` (3) consecutive A/A recordings; every other A/A run is a candidate
  for a false alarm, every slowed run one for a detection; suspected regressions are confirmed
  with the run's recorded re-measurements, as the live gate does;
- pytest-benchmark: every ordered pair (one saved run, one current run), median +5% fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from perfsuite.gate import GatePolicy, judge_latency

REPO = Path(__file__).resolve().parents[1]


def plan_runs(aa: int, slow: int, ops: list[int]) -> list[tuple[str, int, int]]:
    """(label, extra passes, index), interleaved so slow drifts of the machine hit every label."""
    queues = [[("aa", 0, i) for i in range(aa)]]
    queues += [[(f"ops{k:02d}", k, i) for i in range(slow)] for k in ops]
    plan = []
    while any(queues):
        for queue in queues:
            if queue:
                plan.append(queue.pop(0))
    return plan


def run_once(target: Path, passes: int, size: int, extra: list[str]) -> None:
    """One fresh pytest process of the latency benchmarks, `passes` extra passes per forward."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'benchmarks'}:{os.environ.get('PYTHONPATH', '')}",
           "PERFSUITE_SLOW_SIZE": str(size), "PERFSUITE_SLOW_OPS": str(passes)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "slowdown_plugin", str(REPO / "tests/perf/test_latency.py"),
               f"--benchmark-json={target}", *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
    print(f"{target.name}: {status}", flush=True)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])


def decisive_median(info: dict) -> float:
    """GPU-compute median where CUDA events measured it, else the end-to-end median."""
    return (info.get("gpu_latency") or info["latency"])["median_ms"]


def calibrate(out: Path, probe: int, size: int, targets: list[float], backend: str,
              extra: list[str]) -> list[int]:
    """Passes per target slowdown, from one run without and one with `probe` extra passes,
    timed on `backend`'s first benchmark."""
    medians = []
    for passes in (0, probe):
        target = out / "calibration" / f"passes{passes:02d}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        run_once(target, passes, size, extra)
        infos = [b["extra_info"] for b in json.loads(target.read_text())["benchmarks"]]
        medians.append(decisive_median(next(i for i in infos if i["backend"] == backend)))
    per_pass = (medians[1] / medians[0] - 1) / probe
    ops = [max(1, round(t / per_pass)) for t in targets]
    print(f"calibration on {backend}: {medians[0]:.4f} -> {medians[1]:.4f} ms with {probe} "
          f"passes, {per_pass:.3%} a pass; passes for {targets}: {ops}", flush=True)
    return ops


def record(out: Path, aa: int, slow: int, ops: list[int], size: int, extra: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for label, passes, index in plan_runs(aa, slow, ops):
        run_once(out / f"{label}_{index:02d}.json", passes, size, extra)


def load(out: Path) -> dict[str, dict[str, list[dict]]]:
    """{case: {label: [benchmark extra_info, ...]}} in run order."""
    runs: dict[str, dict[str, list[dict]]] = {}
    for path in sorted(out.glob("*.json")):
        if path.stat().st_size == 0:  # a run cut off by a time limit
            continue
        label = path.stem.rsplit("_", 1)[0]
        for bench in json.loads(path.read_text())["benchmarks"]:
            info = bench["extra_info"]
            case = f"{info['backend']}-{info['precision']}-{info['device']}"
            runs.setdefault(case, {}).setdefault(label, []).append(info)
    return runs


def perfsuite_alarm(baseline: list[dict], run: dict, policy: GatePolicy, confirm: int) -> bool:
    """The live gate's decision: median and p90, confirmed by up to `confirm` re-measurements."""
    measurements = [run["latency"], *run.get("confirmations", [])][: 1 + confirm]
    for used in range(1, len(measurements) + 1):
        best = min(measurements[:used], key=lambda m: m["median_ms"])
        failed = any(
            judge_latency("x", best[trials], [b["latency"][stat] for b in baseline], limit,
                          policy).failed
            for trials, stat, limit in (("trial_medians_ms", "median_ms", policy.max_increase),
                                        ("trial_p90_ms", "p90_ms", policy.tail_max_increase))
        )
        if not failed:
            return False
    return True


def pytest_benchmark_alarm(saved: dict, current: dict) -> bool:
    return current["latency"]["median_ms"] > saved["latency"]["median_ms"] * 1.05


def rates(by_label: dict[str, list[dict]], policy: GatePolicy, recordings: int,
          confirm: int) -> dict[str, tuple[float, float, int]]:
    """label -> (perfsuite alarm rate, pytest-benchmark alarm rate, trials)."""
    aa = by_label.get("aa", [])
    windows = [aa[i:i + recordings] for i in range(len(aa) - recordings + 1)]
    result = {}
    for label, runs in sorted(by_label.items()):
        ours, theirs = [], []
        for start, window in enumerate(windows):
            used = set(range(start, start + recordings)) if label == "aa" else set()
            ours += [perfsuite_alarm(window, run, policy, confirm)
                     for i, run in enumerate(runs) if i not in used]
        theirs = [pytest_benchmark_alarm(saved, run)
                  for (i, saved), (j, run) in itertools.product(enumerate(aa), enumerate(runs))
                  if label != "aa" or i != j]
        result[label] = (sum(ours) / max(1, len(ours)), sum(theirs) / max(1, len(theirs)),
                         len(ours))
    return result


def evaluate(out: Path, recordings: int, confirm: int, noise_k: float) -> None:
    policy = GatePolicy(noise_k=noise_k)
    print(f"perfsuite gate: baseline of {recordings} recordings, {confirm} confirmation(s), "
          f"defaults {policy}")
    print("| case | runs | perfsuite gate | pytest-benchmark median:5% | comparisons (perfsuite) |")
    print("|---|---|---|---|---|")
    for case, by_label in load(out).items():
        for label, (ours, theirs, n) in rates(by_label, policy, recordings, confirm).items():
            kind = "false alarms (A/A)" if label == "aa" else f"detected +{label[4:]}%"
            count = len(by_label[label])
            print(f"| {case} | {label} x{count} | {kind}: {ours:.1%} | {theirs:.1%} | {n} |")
        medians = [r["latency"]["median_ms"] for r in by_label.get("aa", [])]
        if medians:
            print(f"| {case} | A/A medians ms | min {min(medians):.4f} max {max(medians):.4f} | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--aa", type=int, default=20)
    rec.add_argument("--slow", type=int, default=4, help="runs per slowdown")
    rec.add_argument("--ops", default="2,5,10,20",
                     help="extra elementwise passes inside the forward, one slowdown each")
    rec.add_argument("--size", type=int, default=0,
                     help="elements per extra pass (0: the model's output)")
    rec.add_argument("--calibrate", metavar="BACKEND",
                     help="choose --ops from a probe run of BACKEND to hit --targets")
    rec.add_argument("--targets", default="0.02,0.03,0.05,0.10,0.20")
    rec.add_argument("--probe", type=int, default=20, help="passes in the calibration run")
    ev = sub.add_parser("evaluate")
    ev.add_argument("out", type=Path)
    ev.add_argument("--recordings", type=int, default=3)
    ev.add_argument("--confirm", type=int, default=0, help="re-measurements used (0-2)")
    ev.add_argument("--noise-k", type=float, default=GatePolicy().noise_k)
    args, extra = parser.parse_known_args()
    if args.command == "record":
        ops = [int(k) for k in args.ops.split(",")]
        if args.calibrate:
            args.out.mkdir(parents=True, exist_ok=True)
            targets = [float(t) for t in args.targets.split(",")]
            ops = calibrate(args.out, args.probe, args.size, targets, args.calibrate, extra)
        record(args.out, args.aa, args.slow, sorted(set(ops)), args.size, extra)
    else:
        evaluate(args.out, args.recordings, args.confirm, args.noise_k)


if __name__ == "__main__":
    main()
