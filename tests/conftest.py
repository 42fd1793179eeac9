"""Shared set-up for perfsuite's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perfsuite.errors import BackendUnavailable


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


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """perfsuite's plugin turns BackendUnavailable in a test that uses a `perf` fixture into a
    skip: right for the suite, wrong here, where a test that names its own `perf` would pass by
    skipping when the code under test breaks. Innermost of the wrappers, this fails it first;
    a test that may meet a missing backend on purpose is marked `may_be_unavailable`."""
    try:
        return (yield)
    except BackendUnavailable as exc:
        if item.get_closest_marker("may_be_unavailable"):
            raise
        pytest.fail(f"unexpected BackendUnavailable: {exc}", pytrace=False)
