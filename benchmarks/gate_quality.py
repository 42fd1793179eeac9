"""Gate quality: false-alarm and detection rates of perfsuite's gate and of pytest-benchmark's
`--benchmark-compare-fail=median:5%`, on the same recorded runs.

    python benchmarks/gate_quality.py record --out runs/ --aa 14 --slow 4 --ops 2,6,12 [pytest options]
    python benchmarks/gate_quality.py record --out runs/ --calibrate torch-cudagraph ...
    python benchmarks/gate_quality.py evaluate runs/ [more_runs/ ...]

`record` runs the latency benchmarks in fresh processes, interleaved: `--aa` runs of identical
code and `--slow` runs for each slowdown, made by extra passes of work inside the model's
forward (slowdown_plugin.py); `--calibrate BACKEND` first measures one pass's cost and picks the
passes for `--targets`. `evaluate` replays the gates offline:
- perfsuite: every choice of `--recordings` A/A runs is a baseline; every other A/A run is a
  candidate for a false alarm, every slowed run one for a detection; a comparison "flags" when
  any verdict fails (advisory verdicts of benchmarks too noisy to gate do not);
- pytest-benchmark: every ordered pair (one saved run, one current run), median +5% fails.
The slowdown each label made is measured from the runs (mean medians against the A/A runs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from perfsuite.config.gate_policy import GatePolicy
from perfsuite.gate.decide import GateVerdict, judge_latency, sample_cv
from perfsuite.gate.store import LatencyRecording
from perfsuite.measure.latency_stats import LatencyStats

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
    # The extra passes are not in the weights' hash that keys the ONNX cache: each slowdown
    # gets a cache of its own, or ONNX Runtime would run another slowdown's cached export.
    cache = os.environ.get("PERFSUITE_CACHE_DIR") or str(REPO / ".perfsuite-cache")
    env["PERFSUITE_CACHE_DIR"] = f"{cache}-passes{passes}"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "slowdown_plugin", str(REPO / "perfsuite/suite/test_latency.py"),
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


def load(folders: list[Path]) -> dict[str, dict[str, list[dict]]]:
    """{benchmark: {label: [extra_info, ...]}} in run order, folders one after another."""
    runs: dict[str, dict[str, list[dict]]] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            try:
                benchmarks = json.loads(path.read_text())["benchmarks"]
            except (ValueError, KeyError):  # a run cut off by a time limit
                print(f"skipped {path}: incomplete")
                continue
            label = path.stem.rsplit("_", 1)[0]
            for bench in benchmarks:
                info = bench["extra_info"]
                case = f"{info['backend']}-{info['precision']}-{info['device']}"
                runs.setdefault(case, {}).setdefault(label, []).append(info)
    return runs


def scaled(info: dict, factor: float) -> dict:
    """A run as it would read with every latency `factor` times longer: an exact slowdown on the
    same machine state (`evaluate --scale`), free of the extra passes' own variation."""
    out = dict(info)
    for key in ("latency", "gpu_latency", "enqueue_latency"):
        stats = info.get(key)
        if stats:
            out[key] = {k: ([v * factor for v in value] if isinstance(value, list) else
                            value * factor if k.endswith("_ms") else value)
                        for k, value in stats.items()}
    return out


def recording(info: dict) -> LatencyRecording:
    gpu, enqueue = info.get("gpu_latency"), info.get("enqueue_latency")
    return LatencyRecording(LatencyStats.from_dict(info["latency"]),
                            LatencyStats.from_dict(gpu) if gpu else None,
                            enqueue["median_ms"] if enqueue else None)


@dataclass
class Tally:
    """How perfsuite's gate decided over many baseline/candidate pairs."""

    comparisons: int = 0
    failed: int = 0
    advisory: int = 0
    resolutions: list[float] = field(default_factory=list)
    deciders: Counter = field(default_factory=Counter)

    def add(self, verdicts: list[GateVerdict]) -> None:
        self.comparisons += 1
        self.failed += any(v.failed for v in verdicts)
        decider = next(v for v in verdicts if v.decides)
        self.advisory += decider.status == "too noisy"
        self.resolutions.append(decider.resolution or 0.0)
        self.deciders["GPU" if decider.statistic == "gpu" else "e2e"] += 1

    def rate(self) -> str:
        return f"{self.failed / max(1, self.comparisons):.1%}"

    def gated_as(self) -> str:
        share = 1 - self.advisory / max(1, self.comparisons)
        return (f"{self.deciders.most_common(1)[0][0]}, resolves +"
                f"{statistics.median(self.resolutions):.1%}, gated {share:.0%}")


def replay(aa: list[LatencyRecording], runs: list[LatencyRecording], same: bool, recordings: int,
           device: str, policy: GatePolicy) -> Tally:
    """perfsuite's gate with every choice of `recordings` A/A runs as the baseline and every
    other run as the candidate."""
    tally = Tally()
    for chosen in itertools.combinations(range(len(aa)), recordings):
        baseline = [aa[i] for i in chosen]
        for j, run in enumerate(runs):
            if same and j in chosen:
                continue
            tally.add(judge_latency("b", run, baseline, device, policy))
    return tally


def pytest_benchmark_rate(aa: list[dict], runs: list[dict], same: bool) -> str:
    """--benchmark-compare-fail=median:5% over every ordered pair (saved run, current run)."""
    flags = [run["latency"]["median_ms"] > saved["latency"]["median_ms"] * 1.05
             for (i, saved), (j, run) in itertools.product(enumerate(aa), enumerate(runs))
             if not (same and i == j)]
    return f"{sum(flags) / max(1, len(flags)):.1%}"


def achieved(aa: list[dict], runs: list[dict]) -> str:
    """The slowdown the extra passes made, from the mean medians: GPU compute / end to end."""
    parts = []
    for key, name in (("gpu_latency", "GPU"), ("latency", "e2e")):
        if all(r.get(key) for r in aa + runs):
            before = statistics.fmean(r[key]["median_ms"] for r in aa)
            after = statistics.fmean(r[key]["median_ms"] for r in runs)
            parts.append(f"{after / before - 1:+.1%} {name}")
    return " / ".join(parts)


def evaluate(folders: list[Path], recordings: list[int], strict_limit: float,
             scales: list[float] = ()) -> None:
    policy, fine = GatePolicy(), GatePolicy(max_increase=strict_limit)
    print(f"perfsuite gate defaults: {policy}; 'limit {strict_limit:.0%}': max_increase = "
          f"{strict_limit:g}")
    print("| benchmark | runs | slowdown made | baseline recordings | perfsuite gate: flagged "
          f"(default) | flagged (limit {strict_limit:.0%}) | decided on | pytest-benchmark "
          "median:5% | comparisons |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case, by_label in load(folders).items():
        device = case.rsplit("-", 1)[1]
        aa_info = by_label.get("aa", [])
        aa = [recording(i) for i in aa_info]
        for factor in scales:  # every A/A run slowed exactly, judged against the other runs
            by_label[f"aa-x{factor:g}"] = [scaled(i, factor) for i in aa_info]
        for label, infos in sorted(by_label.items()):
            same = label == "aa" or label.startswith("aa-x")
            made = "none (A/A)" if label == "aa" else achieved(aa_info, infos)
            runs = [recording(i) for i in infos]
            theirs = pytest_benchmark_rate(aa_info, infos, same)
            for n in recordings:
                if len(aa) < n + same:
                    continue
                ours = replay(aa, runs, same, n, device, policy)
                finer = replay(aa, runs, same, n, device, fine)
                print(f"| {case} | {label} x{len(infos)} | {made} | {n} | {ours.rate()} | "
                      f"{finer.rate()} | {ours.gated_as()}; at {strict_limit:.0%}: "
                      f"{finer.gated_as().split(', ', 1)[1]} | {theirs} | {ours.comparisons} |")
        medians = [i["latency"]["median_ms"] for i in aa_info]
        gpu = [i["gpu_latency"]["median_ms"] for i in aa_info if i.get("gpu_latency")]
        spread = f"| {case} | A/A between-run CV | e2e {sample_cv(medians):.2%}"
        print(spread + (f", GPU {sample_cv(gpu):.2%}" if gpu else "") + " | | | | | | |")


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
    ev.add_argument("folders", type=Path, nargs="+")
    ev.add_argument("--recordings", default="1,3", help="baseline sizes to replay")
    ev.add_argument("--scale", default="", help="comma-separated factors: replay every A/A run "
                    "slowed exactly by each, against baselines of the other A/A runs")
    ev.add_argument("--strict-limit", type=float, default=0.01,
                    help="the second practical limit replayed")
    args, extra = parser.parse_known_args()
    if args.command == "record":
        ops = [int(k) for k in args.ops.split(",")]
        if args.calibrate:
            args.out.mkdir(parents=True, exist_ok=True)
            targets = [float(t) for t in args.targets.split(",")]
            ops = calibrate(args.out, args.probe, args.size, targets, args.calibrate, extra)
        record(args.out, args.aa, args.slow, sorted(set(ops)), args.size, extra)
    else:
        evaluate(args.folders, [int(n) for n in args.recordings.split(",")], args.strict_limit,
                 [float(f) for f in args.scale.split(",") if f])


if __name__ == "__main__":
    main()
