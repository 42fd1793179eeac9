"""How well `perfsuite history` finds change points (docs/bisect.md): synthetic histories
built from measured A/A run medians, with and without an injected step.

    python benchmarks/change_point_quality.py [--reps 2000] [--lengths 20,40,60] [--seed 1] \
        [--cpu-steps 1.1,1.2,1.3,1.5,2.0] [--point min_ms|median_ms] [--noise FOLDERS] [--alpha A]

Noise: each benchmark's run numbers (the fastest call, as `perfsuite history` uses; the
median with `--point median_ms`) from the A/A zoo recordings kept in docs/data (2-core
CPU end to end: the day's recordings, when its host ran processes at speeds up to 3.3x apart,
and the evening's, a quieter host; H100 GPU compute of CUDA graph and eager sessions), as log
values centred on their mean. A history of L points draws L of them with replacement (seeded); a stepped one
multiplies the points from a random index k (3 <= k <= L - 3) on by the step (+10% CPU, +3%
GPU). Counted: a change point within k +- 1 (detected), every other change point (false, per
100 points), on stepped and on A/A histories. A Gaussian reference (sd 1%, +3%) checks the
calibration. `--cpu-steps` adds the CPU detection for larger steps; `--noise` adds rows from
folders of other A/A zoo runs (run_false_alarms.py record), each labelled by its folder.
"Known place" is the ceiling no detector reaches: one test at the true step, not corrected for
the search (Student's t on the logs, and Mann-Whitney's rank test, each at 5%).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from perfsuite.measure.change_points import change_points, step_p_value  # noqa: E402

DATA = REPO / "docs" / "data"
CPU = ("zoo_runs_2026-12-07.tar.xz", "zoo_runs_cpu_2026-12-07_second.tar.xz")
CPU_EVENING = ("zoo_runs_cpu_2026-12-07_evening.tar.xz",)  # the same zoo, another host's day
GPU = ("zoo_runs_h100_2026-12-07.tar.xz",)


def run_medians(archives: tuple[str, ...], statistic: str, work: Path, key: str = "median_ms"
                ) -> dict[str, list[float]]:
    """Per benchmark, `key` (the median, or the fastest call: min_ms) of `statistic` in every
    A/A zoo run of the archives."""
    medians: dict[str, list[float]] = {}
    for archive in archives:
        target = work / archive
        with tarfile.open(DATA / archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, filter="data")
            else:  # Python < 3.12 without the backport: the project's own archives
                tar.extractall(target)
        folder_medians(target, statistic, medians, key)
    return medians


def folder_medians(folder: Path, statistic: str, medians: dict[str, list[float]] | None = None,
                   key: str = "median_ms") -> dict[str, list[float]]:
    """Per benchmark, `key` of `statistic` in every A/A zoo run under `folder`."""
    medians = {} if medians is None else medians
    for path in sorted(folder.rglob("aa_*.json")):
        for bench in json.loads(path.read_text())["benchmarks"]:
            info = bench["extra_info"]
            median = (info.get(statistic) or {}).get(key)
            if median:
                name = f"{info['model']} {info['backend']} {info['precision']}"
                medians.setdefault(name, []).append(float(median))
    return medians


def pools(medians: dict[str, list[float]], keep: Callable[[str], bool]) -> dict[str, np.ndarray]:
    """Per benchmark, its centred log run medians."""
    return {name: np.log(values) - np.log(values).mean()
            for name, values in medians.items() if keep(name)}


def histories(noise: dict[str, np.ndarray], length: int, step: float | None, reps: int,
              seed: int, alpha: float = 0.05) -> dict[str, float]:
    """Detection and false change points over `reps` histories (benchmarks take turns)."""
    rng = np.random.default_rng(seed)
    names = sorted(noise)
    detected = false = known_t = known_rank = 0
    for rep in range(reps):
        logs = rng.choice(noise[names[rep % len(names)]], size=length, replace=True)
        where = int(rng.integers(3, length - 2)) if step else None
        if where is not None:
            logs[where:] += np.log(step)
            known_t += step_p_value(logs, where) < 0.05
            known_rank += _rank_test(logs, where) < 0.05
        hit = False
        for found in change_points(np.exp(logs), alpha=alpha):
            if where is not None and not hit and abs(found.index - where) <= 1:
                hit = True
            else:
                false += 1
        detected += hit
    return {"detected": detected / reps, "false_per_100": 100 * false / (reps * length),
            "known_t": known_t / reps, "known_rank": known_rank / reps}


def _rank_test(logs: np.ndarray, where: int) -> float:
    """Mann-Whitney's two-sided p-value of a step at `where` (normal approximation, ties
    given their mean rank and the variance corrected for them)."""
    n, m = len(logs), where
    _, inverse, counts = np.unique(logs, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = mean_rank[inverse]
    ties = float((counts ** 3 - counts).sum()) / (n * (n - 1))
    variance = m * (n - m) / 12.0 * (n + 1 - ties)
    if variance <= 0:
        return 1.0
    z = (float(ranks[:m].sum()) - m * (n + 1) / 2.0) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000, help="histories per setting")
    parser.add_argument("--lengths", default="20,40,60")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpu-steps", default="", help="also these CPU steps, e.g. 1.2,1.5")
    parser.add_argument("--noise", default="",
                        help="also these folders of A/A zoo runs (CPU end to end, +10%%)")
    parser.add_argument("--point", choices=("median_ms", "min_ms"), default="min_ms",
                        help="each run's number in the history: its median, or its fastest call "
                             "(what perfsuite history uses)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="the detector's corrected significance (perfsuite history: 0.05)")
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    with tempfile.TemporaryDirectory() as work:
        cpu = run_medians(CPU, "latency", Path(work), args.point)
        evening = run_medians(CPU_EVENING, "latency", Path(work), args.point)
        gpu = run_medians(GPU, "gpu_latency", Path(work), args.point)
    rng = np.random.default_rng(12345)
    settings = [
        ("2-core CPU end to end, day", pools(cpu, lambda n: True), 1.10),
        ("2-core CPU end to end, evening", pools(evening, lambda n: True), 1.10),
        ("H100 CUDA graph GPU compute", pools(gpu, lambda n: "cudagraph" in n), 1.03),
        ("H100 eager GPU compute", pools(gpu, lambda n: "cudagraph" not in n), 1.03),
        ("Gaussian reference, sd 1%", {"gaussian": rng.normal(0.0, 0.01, 5000)}, 1.03),
    ]
    settings += [(label, noise, float(s)) for s in args.cpu_steps.split(",") if s
                 for label, noise, _ in settings[:2]]
    settings += [(Path(folder).name, pools(folder_medians(Path(folder), "latency", key=args.point),
                                           lambda n: True), 1.10)
                 for folder in args.noise.split(",") if folder]
    print(f"{args.reps} histories per setting (stepped, and A/A), seed {args.seed}, alpha "
          f"{args.alpha}, each run's {'fastest call' if args.point == 'min_ms' else 'median'}; "
          "detected = a change point within +-1 of the step\n")
    print("| noise (benchmarks) | step | points | detected | known place: t / rank "
          "| false per 100 points, stepped | false per 100 points, A/A |")
    print("|---|---|---|---|---|---|---|")
    for number, (label, noise, step) in enumerate(settings):
        for length in lengths:
            seed = args.seed * 1_000_003 + number * 101 + length
            stepped = histories(noise, length, step, args.reps, seed, args.alpha)
            alone = histories(noise, length, None, args.reps, seed + 50_000, args.alpha)
            print(f"| {label} ({len(noise)}) | +{100 * (step - 1):.0f}% | {length} "
                  f"| **{stepped['detected']:.1%}** "
                  f"| {stepped['known_t']:.1%} / {stepped['known_rank']:.1%} "
                  f"| {stepped['false_per_100']:.2f} "
                  f"| **{alone['false_per_100']:.2f}** |", flush=True)


if __name__ == "__main__":
    main()
