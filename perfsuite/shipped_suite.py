"""Where the suite shipped with perfsuite lives, and when it joins a pytest run.

pytest never collects inside a virtualenv (nor, by `norecursedirs`, inside a folder whose name
starts with a dot), and it reaches a path argument inside the rootdir by walking down from the
rootdir: a suite in `<repo>/.venv/lib/.../site-packages` given as an argument is silently lost.
So when the installed suite lies inside the rootdir, its collector is added to the session's own
(its test ids are its path from the rootdir); outside the rootdir (a virtualenv elsewhere, a
system or conda environment) it is an argument, as pytest handles any folder there.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

SUITE_DIR = Path(__file__).resolve().parent / "suite"
PACKAGE_DIR = SUITE_DIR.parent
EXPECTED_KEY = pytest.StashKey[bool]()  # this run should collect the shipped suite
_COLLECT_KEY = pytest.StashKey[bool]()  # the session adds the suite's collector itself


def add_shipped_suite(config: pytest.Config, configured: bool) -> None:
    """Decide whether the suite shipped in perfsuite/suite joins this run's collection."""
    mode = config.getoption("perf_suite")
    config.stash[EXPECTED_KEY] = mode in ("on", "only") or (
        mode == "auto" and configured and config.args_source != pytest.Config.ArgsSource.ARGS)
    if mode == "only":
        config.args[:] = []
    wanted = config.stash[EXPECTED_KEY] and not _reached_by_arguments(config)
    config.stash[_COLLECT_KEY] = wanted and _inside(config.rootpath)
    if wanted and not config.stash[_COLLECT_KEY]:
        config.args.append(str(SUITE_DIR))  # outside the rootdir pytest finds it as an argument


def _inside(root: Path) -> bool:
    try:
        SUITE_DIR.relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _reached_by_arguments(config: pytest.Config) -> bool:
    """The suite is named by an argument, or collected by recursion from one (a source checkout
    of perfsuite, not an installed copy in a virtualenv or site-packages)."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == SUITE_DIR or SUITE_DIR in path.parents:
            return True
        if path in SUITE_DIR.parents:
            inside = SUITE_DIR.relative_to(path).parts
            if not any(part.startswith(".") or part == "site-packages" for part in inside):
                return True
    return False


def shipped_suite_expected(config: pytest.Config) -> bool:
    """This run was to collect the shipped suite (configured repository and no paths, or
    --perf-suite=on/only)."""
    return config.stash.get(EXPECTED_KEY, False)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector
                               ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """The session's report gets the suite's collector beside the argument paths' ones."""
    report = yield
    if (isinstance(collector, pytest.Session) and report.passed
            and collector.config.stash.get(_COLLECT_KEY, False)):
        hooks = collector.config.hook
        suite = hooks.pytest_collect_directory(path=SUITE_DIR, parent=collector)
        if suite is not None:
            report.result.append(suite)
    return report


def no_perf_tests(compare: bool) -> str:
    """A configured repository whose run was to include the suite collected no perf test: the
    line that says so; under --benchmark-compare (the CI gate) a usage error instead of a run
    that gates nothing."""
    message = (f"perfsuite: [tool.perfsuite] configures this repository and the shipped suite "
               f"({SUITE_DIR}) was to be collected, but no perf test was (check -k, -m, "
               f"--deselect, --ignore and python_files); nothing was measured or gated.")
    if compare:
        raise pytest.UsageError(f"{message} --benchmark-compare fails rather than pass without "
                                f"a gate.")
    return message


def deselect_selftest_unless_asked(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The TensorRT self-check fails where TensorRT cannot run: it runs under -m trt_selftest."""
    if "trt_selftest" in (config.getoption("markexpr", "") or ""):
        return
    selftest = [item for item in items if item.get_closest_marker("trt_selftest")]
    if selftest:
        config.hook.pytest_deselected(items=selftest)
        items[:] = [item for item in items if not item.get_closest_marker("trt_selftest")]
