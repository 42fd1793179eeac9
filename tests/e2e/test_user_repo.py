"""perfsuite in a user's own repository, built from scratch: a pyproject.toml naming a model, the
factory module beside it and a weights file; no test file copied from perfsuite. Runs the plain
`pytest` console script, which puts no folder of the user's on sys.path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch  # imported before pytester snapshots sys.modules: torch cannot load twice

PYPROJECT = """
[project]
name = "acme-vision"
version = "1.0"

[tool.perfsuite]
backends = ["torch", "onnxruntime"]
precisions = ["fp32", "fp16"]
device = "cpu"

[tool.perfsuite.timing]
rounds = 20
trials = 2
warmup_seconds = 0.0

# These tests follow the user's steps, not the gate's judgement of real timings (a busy 2-core
# CI machine moves them 2x between runs; the gate's own tests inject costs): only a change
# beyond 100x fails latency here.
[tool.perfsuite.gate]
max_increase = 100.0
tail_max_increase = 100.0

[[tool.perfsuite.models]]
name = "acme_net"
factory = "acme_models:build"
weights = "weights/acme_net.pt"
input_shape = [1, 3, 32, 32]
"""

FACTORY = """
from torch import nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )
"""
CASES = ("acme_net-torch-fp32", "acme_net-torch-fp16", "acme_net-onnxruntime-fp32",
         "acme_net-onnxruntime-fp16")


@pytest.fixture
def user_repo(pytester):
    """The repository a user would write (in pytester's fresh folder); trained weights stand in
    as a seeded state_dict."""
    repo = pytester.path
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.makepyfile(acme_models=FACTORY)
    (repo / "weights").mkdir()
    namespace: dict[str, object] = {}
    exec(FACTORY, namespace)
    torch.manual_seed(7)
    model = namespace["build"]().eval()  # type: ignore[operator]
    torch.save(model.state_dict(), repo / "weights" / "acme_net.pt")
    return repo


def pytest_in(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PERFSUITE_CONFIG")}
    env["PERFSUITE_CACHE_DIR"] = str(repo.parent / f"{repo.name}-cache")
    script = Path(sys.executable).with_name("pytest")
    return subprocess.run([str(script), "-p", "no:cacheprovider", "-v", "-ra", *args], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=600)


def test_plain_pytest_runs_the_whole_suite_with_nothing_copied(user_repo):
    files_before = sorted(p.relative_to(user_repo) for p in user_repo.rglob("*"))
    done = pytest_in(user_repo)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-2000:]
    for case in CASES:
        assert f"test_latency[{case}] PASSED" in out
    for case in CASES[1:]:
        assert f"test_agreement[{case}] PASSED" in out
        assert f"test_drift[{case}] PASSED" in out
    assert "test_size[acme_net] PASSED" in out
    assert "perfsuite results: acme_net" in out
    for backend, precision in (("torch", "fp16"), ("onnxruntime", "fp32")):
        assert any(line.split()[:3] == [backend, precision, "cpu"] for line in out.splitlines())
    # the TensorRT self-check runs only when asked for (pytest -m trt_selftest)
    assert "test_trt_selftest" not in out and "2 deselected" in out
    created = sorted(p.relative_to(user_repo) for p in user_repo.rglob("*"))
    assert not any(p.suffix == ".py" and p.name.startswith("test_") for p in created)
    assert set(files_before) <= set(created)


def test_save_a_baseline_then_compare_in_the_users_repo(user_repo):
    saved = pytest_in(user_repo, "--perf-save-baseline")
    assert saved.returncode == 0, saved.stdout[-3000:]
    baselines = list((user_repo / "baselines").glob("*/baseline.json"))
    assert len(baselines) == 1, "one baseline, under the user's rootdir"
    compared = pytest_in(user_repo, "--benchmark-compare")
    out = compared.stdout + compared.stderr
    assert compared.returncode == 0, out[-3000:]
    assert "perfsuite gate: " in out and f"checks against {baselines[0]}" in out
    assert " 0 regressed" in out and "0 not comparable" in out
    assert "Can't compare" not in out  # pytest-benchmark's own store is not consulted
