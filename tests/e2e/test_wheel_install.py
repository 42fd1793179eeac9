"""The README's own-repository steps with perfsuite installed from its built wheel into `.venv/`
inside a fresh git repository (the usual layout, where pytest collects nothing by itself):
`perfsuite init`, `pytest` (the suite collected, the table printed), `--perf-save-baseline`,
then `--benchmark-compare` on the unchanged model (exit 0) and on a 5x slower one (exit 1, the
ratio in the table); and a gate run that collects no perf test fails.

The inner virtualenv sees this environment's packages (torch, onnxruntime, ...) through a .pth
line, so nothing is downloaded again; perfsuite itself, its entry points and its console script
come from the wheel installed into `.venv/`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.e2e.test_ab import VCLOCK

REPO = Path(__file__).resolve().parents[2]
MODEL = """
from torch import nn

import vclock

DEPTH = {depth}


class Spin(nn.Module):
    \"\"\"The benchmark's timer is vclock.clock: each forward costs DEPTH / 10 ms on it, exactly,
    whatever the machine's load.\"\"\"

    def forward(self, x):
        vclock.advance(DEPTH * 1e-4)
        return x


def build():
    layers = [Spin(), nn.Conv2d(3, 32, 3, padding=1), nn.ReLU()]
    for _ in range(DEPTH):
        layers += [nn.Conv2d(32, 32, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
"""


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONPATH", "PERFSUITE_CONFIG", "VIRTUAL_ENV")}
    return subprocess.run(command, cwd=cwd, env={**clean, **env}, capture_output=True, text=True,
                          timeout=900, check=False)


def source_copy(target: Path) -> Path:
    """perfsuite's tracked files (the build writes build/ and *.egg-info beside its sources)."""
    listed = run(["git", "ls-files", "-z"], REPO)
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = source_copy(work / "src")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                 str(work / "dist"), str(source)], work)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (found,) = (work / "dist").glob("perfsuite-*-py3-none-any.whl")
    return found


def test_the_wheel_carries_the_suite_and_pypi_ready_metadata(wheel):
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith("/METADATA"))
        entry_points = next(archive.read(n).decode() for n in names
                            if n.endswith("/entry_points.txt"))
    assert "perfsuite/suite/test_latency.py" in names and "perfsuite/shipped_suite.py" in names
    assert "[pytest11]" in entry_points and "perfsuite = perfsuite.plugin" in entry_points
    for field in ("Requires-Python: >=3.8", "Classifier: Framework :: Pytest",
                  "Description-Content-Type: text/markdown", "License:"):
        assert field in metadata, field


def test_the_readme_steps_in_a_fresh_repository_with_its_virtualenv_inside(wheel, tmp_path):
    repo = tmp_path / "acme"
    repo.mkdir()
    assert run(["git", "init", "-q", "-b", "master"], repo).returncode == 0
    (repo / "mynet.py").write_text(MODEL.format(depth=2))
    (repo / "vclock.py").write_text(VCLOCK)
    made = run([sys.executable, "-m", "venv", ".venv"], repo)
    assert made.returncode == 0, made.stderr
    python = repo / ".venv" / "bin" / "python"
    inner = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                repo).stdout.strip()
    (Path(inner) / "outer-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                    repo)
    assert installed.returncode == 0, installed.stderr[-3000:]
    where = run([str(python), "-c", "import perfsuite; print(perfsuite.__file__)"], repo)
    assert where.stdout.startswith(str(repo / ".venv")), where.stdout + where.stderr

    init = run([str(repo / ".venv" / "bin" / "perfsuite"), "init", "--factory", "mynet:build",
                "--input-shape", "1,3,64,64"], repo)
    assert init.returncode == 0, init.stderr
    config = (repo / "pyproject.toml").read_text()
    assert 'name = "mynet"' in config
    assert "branches: [master]" in (repo / ".github/workflows/perfsuite.yml").read_text()
    (repo / "test_mine.py").write_text("def test_mine():\n    assert True\n")
    cache = str(tmp_path / "cache")

    def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
        # warn: a busy CI machine fails the CPU pre-flight, which is not what this test is about
        return run([str(python), "-m", "pytest", "-p", "no:cacheprovider",
                    "--perf-preflight=warn", *args], repo, PERFSUITE_CACHE_DIR=cache,
                   COLUMNS="100")

    def timed_run(*args: str) -> subprocess.CompletedProcess[str]:
        """torch only, timed on the virtual clock: the verdicts cannot depend on load."""
        return pytest_run("--benchmark-timer=vclock.clock", "--perf-backends=torch", *args)

    plain = pytest_run()
    out = plain.stdout
    assert plain.returncode == 0, out[-4000:] + plain.stderr[-2000:]
    assert "test_mine.py ." in out and "perfsuite results: mynet" in out
    assert re.search(r"^\.venv/lib/\S+/perfsuite/suite/test_latency\.py [.s]+", out, re.M), \
        "the suite was collected from .venv/"
    table = out[out.index("perfsuite results: mynet"):]
    assert all(len(line) <= 100 for line in table.splitlines()), "the table fits COLUMNS=100"

    saved = timed_run("--perf-save-baseline")
    assert saved.returncode == 0, saved.stdout[-3000:]
    assert list((repo / "baselines").glob("*/baseline.json"))

    same = timed_run("--benchmark-compare")
    assert same.returncode == 0, same.stdout[-4000:]
    assert " 0 regressed" in same.stdout

    (repo / "mynet.py").write_text(MODEL.format(depth=10))  # 5x the virtual cost
    slower = timed_run("--benchmark-compare")
    assert slower.returncode == 1, slower.stdout[-4000:]
    rows = [line for line in slower.stdout.splitlines() if line.startswith("torch ")]
    ratio = re.search(r" x(\d+\.\d+) REGRESSED", rows[0] if rows else "")
    assert ratio and float(ratio.group(1)) > 2.5, slower.stdout[-4000:]

    nothing = pytest_run("--benchmark-compare", "-k", "test_mine")
    assert nothing.returncode == 4, nothing.stdout[-2000:] + nothing.stderr[-2000:]
    assert "no perf test was" in nothing.stderr and "--benchmark-compare fails" in nothing.stderr
