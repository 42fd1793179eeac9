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

SLOWDOWNS = (0.05, 0.10, 0.15, 0.30)
REPO = Path(__file__).resolve().parents[1]


def record(out: Path, aa: int, slow: int, extra: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plan = [("aa", 0.0, i) for i in range(aa)]
    plan += [(f"slow{int(f * 100)}", f, i) for f in SLOWDOWNS for i in range(slow)]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'benchmarks'}:{os.environ.get('PYTHONPATH', '')}"}
    for label, factor, index in plan:
        target = out / f"{label}_{index:02d}.json"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-p", "slowdown_plugin", str(REPO / "tests/perf/test_latency.py"),
                   f"--benchmark-json={target}", *extra]
        done = subprocess.run(command, env={**env, "PERFSUITE_SLOWDOWN": str(factor)},
                              capture_output=True, text=True, cwd=REPO)
        status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
        print(f"{target.name}: {status}", flush=True)
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:])


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
    rec.add_argument("--slow", type=int, default=8)
    ev = sub.add_parser("evaluate")
    ev.add_argument("out", type=Path)
    ev.add_argument("--recordings", type=int, default=3)
    ev.add_argument("--confirm", type=int, default=0, help="re-measurements used (0-2)")
    ev.add_argument("--noise-k", type=float, default=GatePolicy().noise_k)
    args, extra = parser.parse_known_args()
    if args.command == "record":
        record(args.out, args.aa, args.slow, extra)
    else:
        evaluate(args.out, args.recordings, args.confirm, args.noise_k)


if __name__ == "__main__":
    main()
