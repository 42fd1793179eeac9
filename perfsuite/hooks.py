"""perfsuite's hook specifications: policy a conftest.py can override.

Each hook is firstresult: the first implementation that returns something other than None wins;
perfsuite's own default applies when none does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy
import pytest

if TYPE_CHECKING:
    from perfsuite.config.gate_policy import GatePolicy
    from perfsuite.machine.fingerprint import MachineFingerprint

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_perfsuite_machine_key(config: pytest.Config, fingerprint: MachineFingerprint) -> str | None:
    """The baseline key of this machine; None keeps perfsuite's hardware slug.

    --perf-machine-key and PERFSUITE_MACHINE_KEY still win over this hook. Example conftest.py,
    one baseline per CI runner label::

        def pytest_perfsuite_machine_key(config, fingerprint):
            return os.environ.get("RUNNER_LABEL")
    """


@hookspec(firstresult=True)
def pytest_perfsuite_gate_policy(config: pytest.Config, benchmark: str,
                          policy: GatePolicy) -> GatePolicy | None:
    """The limits to gate `benchmark` (a case id such as 'resnet18-torch-fp32', or a model
    name for sizes) with; `policy` is what configuration and markers gave. None keeps it.

    Example conftest.py, looser limits for every eager benchmark::

        import dataclasses
        def pytest_perfsuite_gate_policy(config, benchmark, policy):
            if "-torch-" in benchmark:
                return dataclasses.replace(policy, max_increase=0.25)
    """
