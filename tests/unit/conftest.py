"""Shared set-up for perfsuite's own tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_ci_preflight_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CI=true a failed pre-flight check (a busy CPU, say) fails the latency benchmarks.
    The runs these tests make measure tiny models on a machine that may be busy: they are not
    gates, so 'auto' means warn here; the tests of the CI behaviour set CI themselves."""
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs these tests make print the whole results table, as on a wide terminal; the
    tests of fitting a narrow one set COLUMNS themselves."""
    monkeypatch.setenv("COLUMNS", "300")
