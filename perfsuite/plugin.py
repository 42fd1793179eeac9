"""perfsuite's pytest glue: options, the session object, fixtures and the summary hook.

Importing this module imports nothing heavy; torch and friends load when a perf test first
needs them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from perfsuite.backends import BACKEND_TYPES, software_packages
from perfsuite.backends.base import CaseSpec, Runner
from perfsuite.config.benchmark_options import (
    CompareRequest,
    give_back_compare,
    hide_from_table,
    refusals,
    take_compare,
)
from perfsuite.config.parts import policy_changes
from perfsuite.config.settings import SuiteConfig, load_config
from perfsuite.errors import BackendUnavailable, PerfsuiteError
from perfsuite.gate.ab_gate import AbComparison
from perfsuite.gate.baseline_gate import BaselineComparison, GateOptions
from perfsuite.gate.protocol import Gate
from perfsuite.machine.identity import MachineIdentity
from perfsuite.machine.sysroot import system_files
from perfsuite.models.torch_model import check_torchvision_names
from perfsuite.plugin_options import ab_requested, add_options, cli_overrides, gate_options, refuse_with_ab
from perfsuite.progress import terminal_progress
from perfsuite.report.files import report_files
from perfsuite.report.text import results_table, wrapped
from perfsuite.results import RunResults
from perfsuite.run.ab.ref import start_sides
from perfsuite.run.workshop import PerfRun, SuiteModelArtifacts
from perfsuite.shipped_suite import (  # the collection hook joins the plugin's hooks
    PACKAGE_DIR,
    SUITE_DIR,
    add_shipped_suite,
    deselect_selftest_unless_asked,
    no_perf_tests,
    pytest_make_collect_report,  # noqa: F401
    shipped_suite_expected,
)

RUN_KEY = pytest.StashKey[PerfRun]()
GATE_KEY = pytest.StashKey[Gate]()  # the baseline gate, or the A/B gate under --perf-ab
AB_KEY = pytest.StashKey["AbComparison | None"]()  # the A/B gate, to hand it its sides
OPTIONS_KEY = pytest.StashKey[GateOptions]()
IDENTITY_KEY = pytest.StashKey[MachineIdentity]()
COMPARE_KEY = pytest.StashKey[CompareRequest]()
PERF_ITEMS_KEY = pytest.StashKey["set[str]"]()  # node ids of the collected perf tests
SUMMARY_KEY = pytest.StashKey["list[str]"]()  # made at sessionfinish, printed in the summary
NOTICE_KEY = pytest.StashKey[str]()  # said at collection, printed in the summary
_CASE_FIXTURES = ("perf_case", "perf_compared_case")
_PERF_FIXTURES = (*_CASE_FIXTURES, "perf_model")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from perfsuite import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@contextlib.contextmanager
def _usage_errors(what: str = "perfsuite") -> Iterator[None]:
    """At the configure and collection hooks a perfsuite error is about the user's input: a
    usage error (exit 4) that names it, never an INTERNALERROR with a traceback."""
    try:
        yield
    except PerfsuiteError as exc:
        raise pytest.UsageError(f"{what}: {exc}") from exc


def pytest_configure(config: pytest.Config) -> None:
    with _usage_errors("perfsuite configuration"):
        suite = load_config(config.rootpath, list(BACKEND_TYPES), cli_overrides(config))
    with _usage_errors():
        _configure(config, suite)


def _configure(config: pytest.Config, suite: SuiteConfig) -> None:
    system_files()  # PERFSUITE_SYSFS_ROOT, checked before anything runs
    config.stash[RUN_KEY] = PerfRun(suite, progress=terminal_progress(config))
    config.stash[RUN_KEY].timer = _timer_name(config) or ""
    config.stash[COMPARE_KEY] = compare = take_compare(config)
    add_shipped_suite(config, suite.configured)
    config.addinivalue_line("markers", "perf_gate(**limits): per-test regression limits, e.g. "
                            "perf_gate(max_increase=0.1, floor_ms=0.05)")
    config.addinivalue_line("markers", "trt_selftest: a short TensorRT self-check to run once on "
                            "a new runner (pytest -m trt_selftest)")
    if config.getoption("perf_save_baseline") and config.getoption("perf_add_recording"):
        raise pytest.UsageError("--perf-save-baseline and --perf-add-recording exclude each "
                                "other: the first replaces the baseline, the second adds to it.")
    options = gate_options(config, compare)
    if options.recording and config.getoption("benchmark_disable", default=False):
        raise pytest.UsageError("--benchmark-disable times nothing, so a recording run "
                                "(--perf-save-baseline, --perf-add-recording) would store no "
                                "latency: drop one of them.")
    parallel = config.getoption("dist", default="no") != "no" or hasattr(config, "workerinput")
    if (options.recording or options.compare) and parallel:
        raise pytest.UsageError("pytest-xdist (-n, --dist) turns pytest-benchmark off, so "
                                "--benchmark-compare, --perf-save-baseline and "
                                "--perf-add-recording would gate or store no latency: run "
                                "them without -n.")
    config.stash[IDENTITY_KEY] = machine = MachineIdentity(
        software_packages(), options.machine_key,
        lambda fp: config.hook.pytest_perfsuite_machine_key(config=config, fingerprint=fp))
    config.stash[AB_KEY] = None
    if ab_requested(config):
        refuse_with_ab(config, options.recording, compare, parallel)
        ab = AbComparison(suite.gate, config, config.stash[RUN_KEY].wants_fp16_onnx())
        config.stash[AB_KEY] = config.stash[GATE_KEY] = ab
        options = replace(options, gate=False)
    else:
        config.stash[GATE_KEY] = BaselineComparison(options, suite.gate, config, machine)
    config.stash[OPTIONS_KEY] = options


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Gate what the test recorded; a regression fails this test item. A perfsuite error in a
    perf test fails it with its message (no traceback); a backend that cannot run skips it."""
    perf = item.config.stash[RUN_KEY]
    perf.take_item_records()
    ab = item.config.stash[AB_KEY]
    if ab is not None:  # the A/B pairs stop at the limits this item is judged at
        perf.ab_rule = lambda name, statistic, statistics: ab.stopping_rule(
            name, statistic, statistics, _marker_limits(item), perf.config.ab)
    uses_perf = any(name in getattr(item, "fixturenames", ()) for name in (*_PERF_FIXTURES, "perf"))
    skip = failure = None
    try:
        outcome = yield
    except BackendUnavailable as exc:
        if not uses_perf:
            raise
        skip = str(exc)
    except PerfsuiteError as exc:
        if not uses_perf:
            raise
        failure = str(exc)
    if skip is not None:  # raised outside the handler: no chained traceback is shown
        pytest.skip(skip)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    records = perf.take_item_records()
    gate = item.config.stash[GATE_KEY]
    if records and gate.judging:
        try:
            failures = gate.judge(records, _marker_limits(item))
        except PerfsuiteError as exc:
            pytest.fail(str(exc), pytrace=False)
        _note_verdicts(item, gate.gate_cells(), records)
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)
    return outcome


def _latency_cases(config: pytest.Config, items: list[pytest.Item],
                   perf_items: set[str]) -> list[tuple[str, str, str]]:
    """The selected latency benchmarks whose backend can run on this device, in run order."""
    perf = config.stash[RUN_KEY]
    cases = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        case = next((params[name] for name in _CASE_FIXTURES if name in params), None)
        if (item.nodeid in perf_items and "benchmark" in getattr(item, "fixturenames", ())
                and case is not None and perf.may_run(*case)):
            cases.append(tuple(case))
    return cases


def _marker_limits(item: pytest.Item) -> dict[str, float] | None:
    """The item's perf_gate marker's limits (None without one); PerfsuiteError when bad."""
    marker = item.get_closest_marker("perf_gate")
    return policy_changes(marker.kwargs, "perf_gate marker ") if marker else None


def _note_verdicts(item: pytest.Item, cells: dict[str, str], records: list[Any]) -> None:
    """pytest-benchmark's JSON keeps each benchmark's gate verdict (reports and history read it)."""
    benchmark = getattr(item, "funcargs", {}).get("benchmark")
    info = getattr(benchmark, "extra_info", None)
    for record in records:
        if isinstance(info, dict) and record.kind == "latency" and record.name in cells:
            info["gate"] = cells[record.name]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A skip raised inside perfsuite (a backend that cannot run here) names the test."""
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3:
        where = Path(longrepr[0])
        where = where if where.is_absolute() else item.config.rootpath / where
        if PACKAGE_DIR in where.resolve().parents and SUITE_DIR not in where.resolve().parents:
            path, line = item.reportinfo()[:2]
            report.longrepr = (str(path), (line or 0) + 1, longrepr[2])
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    wanted = session.config.getoption("perf_benchmark_table")
    if not (wanted or session.config.stash[COMPARE_KEY].stored_run):
        hide_from_table(session.config, session.config.stash.get(PERF_ITEMS_KEY, set()))
    gate = session.config.stash.get(GATE_KEY, None)
    perf = session.config.stash.get(RUN_KEY, None)
    if perf is None:
        return
    run = perf.snapshot()  # what the tests recorded: the gate and the reports see only this
    written = gate.finish(run, int(exitstatus)) if gate is not None else True
    written = perf.monitor.after_run() is None and written
    options = session.config.stash.get(OPTIONS_KEY, None)
    if gate is not None and options is not None and options.report_paths:
        written = report_files(session.config.rootpath, options.report_paths, run, gate,
                               session.config.stash[IDENTITY_KEY], perf.monitor.as_dict) and written
    try:  # printed by pytest_terminal_summary, which runs after this hook
        session.config.stash[SUMMARY_KEY] = _summary(perf, run, session.config)
    except PerfsuiteError as exc:  # the tests' verdicts stand; the summary says what failed
        session.config.stash[SUMMARY_KEY] = [f"perfsuite: ERROR: no summary: {exc}"]
        written = False
    if not written and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # what was asked for was not done


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """pytest-benchmark's JSON: the telemetry, Jetson identity and pre-flight verdicts."""
    perf = config.stash.get(RUN_KEY, None)
    if perf is not None and perf.monitor.before is not None:
        perf.monitor.after_run()
        machine_info["perfsuite"] = perf.monitor.as_dict()
    machine = config.stash.get(IDENTITY_KEY, None)
    if perf is not None and machine is not None:
        with contextlib.suppress(PerfsuiteError):  # a bad key hook is reported by the gate
            machine_info.setdefault("perfsuite", {}).update(
                machine_key=machine.key, machine=machine.fingerprint.as_dict())


def _timer_name(config: pytest.Config) -> str | None:
    """pytest-benchmark's --benchmark-timer as 'module.attr', for workers that time trials in
    their own process (A/B sides, the torch worker)."""
    timer = config.getoption("benchmark_timer", default=None)
    return str(timer) if timer else None


def pytest_unconfigure(config: pytest.Config) -> None:
    perf = config.stash.get(RUN_KEY, None)
    if perf is not None:
        perf.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    perf = metafunc.config.stash[RUN_KEY]
    with _usage_errors():
        params = perf.case_params()
    if "perf_compared_case" in metafunc.fixturenames:
        params = [p for p in params if (p[1], p[2]) != ("torch", "fp32")]
    for name in _CASE_FIXTURES:
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, params, ids=["-".join(p) for p in params],
                                 indirect=True, scope="session")
    if "perf_model" in metafunc.fixturenames:
        names = [spec.name for spec in perf.config.models]
        metafunc.parametrize("perf_model", names, ids=names, indirect=True, scope="session")


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have chosen the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Only when perf tests were collected: refuse pytest-benchmark options perfsuite cannot
    honour, check the baseline and torchvision model names."""
    deselect_selftest_unless_asked(config, items)
    perf_items = {item.nodeid for item in items
                  if any(name in getattr(item, "fixturenames", ()) for name in _PERF_FIXTURES)}
    compare = config.stash[COMPARE_KEY]
    if not perf_items:
        if shipped_suite_expected(config):
            config.stash[NOTICE_KEY] = no_perf_tests(compare.baseline)
        if compare.baseline:
            give_back_compare(config)
        return
    config.stash[PERF_ITEMS_KEY] = perf_items
    refused = refusals(config, compare)
    if refused:
        raise pytest.UsageError("perfsuite cannot honour these pytest-benchmark options for its "
                                "benchmarks:\n  " + "\n  ".join(refused))
    latency = _latency_cases(config, items, perf_items)
    with _usage_errors():  # a bad or (under --benchmark-compare) missing baseline
        config.stash[GATE_KEY].prepare(len(latency))
    ab = config.stash[AB_KEY]
    if ab is None:  # A/B pairs share their moments already
        config.stash[RUN_KEY].plan_interleaved(latency)
    sides = None
    if ab is not None:
        perf = config.stash[RUN_KEY]
        with _usage_errors():
            sides = start_sides(perf.config, perf.cache, perf.progress, config.rootpath,
                                config.getoption("perf_ab"), config.getoption("perf_ab_python"),
                                _timer_name(config), cli_overrides(config), list(BACKEND_TYPES),
                                os.environ)
        perf.use_sides(sides)  # closed with the run, a usage error below included
        ab.attach(sides)
    try:  # while the workers start
        check_torchvision_names(config.stash[RUN_KEY].config.models)
    except PerfsuiteError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if sides is not None:
        with _usage_errors():
            sides.ready(list(dict.fromkeys(case[0] for case in latency)))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    notice = config.stash.get(NOTICE_KEY, "")
    lines = [*config.stash.get(SUMMARY_KEY, []), *([notice] if notice else [])]
    if lines:
        terminalreporter.section("perfsuite results")
    for line in lines:
        terminalreporter.write_line(line)


def _summary(perf: PerfRun, run: RunResults, config: pytest.Config) -> list[str]:
    """The results table, the machine's state, the gate's summary and any note on
    pytest-benchmark's options."""
    after = perf.monitor.after_run()
    machine = [*perf.monitor.summary_lines(), *([after] if after else [])]
    if not run.results:
        return machine  # e.g. every latency benchmark failed its pre-flight
    passes = max(result.passes for result in run.results)
    header = {"threads": str(run.cpu_threads) if run.cpu_threads else "",
              "rounds": f"interleaved in {passes} passes" if passes > 1 else ""}
    gate = config.stash[GATE_KEY]
    width = config.get_terminal_writer().fullwidth
    lines = [*results_table(list(run.results), header, gate.gate_cells(), width), *machine,
             *gate.summary_lines(run)]
    note = config.stash[COMPARE_KEY].note
    lines = [*lines, note] if note else lines
    return [part for line in lines for part in wrapped(line, width)]  # the terminal's width


@pytest.fixture(scope="session")
def perf(pytestconfig: pytest.Config) -> PerfRun:
    """The run's PerfRun: configuration, cached models, runners and results."""
    return pytestconfig.stash[RUN_KEY]


@pytest.fixture(scope="session")
def perf_case(request: pytest.FixtureRequest, perf: PerfRun) -> CaseSpec:
    """One (model, backend, precision) on this run's device."""
    return perf.case(*request.param)


@pytest.fixture(scope="session")
def perf_compared_case(request: pytest.FixtureRequest, perf: PerfRun) -> CaseSpec:
    """Like perf_case, without the torch fp32 reference itself."""
    return perf.case(*request.param)


@pytest.fixture(scope="session")
def perf_model(request: pytest.FixtureRequest, perf: PerfRun) -> SuiteModelArtifacts:
    """A configured model's artifacts (torch module, ONNX exports)."""
    return _or_fail(lambda: perf.artifacts(request.param))


def _or_fail(build: Any) -> Any:
    """Run `build`; a perfsuite error other than BackendUnavailable fails the test readably."""
    try:
        return build()
    except BackendUnavailable:
        raise
    except PerfsuiteError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)  # outside the handler: no chained traceback is shown


def runner_or_skip(perf: PerfRun, case: CaseSpec) -> Runner:
    """The prepared runner, or a skip that states why this case cannot run here."""
    try:
        return _or_fail(lambda: perf.runner(case))  # type: ignore[no-any-return]
    except BackendUnavailable as exc:
        pytest.skip(f"{case.id} on {case.device}: {exc}")


@pytest.fixture
def perf_runner(perf: PerfRun, perf_case: CaseSpec) -> Iterator[Runner]:
    """The backend runner for perf_case, built once per pytest session and shared."""
    yield runner_or_skip(perf, perf_case)
