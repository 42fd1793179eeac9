"""The GitHub Actions workflow `perfsuite init` writes: the repository's default branch, a
virtualenv per job (on a Jetson seeing JetPack's packages, pinned so pip keeps them), read-only
permissions, no pull requests from forks on a self-hosted runner, a time limit, one run per
branch at a time, and the markdown report in the job summary.

perfsuite is installed on the runner from where it was installed here (pip's direct_url.json:
a git URL, a wheel or a clone), or from the package index once it is published there.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from perfsuite.errors import PerfsuiteError
from perfsuite.git import git

WORKFLOW_PATH = Path(".github") / "workflows" / "perfsuite.yml"
EXTRAS = "ort,plots"

# The pins tools/system_pins.py prints, inline: they are made before perfsuite is installed
# (torch wheels before 2.3 were built against NumPy 1.x).
JETSON_PINS = """\
import re
from importlib import metadata
for name in ("torch", "torchvision", "tensorrt", "pycuda", "onnxruntime-gpu", "onnx"):
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        continue
    if name == "torch" and tuple(map(int, re.findall(r"\\d+", metadata.version(name))[:2])) < (2, 3):
        print("numpy<2")"""

TEMPLATE = """\
# perfsuite: gate merges on inference performance, on a self-hosted runner with the GPU (or
# Jetson) to measure on. Pull requests: this tree against the base branch, both measured in the
# same run (--perf-ab). Pushes to {branch}: against the baseline committed in baselines/, which
# you record once on the runner with `pytest --perf-save-baseline`.
name: perfsuite

on:
  pull_request:
  push:
    branches: [{branch}]

# One run per branch or pull request at a time; a newer push replaces one still waiting.
concurrency:
  group: perfsuite-${{{{ github.ref }}}}
  cancel-in-progress: false

permissions:
  contents: read

env:
  # Where the runner installs perfsuite from: {origin}
  PERFSUITE_INSTALL: "{install}"

jobs:
  perf:
    # A self-hosted runner must not run code from forks.
    if: >-
      github.event_name != 'pull_request' ||
      github.event.pull_request.head.repo.full_name == github.repository
    runs-on: [self-hosted, gpu]  # the labels of your GPU or Jetson runner
    timeout-minutes: 60
    defaults:
      run:
        shell: bash
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0  # --perf-ab reads the base revision from git

      - name: A virtualenv for this job, with perfsuite
        # On a Jetson it sees JetPack's CUDA torch, TensorRT and pycuda, pinned so pip keeps
        # them. Add what your models need to the install (-e . or -r requirements.txt).
        run: |
          keep=()
          if [ -f /etc/nv_tegra_release ]; then
            python3 -m venv --system-site-packages "$RUNNER_TEMP/venv"
            "$RUNNER_TEMP/venv/bin/python" - > "$RUNNER_TEMP/pins.txt" <<'PINS'
{pins}
          PINS
            keep=(-c "$RUNNER_TEMP/pins.txt")
          else
            python3 -m venv "$RUNNER_TEMP/venv"
          fi
          "$RUNNER_TEMP/venv/bin/python" -m pip install --quiet "${{keep[@]}}" "$PERFSUITE_INSTALL"
          echo "VENV=$RUNNER_TEMP/venv" >> "$GITHUB_ENV"

      - name: A/B against the base branch
        if: github.event_name == 'pull_request'
        env:
          BASE_REF: ${{{{ github.base_ref }}}}
        run: |
          "$VENV/bin/python" -m pytest --perf-ab="origin/$BASE_REF" \\
            --perf-report=perfsuite-report.md --perf-report=perfsuite-report.html

      - name: Gate on the committed baseline
        id: gate
        if: github.event_name != 'pull_request'
        run: |
          "$VENV/bin/python" -m pytest --benchmark-compare \\
            --perf-report=perfsuite-report.md --perf-report=perfsuite-report.html

      - name: Which commit made it slower
        # The gate failed on a push of several commits: bisect them, each step an A/B run of a
        # commit against the one before the push (perfsuite bisect), the answer in the summary.
        if: >-
          failure() && steps.gate.outcome == 'failure' && github.event_name == 'push' &&
          github.event.before != '0000000000000000000000000000000000000000'
        env:
          BEFORE: ${{{{ github.event.before }}}}
        run: |
          "$VENV/bin/python" -m perfsuite bisect --out perfsuite-bisect.md "$BEFORE" "$GITHUB_SHA" \\
            || echo "perfsuite bisect ended without an answer (exit $?): see the job's log."
          if [ -f perfsuite-bisect.md ]; then cat perfsuite-bisect.md >> "$GITHUB_STEP_SUMMARY"; fi

      - name: Job summary
        if: always()
        run: |
          if [ -f perfsuite-report.md ]; then
            cat perfsuite-report.md >> "$GITHUB_STEP_SUMMARY"
          else
            echo "perfsuite wrote no report: see the job's log." >> "$GITHUB_STEP_SUMMARY"
          fi

      - name: Keep the reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: perfsuite-report
          path: |
            perfsuite-report.*
            perfsuite-bisect.md
          if-no-files-found: ignore
"""


def workflow_text(branch: str, install: str, origin: str) -> str:
    pins = "\n".join(f"          {line}" for line in JETSON_PINS.splitlines())
    return TEMPLATE.format(branch=branch, install=install.replace('"', '\\"'), origin=origin,
                           pins=pins)


def default_branch(root: Path) -> str:
    """origin's HEAD branch, else the branch checked out, else 'main'."""
    for args in (("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"),
                 ("symbolic-ref", "--quiet", "--short", "HEAD")):
        try:
            name = git(root, *args, timeout=30).strip()
        except PerfsuiteError:
            continue
        if name:
            return name.split("/", 1)[1] if name.startswith("origin/") else name
    return "main"


def install_source(distribution: str = "perfsuite") -> tuple[str, str]:
    """(the pip requirement that installs this perfsuite again, where it came from)."""
    try:
        recorded = metadata.distribution(distribution).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        recorded = None
    requirement = f"{distribution}[{EXTRAS}]"
    try:
        direct = json.loads(recorded) if recorded else None
    except ValueError:
        direct = None
    if not isinstance(direct, dict) or not isinstance(direct.get("url"), str):
        return requirement, "the package index (edit this line to install from elsewhere)"
    url, vcs = direct["url"], direct.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") == "git":
        commit = vcs.get("commit_id") or ""
        return (f"{requirement} @ git+{url}{'@' + commit if commit else ''}",
                "the git repository it was installed from here, at that commit")
    where = unquote(urlparse(url).path) if url.startswith("file:") else url
    return (f"{requirement} @ {url}", f"{where}, as it was installed here (a path must exist "
            "on the runner too; else name a wheel, a clone or a git URL)")
