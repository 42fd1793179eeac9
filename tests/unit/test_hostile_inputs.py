"""Hostile inputs to perfsuite's commands and readers, round 3 (docs/reliability.md, "Commands
and readers"): `perfsuite init`, `merge` and `history`, sysfs readings, and the configuration.
Each case failed on the code before it (a traceback, a replaced file, a silent pass)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perfsuite.cli import main
from perfsuite.config.settings import load_config
from perfsuite.gate.store import BaselineError, load_baseline
from perfsuite.machine import jetson, preflight
from perfsuite.machine.preflight import PreflightConfig
from perfsuite.machine.sysroot import SystemFiles
from perfsuite.machine.telemetry import JetsonTelemetry
from tests.fakes.sysfs import ORIN, ORIN_HWMON_A, THERMAL, write_tree

REPO = Path(__file__).resolve().parents[2]
CPU_RUN = REPO / "docs" / "reports" / "cpu-2core.json"
PYPROJECT = '[project]\r\nname = "mine"\r\n\r\n# my comment\r\n[tool.black]\r\nline-length = 99\r\n'


def _init(tmp_path: Path, *args: str) -> int:
    return main(["--rootdir", str(tmp_path), "init", "--no-workflow", *args])


def _no_traceback(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# -- perfsuite init ----------------------------------------------------------------------------
def test_init_keeps_crlf_line_endings_and_comments(tmp_path):
    (tmp_path / "pyproject.toml").write_bytes(PYPROJECT.encode())
    assert _init(tmp_path, "--factory", "models:build") == 0
    data = (tmp_path / "pyproject.toml").read_bytes()
    assert data.startswith(PYPROJECT.encode()), "the user's text is kept byte for byte"
    assert b"[tool.perfsuite]" in data and b"\n" not in data.replace(b"\r\n", b"")


@pytest.mark.parametrize(("args", "says"), [
    (("--factory", "models:build", "--name", 'my"model'), "--name 'my\"model' | a model name"),
    (("--factory", "models:build\n[tool.evil]"), "--factory 'models:build\\n[tool.evil]' | "),
    (("--torchvision", "not_a_model"), "--torchvision 'not_a_model' | torchvision has no such"),
])
def test_init_names_the_bad_option_not_the_users_file(tmp_path, capsys, args, says):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    assert _init(tmp_path, *args) == 2
    err = _no_traceback(capsys)
    assert says in err and "fix the file first" not in err
    assert (tmp_path / "pyproject.toml").read_text() == '[project]\nname = "mine"\n'


def _folder(path: Path) -> None:
    path.mkdir()


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.toml")


def _latin1(path: Path) -> None:
    path.write_bytes(b'[project]\nname = "caf\xe9"\n')


@pytest.mark.parametrize(("make", "says"), [
    (_folder, "is not a regular file"),
    (_dangling, "which does not exist"),
    (_latin1, "is not UTF-8 text"),
])
def test_init_refuses_a_pyproject_it_cannot_edit_and_leaves_it(tmp_path, capsys, make, says):
    make(tmp_path / "pyproject.toml")
    assert _init(tmp_path, "--factory", "models:build") == 2
    assert says in _no_traceback(capsys)
    assert not (tmp_path / "nowhere.toml").exists()


def test_init_checks_the_workflow_folder_before_writing_anything(tmp_path, capsys):
    (tmp_path / ".github").write_text("not a folder\n")
    assert main(["--rootdir", str(tmp_path), "init", "--factory", "models:build"]) == 2
    assert "is a file where the workflow's folder goes; nothing was written" in \
        _no_traceback(capsys)
    assert not (tmp_path / "pyproject.toml").exists()


def test_init_on_a_read_only_filesystem_is_a_clean_error(tmp_path, capsys, monkeypatch):
    """As root, permissions do not stop a write; a read-only mount does (EROFS), here faked."""
    import perfsuite.init_command

    def read_only(path, text):
        raise OSError(30, "Read-only file system", str(path))

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    monkeypatch.setattr(perfsuite.init_command, "atomic_write_text", read_only)
    assert _init(tmp_path, "--factory", "models:build") == 2
    assert "cannot be written (Read-only file system); left as it was" in _no_traceback(capsys)
    assert (tmp_path / "pyproject.toml").read_text() == '[project]\nname = "mine"\n'


# -- merge and history -------------------------------------------------------------------------
def test_merge_out_on_a_symbolic_link_loop_is_refused(tmp_path, capsys):
    out = tmp_path / "loop.md"
    out.symlink_to(out)
    assert main(["merge", str(CPU_RUN), "--out", str(out)]) == 2
    assert "is a loop of symbolic links" in _no_traceback(capsys)


def _run_with(tmp_path: Path, **drift: float) -> Path:
    data = json.loads(CPU_RUN.read_text())
    info = next(b["extra_info"] for b in data["benchmarks"] if "rel_l2" in b.get("extra_info", {}))
    info.update(drift)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("drift", [{"rel_l2": float("nan")}, {"max_abs": float("inf")},
                                   {"cosine": -5.0}, {"top1_agreement": 7.0}])
def test_merge_refuses_drift_out_of_range(tmp_path, capsys, drift):
    assert main(["merge", str(_run_with(tmp_path, **drift)), "--out",
                 str(tmp_path / "out.md")]) == 2
    err = _no_traceback(capsys)
    assert f"{next(iter(drift))} must be a finite number in" in err
    assert not (tmp_path / "out.md").exists()


@pytest.mark.parametrize("passes", [0, "10", 2.5, True])
def test_merge_refuses_a_passes_count_that_is_not_a_whole_number(tmp_path, capsys, passes):
    assert main(["merge", str(_run_with(tmp_path, passes=passes)), "--out",
                 str(tmp_path / "out.md")]) == 2
    assert "passes must be a whole number of at least 1" in _no_traceback(capsys)
    assert not (tmp_path / "out.md").exists()


def test_merge_markdown_escapes_html_from_result_files(tmp_path):
    data = json.loads(CPU_RUN.read_text())
    for bench in data["benchmarks"]:
        if "model" in bench.get("extra_info", {}):
            bench["extra_info"]["model"] = "<img src=x onerror=alert(1)>"
    data["datetime"] = "<script>alert(2)</script>"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    assert main(["merge", str(path), "--out", str(tmp_path / "out.md")]) == 0
    text = (tmp_path / "out.md").read_text()
    assert "<img" not in text and "<script>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def test_a_deeply_nested_baseline_is_a_baseline_error_and_history_leaves_it_out(tmp_path,
                                                                                  capsys):
    deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(BaselineError, match="RecursionError"):
        load_baseline(tmp_path / "baseline.json", deep)
    _git(tmp_path, "init", "-q")
    path = tmp_path / "baselines" / "k" / "baseline.json"
    path.parent.mkdir(parents=True)
    path.write_text(deep)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "deep")
    assert main(["--rootdir", str(tmp_path), "history", "--baseline", str(path), "--out",
                 str(tmp_path / "history.html")]) == 0
    assert "left out" in _no_traceback(capsys)


# -- sysfs ---------------------------------------------------------------------------------------
def _orin(tmp_path: Path, **changes: str) -> SystemFiles:
    write_tree(ORIN, tmp_path)
    for relative, text in changes.items():
        (tmp_path / relative).write_text(text)
    return SystemFiles(tmp_path)


def test_an_nvpmodel_status_of_5000_digits_is_no_power_mode(tmp_path):
    files = _orin(tmp_path, **{"var/lib/nvpmodel/status": "pmode:" + "9" * 5000 + "\n"})
    assert jetson.power_mode(files) == ""


def test_nan_temperatures_never_pass_the_preflight(tmp_path):
    files = _orin(tmp_path)
    for temp in (tmp_path / THERMAL).glob("thermal_zone*/temp"):
        temp.write_text("nan")
    checks = {c.name: c for c in preflight.jetson_checks(files, PreflightConfig())}
    assert checks["temperatures"].status == "unknown", checks["temperatures"]
    assert "thermal_zone1/temp does not hold a number" in checks["temperatures"].detail


@pytest.mark.parametrize("reading", ["nan", "-1200"])
def test_a_nan_or_negative_rail_is_unknown_with_a_note_never_zero_watts(tmp_path, reading):
    files = _orin(tmp_path, **{f"{ORIN_HWMON_A}/curr{n}_input": reading for n in (1, 2, 3)})
    telemetry = JetsonTelemetry(files, jetson.jetson_identity(files))
    assert all(jetson.rail_power_w(files, rail) is None for rail in telemetry.rails
               if rail.current_ma.startswith(ORIN_HWMON_A))
    sample = telemetry.sample(0.0)
    assert "power_note" in sample and "NaN or negative" in sample["power_note"]
    assert sample["power_w"] != 0.0


# -- configuration -------------------------------------------------------------------------------
def test_a_relative_cache_dir_starts_at_the_rootdir(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config(tmp_path, ["torch"], environ={"PERFSUITE_CACHE_DIR": "my-cache"})
    assert config.cache_dir == tmp_path / "my-cache"


def test_a_tool_key_that_is_not_a_table_is_a_config_error_in_every_command(tmp_path):
    (tmp_path / "perf.toml").write_text('tool = "x"\n')
    done = subprocess.run([sys.executable, "-m", "perfsuite", "--rootdir", str(tmp_path),
                           "cache"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PERFSUITE_CONFIG": "perf.toml"})
    assert done.returncode == 2, done.stderr
    assert "`tool` is str 'x', not a table" in done.stderr and "Traceback" not in done.stderr


def test_a_deeply_nested_toml_file_is_a_config_error(tmp_path):
    from perfsuite.errors import ConfigError

    (tmp_path / "perf.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nests arrays or tables too deeply"):
        load_config(tmp_path, ["torch"], environ={"PERFSUITE_CONFIG": "perf.toml"})
