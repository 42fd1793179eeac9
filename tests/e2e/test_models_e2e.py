"""Model factories end to end: the `pytest` console script finds a factory beside pyproject.toml
(unit tests: tests/unit/models/test_models.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def test_plain_pytest_console_script_finds_a_factory_beside_pyproject(pytester, monkeypatch,
                                                                      tmp_path):
    """`pytest` (the console script) puts no user folder on sys.path, unlike `python -m pytest`,
    and the shipped suite's folder is not where the factory lives."""
    from tiny_models import TINY_CONFIG

    repo = Path(__file__).resolve().parents[2]
    pytester.makefile(".toml", pyproject=TINY_CONFIG.replace("tiny_models:", "user_factory:"))
    shutil.copy(repo / "tests" / "tiny_models.py", pytester.path / "user_factory.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PYTHONPATH", raising=False)  # pytester.run would add its folder here
    script = Path(sys.executable).with_name("pytest")
    done = subprocess.run([str(script), "-p", "no:cacheprovider", "-q", "-k", "test_size"],
                          cwd=pytester.path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 passed" in done.stdout
