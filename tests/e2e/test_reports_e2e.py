"""Reports end to end: pytest runs (pytester) that write --perf-report pages and result files,
and `perfsuite merge` and `history` over what they wrote (unit tests: tests/unit/report/)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch  # noqa: F401  (imported before pytester's runs change the environment)
from tiny_models import SPIN_MS_ENV, TINY_CONFIG, VIRTUAL_CLOCK_ENV

from perfsuite.cli import main
from perfsuite.report.run_files import read_benchmark_json
from tests.unit.report.test_reports import IMAGE

REPO = Path(__file__).resolve().parents[2]

# torch fp32 on the virtual clock: latency is exactly the spin, so verdicts are certain.
VIRTUAL = ("-p", "no:cacheprovider", "--perf-backends=torch", "--perf-precisions=fp32",
           "--benchmark-timer=tiny_models.virtual_clock", "--perf-suite=only", "-k",
           "test_latency or test_size")


GATEABLE = "\n[tool.perfsuite.gate]\nmax_increase = 0.6\ntail_max_increase = 0.7\n"


def make_suite(pytester, tmp_path, monkeypatch, config: str = TINY_CONFIG):
    pytester.makefile(".toml", pyproject=config)
    pytester.makeini("[pytest]\naddopts = -ra\n")
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    return pytester


@pytest.fixture
def tiny_suite(pytester, tmp_path, monkeypatch):
    return make_suite(pytester, tmp_path, monkeypatch)


@pytest.fixture
def virtual_suite(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv(SPIN_MS_ENV, "2.0")
    monkeypatch.setenv(VIRTUAL_CLOCK_ENV, "1")
    config = TINY_CONFIG.replace("rounds = 5", "rounds = 30") + GATEABLE
    return make_suite(pytester, tmp_path, monkeypatch, config)


def test_a_run_writes_its_markdown_and_html_reports(tiny_suite):
    result = tiny_suite.runpytest_subprocess("--perf-report=r.md", "--perf-report=r.html",
                                             "--benchmark-json=b.json")
    result.assert_outcomes(passed=15, deselected=2)
    markdown = (tiny_suite.path / "r.md").read_text()
    assert markdown.startswith("## perfsuite\n") and "nothing was gated" in markdown
    page = (tiny_suite.path / "r.html").read_text()
    # latency distributions, speedup over torch fp32, drift: no GPU, no meter, no A/B here
    assert len(IMAGE.findall(page)) == 3 == page.count("<img")
    for text in ("<h2>Results</h2>", "<td class=\"text\">onnxruntime</td>", "speedup over torch fp32",
                 "output drift per session", "nothing was gated", "machine.cpu_count"):
        assert text in page, text
    assert "<script" not in page and "http://" not in page and "https://" not in page
    perfsuite = json.loads((tiny_suite.path / "b.json").read_text())["machine_info"]["perfsuite"]
    assert perfsuite["machine_key"] and perfsuite["machine"]["cpu_count"] >= 1


def test_gate_verdicts_reach_the_reports_and_the_json(virtual_suite, monkeypatch):
    virtual_suite.runpytest_subprocess(*VIRTUAL, "--perf-save-baseline").assert_outcomes(passed=2)
    monkeypatch.setenv(SPIN_MS_ENV, "10.0")
    result = virtual_suite.runpytest_subprocess(*VIRTUAL, "--perf-report=r.html",
                                                "--benchmark-json=b.json")
    result.assert_outcomes(passed=1, failed=1)
    page = (virtual_suite.path / "r.html").read_text()
    assert '<td class="text bad">x5.000 REGRESSED, resolves +617.6% e2e</td>' in page
    assert '<td class="text bad"><strong>REGRESSED</strong></td>' in page  # the checks' table
    run = read_benchmark_json(virtual_suite.path / "b.json")
    assert run.gate == {"tiny-torch-fp32": "x5.000 REGRESSED, resolves +617.6% e2e"}
    assert "<h3>against the baseline</h3>" in page, "the deciding statistic beside the baseline's"


def test_merge_puts_two_machines_side_by_side(tiny_suite, tmp_path, capsys):
    for key in ("cpu-box", "gpu-box"):
        tiny_suite.runpytest_subprocess(f"--perf-machine-key={key}", f"--benchmark-json={key}.json",
                                        "-k", "latency").assert_outcomes(passed=4, deselected=13)
    files = [str(tiny_suite.path / f"{key}.json") for key in ("cpu-box", "gpu-box")]
    assert main(["merge", *files, "--out", str(tmp_path / "m.md")]) == 0
    assert main(["merge", *files, "--out", str(tmp_path / "m.html")]) == 0
    assert "perfsuite merge: 2 runs (cpu-box, gpu-box)" in capsys.readouterr().out
    markdown = (tmp_path / "m.md").read_text()
    assert "| session | cpu-box | gpu-box |" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith(("| torch", "| onnxruntime"))]
    assert len(rows) == 4 and all(len(re.findall(r"\d+\.\d{3} ms", row)) == 2 for row in rows)
    page = (tmp_path / "m.html").read_text()
    assert len(IMAGE.findall(page)) == 2 and ">cpu-box</th>" in page


def test_merge_reads_folders_and_numbers_repeated_machines(tiny_suite, tmp_path):
    (tiny_suite.path / "runs").mkdir()
    tiny_suite.runpytest_subprocess("--perf-machine-key=box", "--benchmark-json=runs/a.json",
                                    "-k", "latency and fp32")
    shutil.copy(tiny_suite.path / "runs" / "a.json", tiny_suite.path / "runs" / "b.json")
    assert main(["merge", str(tiny_suite.path / "runs"), "--out", str(tmp_path / "m.md")]) == 0
    assert "| session | box | box (2) |" in (tmp_path / "m.md").read_text()


def test_history_marks_where_the_gate_fired_in_saved_runs(virtual_suite, monkeypatch, tmp_path):
    virtual_suite.runpytest_subprocess(*VIRTUAL, "--perf-save-baseline").assert_outcomes(passed=2)
    (virtual_suite.path / "runs").mkdir()
    virtual_suite.runpytest_subprocess(*VIRTUAL, "--benchmark-json=runs/1.json")
    monkeypatch.setenv(SPIN_MS_ENV, "10.0")
    virtual_suite.runpytest_subprocess(*VIRTUAL, "--benchmark-json=runs/2.json")
    out = tmp_path / "h.html"
    assert main(["--rootdir", str(virtual_suite.path), "history", str(virtual_suite.path / "runs"),
                 "--out", str(out)]) == 0
    page = out.read_text()
    assert "the gate fired 1 times" in page and len(IMAGE.findall(page)) == 1
    verdicts = re.findall(r'<td class="text[^"]*">([^<]*)</td></tr>', page)
    assert verdicts[0].startswith("x1.000 ok, resolves")
    assert verdicts[1].startswith("x5.000 REGRESSED")


def test_history_replays_the_gate_over_a_baselines_versions_in_git(virtual_suite, monkeypatch,
                                                                    tmp_path):
    for name in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{name}_NAME", "perfsuite tests")
        monkeypatch.setenv(f"GIT_{name}_EMAIL", "tests@example.invalid")
    root = virtual_suite.path
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for spin in ("2.0", "2.0", "10.0"):
        monkeypatch.setenv(SPIN_MS_ENV, spin)
        virtual_suite.runpytest_subprocess(*VIRTUAL, "--perf-machine-key=box",
                                           "--perf-save-baseline").assert_outcomes(passed=2)
        subprocess.run(["git", "-C", str(root), "add", "baselines"], check=True)
        subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", f"spin {spin}"], check=True)
    out = tmp_path / "h.html"
    baseline = root / "baselines" / "box" / "baseline.json"
    assert main(["--rootdir", str(root), "history", "--baseline", str(baseline),
                 "--out", str(out)]) == 0
    page = out.read_text()
    verdicts = re.findall(r'<td class="text[^"]*">([^<]*)</td></tr>', page)
    assert verdicts[0] == "first version"
    assert verdicts[1].startswith("pass x1.000")
    assert verdicts[2].startswith("REGRESSED x5.000 (fails above x3.")
    assert "the gate fired 1 times" in page


def test_history_leaves_out_a_version_it_cannot_read(virtual_suite, monkeypatch, tmp_path, capsys):
    for name in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{name}_NAME", "perfsuite tests")
        monkeypatch.setenv(f"GIT_{name}_EMAIL", "tests@example.invalid")
    root = virtual_suite.path
    baseline = root / "baselines" / "box" / "baseline.json"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    baseline.parent.mkdir(parents=True)
    baseline.write_text('{"schema": 1}')
    subprocess.run(["git", "-C", str(root), "add", "baselines"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", "old schema"], check=True)
    virtual_suite.runpytest_subprocess(*VIRTUAL, "--perf-machine-key=box",
                                       "--perf-save-baseline").assert_outcomes(passed=2)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-am", "now"], check=True)
    out = tmp_path / "h.html"
    assert main(["--rootdir", str(root), "history", "--baseline", str(baseline),
                 "--out", str(out)]) == 0
    assert "left out " in capsys.readouterr().err and "schema 1" in out.read_text()
    assert re.findall(r'<td class="text[^"]*">([^<]*)</td></tr>', out.read_text()) == ["first version"]
