"""Reports: a run's markdown and HTML pages, results merged across machines, history over time."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.config.gate_policy import GatePolicy
from perfsuite.gate.summary import ReportSummary
from perfsuite.plugin_options import report_path
from perfsuite.report.files import write_reports
from perfsuite.report.run_files import RunFileError, RunRecord, read_benchmark_json

REPO = Path(__file__).resolve().parents[3]
IMAGE = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]+">')


@pytest.mark.parametrize(("content", "expected"), [
    ("not json", "cannot be read as JSON"),
    ("[1, 2]", "is not a pytest-benchmark results file"),
    ('{"benchmarks": [{"name": "x", "extra_info": {}}]}', "holds no perfsuite benchmarks"),
    ('{"benchmarks": [{"name": "t", "extra_info": {"backend": "torch"}}]}',
     "benchmark 0 (t) is not a perfsuite record (KeyError: 'model')"),
])
def test_merge_names_the_file_it_cannot_read(tmp_path, capsys, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["merge", str(bad), "--out", str(tmp_path / "m.html")]) == 2
    err = capsys.readouterr().err
    assert f"perfsuite merge: {bad} | {expected}" in err and "Remedy:" in err
    assert not (tmp_path / "m.html").exists()


def test_merge_refuses_missing_paths_empty_folders_and_unknown_report_kinds(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["merge", str(tmp_path / "none.json"), "--out", str(tmp_path / "m.md")]) == 2
    assert main(["merge", str(tmp_path / "empty"), "--out", str(tmp_path / "m.md")]) == 2
    assert main(["merge", str(tmp_path / "empty"), "--out", str(tmp_path / "m.txt")]) == 2
    err = capsys.readouterr().err
    assert "none.json | does not exist" in err
    assert "empty | is a folder with no .json files in it" in err
    assert "--out " in err and "expected a .html or .md file in an existing folder" in err


def test_a_corrupt_record_names_the_benchmark(tmp_path):
    bad = tmp_path / "b.json"
    info = {"model": "m", "backend": "torch", "precision": "fp32", "device": "cpu",
            "artifact_bytes": 10, "latency": {"median_ms": -1}}
    bad.write_text(json.dumps({"benchmarks": [{"name": "test_latency[m]", "extra_info": info}]}))
    with pytest.raises(RunFileError, match=r"benchmark 0 \(test_latency\[m\]\) is not a perfsuite"):
        read_benchmark_json(bad)


def test_history_needs_a_baseline_or_saved_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # tmp_path is no work tree
    assert main(["history", "--out", str(tmp_path / "h.html")]) == 2
    outside = tmp_path / "b" / "baseline.json"
    outside.parent.mkdir()
    outside.write_text("{}")
    assert main(["history", "--baseline", str(outside), "--out", str(tmp_path / "h.html")]) == 2
    err = capsys.readouterr().err
    assert "name either --baseline FILE" in err
    assert "git log failed" in err and "Remedy: name a baseline file inside a git work tree" in err


@pytest.mark.parametrize("name", ["missing/report.md", "."])
def test_report_paths_are_checked_before_the_run(tmp_path, name):
    expected = "is a folder" if name == "." else "its folder does not exist"
    with pytest.raises(pytest.UsageError, match=re.escape(expected)):
        report_path(tmp_path / name)


def test_the_suffix_picks_the_kind_and_any_other_name_gets_markdown(tmp_path):
    """A step summary file ($GITHUB_STEP_SUMMARY) has no suffix: it gets the markdown."""
    summary = ReportSummary("perfsuite", ("a | b",), ("check", "verdict"), (("x|y", "ok"),))
    run = RunRecord("box", "", "", {}, ())
    paths = [tmp_path / "step_summary_1", tmp_path / "r.htm", tmp_path / "r.HTML"]
    assert write_reports(paths, summary, lambda: run) == []
    assert paths[0].read_text().startswith("## perfsuite\n")
    assert "| x\\|y | ok |" in paths[0].read_text(), "a | inside a cell is escaped"
    assert all(p.read_text().startswith("<!DOCTYPE html>") for p in paths[1:])


def test_a_plot_matplotlib_refuses_is_a_report_not_written_not_a_crash(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("Data cannot be log-scaled")

    monkeypatch.setattr("perfsuite.report.plots.distributions", refuse)
    run = read_benchmark_json(REPO / "docs" / "reports" / "cpu-2core.json")
    paths = [tmp_path / "r.html", tmp_path / "r.md"]
    errors = write_reports(paths, ReportSummary("perfsuite", ()), lambda: run)
    assert errors == [f"{paths[0]}: ValueError: Data cannot be log-scaled (a perfsuite bug: "
                      "please report it)"]
    assert not paths[0].exists() and paths[1].exists(), "the other reports are still written"


def test_an_html_report_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr("perfsuite.plugin_options.is_installed", lambda module: module != "matplotlib")
    with pytest.raises(pytest.UsageError, match=r"matplotlib, which is not installed.*\n"
                                                r"Remedy: pip install 'perfsuite\[plots\]'"):
        report_path(tmp_path / "r.html")
    assert report_path(tmp_path / "r.md") == tmp_path / "r.md"


CPU_RUN = REPO / "docs" / "reports" / "cpu-2core.json"
H100_RUN = REPO / "docs" / "reports" / "h100.json"


def test_a_folder_of_artifacts_leaves_out_files_without_perfsuite_results(tmp_path, capsys):
    results = tmp_path / "results"
    (results / "cpu").mkdir(parents=True)
    shutil.copy(CPU_RUN, results / "cpu" / "perfsuite.json")
    (results / "board" / "perfsuite.json").parent.mkdir()
    (results / "board" / "perfsuite.json").write_text('{"benchmarks": []}')  # everything skipped
    assert main(["merge", str(results), "--out", str(tmp_path / "m.md")]) == 0
    captured = capsys.readouterr()
    assert f"left out {results / 'board' / 'perfsuite.json'}: holds no perfsuite" in captured.err
    assert "1 runs (x86-64-amd-epyc-2cpu)" in captured.out
    named = main(["merge", str(results / "board" / "perfsuite.json"), "--out", str(tmp_path / "n.md")])
    assert named == 2, "a file named on the command line must hold results"


def test_out_never_replaces_a_file_perfsuite_did_not_write(tmp_path, capsys):
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    assert main(["merge", str(CPU_RUN), "--out", str(notes)]) == 2
    assert notes.read_text() == "# my notes\n"
    assert "exists and was not written by perfsuite; left as it is" in capsys.readouterr().err
    for name in ("m.md", "m.html"):
        for _ in range(2):  # its own report is written again
            assert main(["merge", str(CPU_RUN), "--out", str(tmp_path / name)]) == 0


def test_merge_and_history_see_ab_regressions(tmp_path):
    from perfsuite.report.history import replay, run_versions
    from perfsuite.report.merge import merged_rows

    run = read_benchmark_json(CPU_RUN)
    case = run.results[0].case.id
    ab = dataclasses.replace(run, gate={case: "HEAD 2.000 ms, x1.500 [1.500, 1.500] e2e REGRESSED"})
    assert merged_rows([ab], run.results[0].case.model)[0][1].endswith(" REGRESSED")
    later = dataclasses.replace(ab, when="2099-01-01T00:00:00")
    versions = run_versions([run, later])[case]
    assert [p.fired for p in replay(case, versions, GatePolicy())] == [False, True]


def test_history_keeps_each_machine_to_itself():
    from perfsuite.report.history import run_versions

    series = run_versions([read_benchmark_json(CPU_RUN), read_benchmark_json(H100_RUN)])
    assert "mobilenet_v3_small-torch-fp32 on x86-64-amd-epyc-2cpu" in series
    assert "mobilenet_v3_small-torch-fp32 on h100-reports" in series
    assert all(len(versions) == 1 for versions in series.values())


def test_a_report_summary_that_fails_is_a_report_not_written(tmp_path):
    from types import SimpleNamespace

    from perfsuite.errors import ConfigError
    from perfsuite.report.files import report_files

    def summary(run):
        raise ConfigError("pytest_perfsuite_machine_key returned 'bad key/..' | not a name")

    comparison = SimpleNamespace(report_summary=summary, notes=[])
    assert report_files(tmp_path, (tmp_path / "r.md",), None, comparison, None, dict) is False
    assert comparison.notes == ["ERROR: report NOT written: pytest_perfsuite_machine_key "
                                "returned 'bad key/..' | not a name."]
    assert not (tmp_path / "r.md").exists()


def test_names_from_files_cannot_inject_markup_into_the_page():
    from perfsuite.report.html import run_page
    from perfsuite.report.merge import merged_page

    run = read_benchmark_json(CPU_RUN)
    hostile = '<img src="https://example.invalid/x.png" onerror="alert(1)">'
    results = tuple(dataclasses.replace(r, case=dataclasses.replace(r.case, model=hostile))
                    for r in run.results)
    run = dataclasses.replace(run, machine=hostile, results=results, environment={hostile: hostile})
    summary = ReportSummary(hostile, (hostile,), ("check", "verdict"), ((hostile, "ok"),))
    for page in (run_page(run, summary), merged_page([run])):
        assert hostile not in page and "https://example.invalid" in page  # only as escaped text
        assert page.count("<img") == len(IMAGE.findall(page)), "every image is an embedded plot"
        assert "&lt;img src=&quot;https://example.invalid/x.png&quot;" in page


def _saved_runs(folder: Path, factors: list[float], fastest: list[float] | None = None) -> dict:
    """Saved runs of CPU_RUN, one a day, every latency scaled by each run's factor (the
    fastest call by `fastest`'s, where given)."""
    folder.mkdir()
    original = json.loads(CPU_RUN.read_text())
    for index, factor in enumerate(factors):
        run = json.loads(json.dumps(original))
        run["datetime"] = f"2026-12-0{index + 1}T12:00:00+00:00"
        run["commit_info"]["id"] = f"{index + 1}" * 12
        for bench in run["benchmarks"]:
            latency = bench["extra_info"].get("latency") or {}
            for key in [k for k in latency if k.endswith("_ms") and isinstance(latency[k], float)]:
                latency[key] *= fastest[index] if fastest and key == "min_ms" else factor
        (folder / f"{index}.json").write_text(json.dumps(run))
    return original


def test_history_names_where_a_series_stepped_and_marks_it(tmp_path, capsys):
    # +30% from the fifth run on
    original = _saved_runs(tmp_path / "runs", [1.0, 1.01, 0.99, 1.0, 1.3, 1.31, 1.29, 1.3])
    out = tmp_path / "h.html"
    assert main(["history", str(tmp_path / "runs"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if "change point:" in line]
    latencies = sum(1 for b in original["benchmarks"] if b["extra_info"].get("latency"))
    assert len(lines) == latencies and latencies > 0
    assert all(" x1.300 (fastest call) between 2026-12-04 12:00 4444" in line
               and "and 2026-12-05 12:00 5555" in line for line in lines), printed
    page = out.read_text()
    assert f"{latencies} change points" in page
    assert page.count("fastest call steps x1.300 here") == latencies


def test_history_finds_steps_in_the_fastest_calls_under_slow_spells(tmp_path, capsys):
    # the medians jump with slow spells (x1.0 to x1.5) and hide a +10% step that every run's
    # fastest call shows from the fifth run on
    spells = [1.0, 1.45, 1.02, 1.3, 1.5, 1.12, 1.6, 1.1]
    fastest = [1.0, 1.005, 0.995, 1.0, 1.1, 1.105, 1.095, 1.1]
    _saved_runs(tmp_path / "runs", spells, fastest)
    assert main(["history", str(tmp_path / "runs"), "--out", str(tmp_path / "h.html")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "change point:" in line]
    assert lines and all(" x1.100 (fastest call) between 2026-12-04 12:00 4444" in line
                         for line in lines), lines
