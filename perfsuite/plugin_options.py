"""What the command line asks of a run: the --perf-* settings that override the configuration,
the baseline options (checked before any file is touched) and the combinations refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perfsuite.config.benchmark_options import CompareRequest
from perfsuite.config.settings import CliOverrides
from perfsuite.config.validate import check_machine_key
from perfsuite.gate.baseline_gate import GateOptions
from perfsuite.lazy import install_hint, is_installed
from perfsuite.machine.fingerprint import MACHINE_KEY_ENV
from perfsuite.report.files import HTML_SUFFIXES


def cli_overrides(config: pytest.Config) -> CliOverrides:
    return CliOverrides(
        models=config.getoption("perf_models"),
        backends=config.getoption("perf_backends"),
        precisions=config.getoption("perf_precisions"),
        device=config.getoption("perf_device"),
        rounds=config.getoption("perf_rounds"),
        preflight=config.getoption("perf_preflight"),
    )


def ab_requested(config: pytest.Config) -> bool:
    """Whether the run is an A/B; an empty --perf-ab= (an unset CI variable) is refused."""
    ref, python = config.getoption("perf_ab"), config.getoption("perf_ab_python")
    for name, value, example in (("--perf-ab", ref, "a revision (--perf-ab=origin/main)"),
                                 ("--perf-ab-python", python,
                                  "an interpreter (--perf-ab-python=.venv-old/bin/python)")):
        if value is not None and not value.strip():
            raise pytest.UsageError(
                f"{name}= was given an empty value (an unset CI variable?): the run would not "
                f"be an A/B.\nRemedy: name {example}, or drop the option.")
    return bool(ref or python)


def refuse_with_ab(config: pytest.Config, recording: bool, compare: CompareRequest,
                   parallel: bool) -> None:
    """--perf-ab replaces the baseline gate for the run and needs timing."""
    clash = [name for name, given in (
        ("--perf-save-baseline/--perf-add-recording", recording),
        ("--benchmark-compare", compare.baseline or compare.stored_run is not None),
        ("--benchmark-disable", config.getoption("benchmark_disable", default=False)),
        ("-n (pytest-xdist)", parallel)) if given]
    if clash:
        raise pytest.UsageError(
            f"--perf-ab gates this tree against REF measured in the same run; it cannot be "
            f"combined with {', '.join(clash)}: run those separately.")


def gate_options(config: pytest.Config, compare: CompareRequest) -> GateOptions:
    """The run's baseline options, parsed once."""
    reports = tuple(report_path(Path(p)) for p in config.getoption("perf_report") or ())
    return GateOptions(
        baselines_dir=config.rootpath / "baselines",
        save_baseline=bool(config.getoption("perf_save_baseline")),
        add_recording=bool(config.getoption("perf_add_recording")),
        compare=compare.baseline,
        gate=compare.stored_run is None,
        allow_env_change=bool(config.getoption("perf_allow_env_change")),
        report_paths=reports,
        machine_key=_machine_key(config),
    )


def report_path(path: Path) -> Path:
    """A --perf-report path, refused before the run unless it names a new file or a report
    perfsuite wrote (perfsuite.files.replaceable) in an existing folder (and matplotlib is
    installed for an HTML report)."""
    from perfsuite.files import FileRefused, replaceable
    from perfsuite.report.files import is_perfsuite_report

    try:
        real = replaceable(path, is_perfsuite_report, "--perf-report=")
    except FileRefused as exc:
        raise pytest.UsageError(f"perfsuite: {exc}") from exc
    remedy = ("name a file in an existing folder, e.g. --perf-report=perfsuite-report.md (or "
              ".html for a page with plots)")
    if not real.parent.is_dir():
        problem = "its folder does not exist"
    elif path.suffix.lower() in HTML_SUFFIXES and not is_installed("matplotlib"):
        problem = "an HTML report draws its plots with matplotlib, which is not installed"
        remedy = install_hint("matplotlib")
    else:
        return path
    raise pytest.UsageError(f"perfsuite: --perf-report={path} | {problem}; the report is written "
                            f"at the end of the run.\nRemedy: {remedy}.")


def _machine_key(config: pytest.Config) -> str | None:
    """--perf-machine-key or PERFSUITE_MACHINE_KEY, checked before any file is touched."""
    for where, key in (("--perf-machine-key", config.getoption("perf_machine_key")),
                       (MACHINE_KEY_ENV, os.environ.get(MACHINE_KEY_ENV))):
        if key:
            return check_machine_key(key, where)  # a ConfigError: a usage error at configure
    return None
