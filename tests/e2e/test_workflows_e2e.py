"""The shipped workflows end to end: every option they pass is documented and known to pytest
(unit tests: tests/unit/config/test_workflows.py)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.config import test_workflows as unit

REPO = Path(__file__).resolve().parents[2]

README = (REPO / "README.md").read_text()
# the unit tests' fixture: the two shipped workflows and the one `perfsuite init` writes
workflow = unit.workflow


def test_every_option_is_documented_and_known_to_pytest(workflow, pytester):
    used = unit.options_used(workflow.read_text())
    assert used, "no perfsuite or pytest-benchmark option found"
    undocumented = sorted(o for o in used if f"`{o}" not in README)
    assert not undocumented, f"not in README.md: {undocumented}"
    known = pytester.runpytest_subprocess("--help").stdout.str()
    unknown = sorted(o for o in used if o not in known)
    assert not unknown, f"pytest --help does not list: {unknown}"
    for variable in re.findall(r"PERFSUITE_[A-Z_]+", workflow.read_text()):
        assert f"`{variable}`" in README, f"{variable} is not documented in README.md"
