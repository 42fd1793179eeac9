"""Whole-run false alarms and detection on a zoo of benchmarks (several models and sizes, every
backend and precision asked for): the run's decision, not one benchmark's.

    python benchmarks/run_false_alarms.py record --out zoo/ --runs 8 [--models a,b] [--ab] \
        [--cpu-threads N] [--passes N] [--spells ON,OFF] [--first-index N] [pytest options]
    python benchmarks/run_false_alarms.py evaluate zoo/ [--slowdown 1.07] [--recordings 1,3] \
        [--max-increase 0.01]

`record` writes a project whose [tool.perfsuite] table holds the zoo (torchvision models at
`--size`) and runs the shipped latency suite in `--runs` fresh pytest processes, one
pytest-benchmark JSON each. `evaluate` replays the baseline gate offline: every choice of
`--recordings` runs as the baseline and every other run as the candidate; a candidate run is
flagged when any benchmark's verdict fails. It compares the per-check bar (`run_false_alarms =
0`, the gate before this change) with the run's budget (the default 1%: each check's bar set
from the zoo's benchmark count), and replays each A/A candidate slowed exactly by
`--slowdown` (every latency of the run) for the detection rate of the gated benchmarks.
`--passes` writes `passes` into the zoo's timing table (its rounds spread over the run);
`--spells ON,OFF` runs busy neighbours beside each run (benchmarks/interleaving.py);
`--first-index` numbers the files from there, so that recordings can take turns.
With `record --ab` each run is an A/B run of the unchanged zoo against its own HEAD, and
`evaluate` counts the runs in which any A/B check failed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gate_quality import recording, scaled
from interleaving import busy_neighbours, parse_spells

from perfsuite.config.gate_policy import GatePolicy
from perfsuite.gate.decide import judge_latency

REPO = Path(__file__).resolve().parents[1]
ZOO = """[tool.perfsuite]
backends = {backends}
precisions = {precisions}
device = "{device}"
cpu_threads = {cpu_threads}

[tool.perfsuite.timing]
energy_trial_seconds = 0.0
passes = {passes}
"""
MODEL = """
[[tool.perfsuite.models]]
name = "{name}_{size}"
torchvision = "{name}"
input_shape = [1, 3, {size}, {size}]
"""


def record(out: Path, runs: int, models: list[str], sizes: list[int], backends: list[str],
           precisions: list[str], device: str, ab: bool, extra: list[str],
           cpu_threads: int = 0, passes: int = 1, spells: tuple[float, float] | None = None,
           first_index: int = 0) -> None:
    """`runs` fresh pytest processes of the zoo's latency suite; with `ab`, each an A/B run of
    the unchanged project against its own HEAD (A/A), its output kept beside the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    project = Path(tempfile.mkdtemp(prefix="zoo-"))
    text = ZOO.format(backends=json.dumps(backends), precisions=json.dumps(precisions),
                      device=device, cpu_threads=cpu_threads, passes=passes)
    text += "".join(MODEL.format(name=m, size=s) for m in models for s in sizes)
    (project / "pyproject.toml").write_text(text)
    if ab:
        for step in (["init", "-q"], ["add", "pyproject.toml"], ["commit", "-qm", "zoo"]):
            subprocess.run(["git", "-c", "user.email=zoo@perfsuite", "-c", "user.name=zoo",
                            *step], cwd=project, check=True)
    for index in range(first_index, first_index + runs):
        target = out / f"{'ab' if ab else 'aa'}_{index:02d}.json"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   *plugin_args(), "--perf-suite=only", "-k", "test_latency",
                   f"--benchmark-json={target}", "--perf-preflight=warn",
                   *(["--perf-ab=HEAD"] if ab else []), *extra]
        with busy_neighbours(spells, index):
            done = subprocess.run(command, cwd=project, capture_output=True, text=True)
        if ab:
            target.with_suffix(".txt").write_text(f"exit {done.returncode}\n{done.stdout}")
        print(f"{target.name}: exit {done.returncode}; {done.stdout.strip().splitlines()[-1:]}",
              flush=True)
        if done.returncode not in (0, 1):
            print(done.stdout[-3000:], done.stderr[-3000:])


def plugin_args() -> list[str]:
    """`-p perfsuite.plugin` where perfsuite is not installed (its entry point loads it)."""
    from importlib.metadata import entry_points

    found = entry_points()
    group = (found.select(group="pytest11") if hasattr(found, "select")
             else found.get("pytest11", []))  # Python 3.8-3.9
    return [] if any(e.value.startswith("perfsuite") for e in group) else ["-p", "perfsuite.plugin"]


def load_runs(folders: list[Path]) -> list[dict[str, dict]]:
    """One {benchmark: extra_info} per complete run."""
    runs = []
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            try:
                benchmarks = json.loads(path.read_text())["benchmarks"]
            except (ValueError, KeyError):
                print(f"skipped {path}: incomplete")
                continue
            infos = {}
            for bench in benchmarks:
                info = bench["extra_info"]
                if info.get("latency"):
                    infos[f"{info['model']}-{info['backend']}-{info['precision']}"] = info
            runs.append(infos)
    return runs


def judge_run(baseline: list[dict[str, dict]], run: dict[str, dict], policy: GatePolicy,
              factor: float = 1.0) -> tuple[bool, list[str], Counter]:
    """(flagged, the failed benchmarks, how each benchmark was decided) for one candidate run."""
    failed, how = [], Counter()
    names = [n for n in run if all(n in b for b in baseline)]
    scaled_policy = policy.at_scale(len(names))
    for name in names:
        info = run[name] if factor == 1.0 else scaled(run[name], factor)
        verdicts = judge_latency(name, recording(info), [recording(b[name]) for b in baseline],
                                 info["device"], scaled_policy)
        decider = next(v for v in verdicts if v.decides)
        how["gated" if decider.status != "too noisy" else "too noisy"] += 1
        if any(v.failed for v in verdicts):
            failed.append(f"{name} ({', '.join(v.subject.split(' ', 1)[1] for v in verdicts if v.failed)})")
    return bool(failed), failed, how


def evaluate_ab(folders: list[Path]) -> None:
    """A/A whole runs under --perf-ab: the share of runs where any A/B check failed, from each
    run's exit status and its failure lines (kept by `record --ab`)."""
    outputs = sorted(p for folder in folders for p in folder.glob("ab_*.txt"))
    flagged: list[str] = []
    pairs: list[int] = []
    calls: Counter = Counter()
    lows: list[tuple[float, str, str, str]] = []
    for path in outputs:
        text = path.read_text()
        failures = [line for line in text.splitlines() if "perfsuite A/B |" in line
                    and "REGRESSED" in line]
        if not text.startswith("exit 0") or failures:
            flagged.append(f"{path.name}: {text.splitlines()[0]}; {'; '.join(failures[:3])}")
        info = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(
            ".json").exists() else {"benchmarks": []}
        for bench in info["benchmarks"]:
            for paired in bench["extra_info"].get("paired") or []:
                pairs.append(len(paired["base_trial_medians_ms"]))
                calls[paired.get("calls_per_trial", 0)] += 1
                ratios = sorted(c / b for b, c in zip(paired["base_trial_medians_ms"],
                                                      paired["current_trial_medians_ms"]))
                lows.append((ratios[len(ratios) // 2], bench["extra_info"]["backend"],
                             bench["extra_info"]["precision"], path.stem))
    share = len(flagged) / max(1, len(outputs))
    print(f"A/B A/A whole runs: {len(flagged)} of {len(outputs)} flagged ({share:.1%}); "
          f"pairs a statistic took: mean {statistics.fmean(pairs) if pairs else 0:.0f}, "
          f"{len(pairs)} comparisons")
    if any(calls):
        print("calls a trial took: " + ", ".join(f"{n}: {count} comparisons"
                                                 for n, count in sorted(calls.items())))
    if lows:
        medians = [m for m, *_ in lows]
        print(f"median ratios: {min(medians):.3f} to {max(medians):.3f}; highest: "
              + ", ".join(f"x{m:.3f} {b} {p} ({run})" for m, b, p, run in sorted(lows)[-3:]))
    for line in flagged:
        print(f"  {line}")


def evaluate(folders: list[Path], recordings: list[int], slowdown: float,
             max_increase: float) -> None:
    if any(next(folder.glob("ab_*.txt"), None) for folder in folders):
        evaluate_ab(folders)
        return
    runs = load_runs(folders)
    benchmarks = len(set.intersection(*(set(r) for r in runs))) if runs else 0
    print(f"{len(runs)} runs of {benchmarks} benchmarks")
    print("| recordings | gate | A/A runs flagged | benchmarks gated | slowed "
          f"x{slowdown:g}: gated benchmarks caught | comparisons |")
    print("|---|---|---|---|---|---|")
    for n in recordings:
        for label, policy in (("per check (k=3)", GatePolicy(max_increase, run_false_alarms=0.0)),
                              ("run budget 1%", GatePolicy(max_increase))):
            flagged, caught, gated, comparisons = 0, [], Counter(), 0
            examples: Counter = Counter()
            for chosen in itertools.combinations(range(len(runs)), n):
                baseline = [runs[i] for i in chosen]
                for j, run in enumerate(runs):
                    if j in chosen:
                        continue
                    comparisons += 1
                    hit, which, how = judge_run(baseline, run, policy)
                    flagged += hit
                    examples.update(which)
                    gated.update(how)
                    if slowdown != 1.0:
                        caught.append(_caught(baseline, run, policy, slowdown))
            share = f"{gated['gated'] / max(1, sum(gated.values())):.0%}"
            detection = (f"{statistics.fmean(caught):.1%}" if caught else "n/a")
            print(f"| {n} | {label} | {flagged} of {comparisons} ({flagged / max(1, comparisons):.1%})"
                  f" | {share} | {detection} | {comparisons} |")
            for name, count in examples.most_common(5):
                print(f"|  |  | flagged {count}x: {name} | | | |")


def _caught(baseline: list[dict[str, dict]], run: dict[str, dict], policy: GatePolicy,
            factor: float) -> float:
    """The share of the benchmarks gated at their limit that fail when the run is slowed."""
    names = [n for n in run if all(n in b for b in baseline)]
    scaled_policy = policy.at_scale(len(names))
    hits = gated = 0
    for name in names:
        verdicts = judge_latency(name, recording(scaled(run[name], factor)),
                                 [recording(b[name]) for b in baseline], run[name]["device"],
                                 scaled_policy)
        decider = next(v for v in verdicts if v.decides)
        if decider.status == "too noisy":
            continue
        gated += 1
        hits += any(v.failed for v in verdicts)
    return hits / gated if gated else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--runs", type=int, default=8)
    rec.add_argument("--models", default="mobilenet_v3_small,squeezenet1_1,shufflenet_v2_x0_5,"
                     "resnet18")
    rec.add_argument("--sizes", default="64", help="input sizes (comma-separated)")
    rec.add_argument("--backends", default="torch,onnxruntime")
    rec.add_argument("--precisions", default="fp32,fp16,bf16")
    rec.add_argument("--device", default="cpu")
    rec.add_argument("--cpu-threads", type=int, default=0,
                     help="[tool.perfsuite] cpu_threads (0: every core)")
    rec.add_argument("--passes", type=int, default=1, help="[tool.perfsuite.timing] passes")
    rec.add_argument("--spells", default="", help="ON,OFF seconds of busy neighbours")
    rec.add_argument("--first-index", type=int, default=0, help="the first file's number")
    rec.add_argument("--ab", action="store_true",
                     help="A/B runs of the unchanged project against its HEAD (A/A)")
    ev = sub.add_parser("evaluate")
    ev.add_argument("folders", type=Path, nargs="+")
    ev.add_argument("--recordings", default="1,3")
    ev.add_argument("--slowdown", type=float, default=1.0,
                    help="replay every candidate slowed exactly by this factor (1: none)")
    ev.add_argument("--max-increase", type=float, default=GatePolicy().max_increase,
                    help="the practical limit of the median (max_increase)")
    args, extra = parser.parse_known_args()
    if args.command == "record":
        record(args.out, args.runs, args.models.split(","),
               [int(s) for s in args.sizes.split(",")], args.backends.split(","),
               args.precisions.split(","), args.device, args.ab, extra, args.cpu_threads,
               args.passes, parse_spells(args.spells), args.first_index)
    else:
        evaluate(args.folders, [int(n) for n in args.recordings.split(",")], args.slowdown,
                 args.max_increase)


if __name__ == "__main__":
    main()
