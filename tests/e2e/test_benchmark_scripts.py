"""Smoke runs of the benchmark scripts (benchmarks/), so they cannot rot: a tiny recording of real
runs, both gate-quality evaluations over the runs committed in docs/data, and fidelity on a CPU.
slowdown_plugin.py runs inside the fresh-run tests of gate_quality and ab_quality."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNS = REPO / "docs" / "data" / "gate_runs_2026-12-04.tar.xz"


def script(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False, env={**os.environ, **env})


def some_runs(target: Path, aa: int, slow: int) -> Path:
    """The first `aa` A/A runs and `slow` runs of the +87% slowdown from the committed data."""
    with tarfile.open(RUNS) as archive:
        archive.extractall(target)  # our own file
    folder = target / "runs2"
    keep = {f"aa_{i:02d}.json" for i in range(aa)} | {f"ops12_{i:02d}.json" for i in range(slow)}
    for path in folder.glob("*.json"):
        if path.name not in keep:
            path.unlink()
    return folder


def test_gate_quality_evaluates_recorded_runs_with_an_exact_slowdown(tmp_path):
    folder = some_runs(tmp_path, aa=6, slow=2)
    done = script("benchmarks/gate_quality.py", "evaluate", str(folder), "--recordings", "1,3",
                  "--scale", "2")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| onnxruntime-fp32")]
    assert any("| aa-x2 x6 | +100.0% e2e | 3 |" in row for row in rows), done.stdout
    assert any("| ops12 x2 |" in row for row in rows) and any("between-run CV" in r for r in rows)


def test_threshold_ceiling_prints_the_trade_off(tmp_path):
    done = script("benchmarks/threshold_ceiling.py", str(some_runs(tmp_path, aa=6, slow=0)))
    assert done.returncode == 0, done.stderr
    assert "torch 6 runs, 60 comparisons" in done.stdout
    assert "threshold x1.8: A/A flagged" in done.stdout


def test_gate_quality_records_fresh_runs(tmp_path):
    done = script("benchmarks/gate_quality.py", "record", "--out", str(tmp_path / "runs"),
                  "--aa", "1", "--slow", "1", "--ops", "2", "--size", "1000",
                  "--perf-backends", "onnxruntime", "--perf-precisions", "fp32",
                  "--perf-device", "cpu", "--perf-rounds", "5",
                  PERFSUITE_CACHE_DIR=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "aa_00.json: ok" in done.stdout and "ops02_00.json: ok" in done.stdout
    assert (tmp_path / "cache-passes2").is_dir(), "each slowdown has an ONNX cache of its own"


def test_ab_quality_records_and_evaluates_fresh_runs(tmp_path):
    runs = tmp_path / "runs"
    done = script("benchmarks/ab_quality.py", "record", "--out", str(runs), "--aa", "1",
                  "--slow", "1", "--ops", "3", "--size", "1000", "--pairs", "20",
                  "--calibrate", "50", "--calibrate-pairs", "20", "--slow-first",
                  "--perf-backends", "onnxruntime", "--perf-precisions", "fp32",
                  "--perf-device", "cpu", PERFSUITE_CACHE_DIR=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scaled = re.search(r"calibration: 3 passes made e2e [-+]\d+\.\d+%; using (\d+) for \+50%",
                       done.stdout)
    assert scaled, done.stdout
    ops = scaled.group(1)
    assert f"[1/2] slow{ops} ops={ops}: exit " in done.stdout, "the slowed process first"
    assert "[2/2] aa ops=0: exit " in done.stdout
    assert {p.name for p in runs.glob("*.json")} == {"aa-000.json", f"slow{ops}-001.json"}
    kept = [len(one["base_trial_medians_ms"]) for path in runs.glob("*.json")
            for bench in json.loads(path.read_text())["benchmarks"]
            for one in bench["extra_info"]["paired"]]
    assert kept and set(kept) == {20}, f"every pair recorded, no early stop: {kept}"
    done = script("benchmarks/ab_quality.py", "evaluate", str(runs), "--chunk", "20")
    assert done.returncode == 0, done.stderr
    assert "| onnxruntime fp32 | 2 | " in done.stdout and " of 1 (" in done.stdout, done.stdout
    assert "A/A processes' overall ratios (e2e): x" in done.stdout
    done = script("benchmarks/ab_quality.py", "evaluate", str(runs), "--chunk", "20",
                  "--sequential", "--benchmarks", "5")
    assert done.returncode == 0, done.stderr
    assert re.search(r"\| A/A \d+, slowed \d+ of 20 \(2 comparisons\) \|", done.stdout), done.stdout


def test_run_false_alarms_records_a_zoo_and_replays_whole_runs(tmp_path):
    runs = tmp_path / "zoo"
    done = script("benchmarks/run_false_alarms.py", "record", "--out", str(runs), "--runs", "2",
                  "--models", "squeezenet1_1", "--sizes", "64", "--backends", "onnxruntime",
                  "--precisions", "fp32", "--perf-rounds", "5",
                  PERFSUITE_CACHE_DIR=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "aa_00.json: exit 0" in done.stdout and "aa_01.json: exit 0" in done.stdout
    done = script("benchmarks/run_false_alarms.py", "evaluate", str(runs), "--recordings", "1",
                  "--slowdown", "3")
    assert done.returncode == 0, done.stderr
    assert "2 runs of 1 benchmarks" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1 |")]
    assert [row.split(" | ")[1] for row in rows] == ["per check (k=3)", "run budget 1%"]
    assert all(" of 2 (" in row for row in rows), done.stdout


def test_run_false_alarms_records_ab_whole_runs_and_counts_the_flagged(tmp_path):
    runs = tmp_path / "zoo_ab"
    done = script("benchmarks/run_false_alarms.py", "record", "--ab", "--out", str(runs),
                  "--runs", "1", "--models", "squeezenet1_1", "--sizes", "64", "--backends",
                  "onnxruntime", "--precisions", "fp32", "--perf-rounds", "5",
                  PERFSUITE_CACHE_DIR=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # exit 0, or 1 where this A/A run's one comparison was flagged (what evaluate counts)
    exit_line = re.search(r"ab_00\.json: exit ([01]);", done.stdout)
    assert exit_line, done.stdout[-3000:]
    output = (runs / "ab_00.txt").read_text()
    assert output.startswith(f"exit {exit_line[1]}\n") and "perfsuite A/B vs HEAD" in output
    done = script("benchmarks/run_false_alarms.py", "evaluate", str(runs))
    assert done.returncode == 0, done.stderr
    assert re.search(rf"A/B A/A whole runs: {exit_line[1]} of 1 flagged \([0-9.]+%\); pairs a "
                     r"statistic took: mean \d+, 1 comparisons", done.stdout), done.stdout
    assert "median ratios: " in done.stdout


def test_fidelity_measures_the_suite_against_a_bare_loop_on_a_cpu(tmp_path):
    out = tmp_path / "fidelity.json"
    done = script(str(REPO / "benchmarks" / "fidelity.py"), "--device", "cpu", "--rounds", "5",
                  "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"^mobilenet_v3_small-torch-fp32 \| nan \| nan \| nan \| [0-9.]+ \| [0-9.]+ "
                     r"\| [0-9.]+ \| -?[0-9.]+ \| [0-9.]+ \| -?[0-9.]+ \| ([0-9.]+ ){4}[0-9.]+$",
                     done.stdout, re.MULTILINE), done.stdout[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["suite_e2e_ms"] > 0 and row["raw_e2e_ms"] > 0
    assert len(row["repeat_suite_ms"]) == len(row["repeat_bare_ms"]) == 5


def test_every_benchmark_script_has_a_smoke_run_here():
    """A new script in benchmarks/ gets its smoke run in this file; shell scripts (GPU machine
    drivers) at least parse."""
    source = Path(__file__).read_text()
    for path in sorted((REPO / "benchmarks").iterdir()):
        if path.suffix == ".py":
            assert f"{path.stem}" in source, f"benchmarks/{path.name} has no smoke run here"
        elif path.suffix == ".sh":
            parsed = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True,
                                    check=False)
            assert parsed.returncode == 0, f"benchmarks/{path.name}: {parsed.stderr}"


def test_bisect_quality_names_a_slow_commit_with_real_timing(tmp_path):
    out = tmp_path / "bisects.json"
    # the slow commit doubles the model, so that real timing on a loaded machine cannot miss it
    done = script("benchmarks/bisect_quality.py", "--bisects", "1", "--commits", "4",
                  "--blocks", "6", "--extra", "6", "--seed", "3", "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result,) = json.loads(out.read_text())
    assert result["right"] and result["answer"] == result["slow"], done.stdout
    # the first step tests c4; its own wording ("slower", or "same*" settled later) rests on
    # real timing, which a loaded machine can blur (seen: "c4 same*" with the answer still c4)
    assert result["verdicts"][0].startswith("c4 ")
    assert "named the slow commit in 1 of 1 bisects of 4 commits" in done.stdout


def test_change_point_quality_reads_the_recorded_noise_and_counts(tmp_path):
    done = script("benchmarks/change_point_quality.py", "--reps", "40", "--lengths", "20")
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0]: line for line in done.stdout.splitlines()
            if line.startswith("| ") and "%" in line.split(" | ")[3]}
    assert set(rows) == {"| 2-core CPU end to end, day (30)", "| 2-core CPU end to end, evening (30)",
                         "| H100 CUDA graph GPU compute (10)",
                         "| H100 eager GPU compute (15)", "| Gaussian reference, sd 1% (1)"}
    detected = float(rows["| H100 CUDA graph GPU compute (10)"].split("**")[1].rstrip("%"))
    assert detected >= 80.0, done.stdout  # a +3% step in graph noise is found (100% at 2000)
    known_t, known_rank = (float(cell.strip().rstrip("%")) for cell in
                           rows["| Gaussian reference, sd 1% (1)"].split(" | ")[4].split(" / "))
    assert known_t >= 90.0 and known_rank >= 90.0, done.stdout  # a 3-sigma step, place known


def test_process_spread_times_fresh_processes_and_prints_their_spread():
    done = script("benchmarks/process_spread.py", "--processes", "2", "--model", "squeezenet1_1",
                  "--size", "32", "--device", "cpu", "--calls", "5", "--trials", "2")
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("squeezenet1_1 eager fp32")]
    times = [float(v) for v in line.split(": ")[1].split(" ms")[0].split()]
    assert len(times) == 2 and all(t > 0 for t in times), line
    printed = float(line.rsplit("spread ", 1)[1].rstrip("%")) / 100
    assert abs(printed - (max(times) / min(times) - 1)) < 0.002, line  # times shown rounded


def test_worker_placement_times_places_pairs_and_cores():
    done = script("benchmarks/worker_placement.py", "--device", "cpu", "--model", "squeezenet1_1",
                  "--size", "32", "--places", "2", "--pairs", "2", "--process-pairs", "1",
                  "--calls", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (places,) = [x for x in lines if x.startswith("places (eager): one process, 2 places: ")]
    times = [float(v) for v in places.split("places: ")[1].split(";")[0].split()]
    assert len(times) == 2 and all(t > 0 for t in times), places
    (pairs,) = [x for x in lines if x.startswith("pairs (eager): process pair 1: B/A x")]
    assert "after both rebuilt elsewhere" in pairs, pairs
    (cores,) = [x for x in lines if x.startswith("cores (eager):")]
    assert cores.count("core ") >= 2, cores  # each chosen core, twice round


def test_child_timing_takes_the_median_of_each_call_on_the_host_clock():
    """benchmarks/child_timing.py, which the fresh children above import: one trial's median."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import child_timing
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    ticks = iter([0.0, 0.001, 10.0, 10.002, 20.0, 20.005])  # calls of 1, 2 and 5 ms
    made: list[int] = []
    median = child_timing.trial_median(lambda: made.append(1), 3, cuda=False,
                                       clock=lambda: next(ticks))
    assert abs(median - 2.0) < 1e-9
    assert len(made) == 3


def test_interleaving_times_the_zoo_blocked_and_interleaved_and_compares(tmp_path):
    out = tmp_path / "spells"
    done = script("benchmarks/interleaving.py", "record", "--out", str(out), "--processes", "2",
                  "--models", "squeezenet1_1", "--sizes", "32", "--passes", "2", "--rounds", "4")
    assert done.returncode == 0, done.stderr
    assert "process 00 (blocked first)" in done.stdout, done.stdout
    assert "process 01 (interleaved first)" in done.stdout, done.stdout
    recorded = [json.loads(p.read_text()) for p in sorted(out.glob("spells_*.json"))]
    assert len(recorded) == 2
    for one in recorded:
        assert set(one["blocked"]) == set(one["interleaved"]) >= {
            "squeezenet1_1_32 torch fp32", "squeezenet1_1_32 onnxruntime fp32"}
        assert all(v > 0 for v in [*one["blocked"].values(), *one["interleaved"].values()])
        # both schedules time the same number of calls a case: the comparison is fair
        assert set(one["blocked calls"].values()) == set(one["interleaved calls"].values()) == {4}
    done = script("benchmarks/interleaving.py", "evaluate", str(out), "--reps", "20",
                  "--lengths", "10")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]  # no header
    assert [row.split(" | ")[0:2] for row in rows] == [["| blocked", "2"], ["| interleaved", "2"]]
    assert all("10: " in row for row in rows), rows


def test_run_false_alarms_records_with_passes_and_busy_neighbours_for_change_points(tmp_path):
    runs = tmp_path / "zoo_passes"
    done = script("benchmarks/run_false_alarms.py", "record", "--out", str(runs), "--runs", "1",
                  "--first-index", "3", "--passes", "2", "--spells", "0.05,0.05",
                  "--models", "squeezenet1_1", "--sizes", "32", "--backends", "onnxruntime",
                  "--precisions", "fp32,fp16", "--perf-rounds", "4",
                  PERFSUITE_CACHE_DIR=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "aa_03.json: exit 0" in done.stdout, done.stdout
    benchmarks = json.loads((runs / "aa_03.json").read_text())["benchmarks"]
    assert len(benchmarks) == 2 and all(len(b["stats"]["data"]) == 4 for b in benchmarks)
    done = script("benchmarks/change_point_quality.py", "--reps", "10", "--lengths", "10",
                  "--noise", str(runs))
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("| zoo_passes (2) | +10% | 10 |") for line in
               done.stdout.splitlines()), done.stdout
