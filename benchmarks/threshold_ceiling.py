"""Best any fixed-ratio threshold could do on recorded A/A runs (gate_quality.py record): the
median of every 3 runs is a baseline, every other run a candidate; for each threshold, the share
of A/A comparisons above it and the share of exact 2x slowdowns (the same runs, doubled) caught.

    python benchmarks/threshold_ceiling.py runs/
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path

THRESHOLDS = (1.3, 1.5, 1.6, 1.7, 1.8, 1.9)


def run_medians(folder: Path) -> dict[str, list[float]]:
    """Per backend, each A/A run's median of trial medians (end to end)."""
    runs: dict[str, list[float]] = {}
    for path in sorted(folder.glob("aa_*.json")):
        for bench in json.loads(path.read_text())["benchmarks"]:
            info = bench["extra_info"]
            runs.setdefault(info["backend"], []).append(
                statistics.median(info["latency"]["trial_medians_ms"]))
    return runs


def main(folder: Path) -> None:
    for backend, medians in run_medians(folder).items():
        ratios = []
        for chosen in itertools.combinations(range(len(medians)), 3):
            base = statistics.median(medians[i] for i in chosen)
            ratios += [medians[j] / base for j in range(len(medians)) if j not in chosen]
        print(f"{backend} {len(medians)} runs, {len(ratios)} comparisons; A/A ratio max "
              f"{max(ratios):.3f}")
        for t in THRESHOLDS:
            flagged = sum(r > t for r in ratios) / len(ratios)
            caught = sum(2 * r > t for r in ratios) / len(ratios)
            print(f"  threshold x{t}: A/A flagged {flagged:.1%}, exact 2x caught {caught:.1%}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
