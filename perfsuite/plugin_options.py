"""What the command line asks of a run: the --perf-* options themselves, the settings that
override the configuration, the baseline options (checked before any file is touched) and the
combinations refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perfsuite.backends import BACKEND_TYPES
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


def add_options(parser: pytest.Parser) -> None:
    """perfsuite's --perf-* options, in their own group of `pytest --help`."""
    group = parser.getgroup("perfsuite", "perfsuite performance suite")
    group.addoption("--perf-models", metavar="NAMES",
                    help="comma-separated configured model names to run (default: all)")
    group.addoption("--perf-backends", metavar="NAMES",
                    help=f"comma-separated backends: {', '.join(BACKEND_TYPES)}")
    group.addoption("--perf-precisions", metavar="NAMES",
                    help="comma-separated precisions: fp32, fp16, bf16")
    group.addoption("--perf-device", metavar="DEVICE",
                    help="cpu, cuda or auto (cuda when torch sees a GPU)")
    group.addoption("--perf-rounds", metavar="N", type=int,
                    help="timed rounds per benchmark (overrides [tool.perfsuite.timing] rounds)")
    group.addoption("--perf-save-baseline", action="store_true",
                    help="record this run as the baseline of this machine (replaces it)")
    group.addoption("--perf-add-recording", action="store_true",
                    help="add this run's latency to this machine's baseline as one more "
                         "recording (the gate learns between-run noise from recordings)")
    group.addoption("--perf-machine-key", metavar="KEY",
                    help=f"baseline key of this machine (default: derived from the hardware; "
                         f"env {MACHINE_KEY_ENV})")
    group.addoption("--perf-allow-env-change", action="store_true",
                    help="gate even when software versions or the recorded machine key differ "
                         "from the baseline's")
    group.addoption("--perf-report", metavar="PATH", action="append", default=[],
                    help="write a report at the end of the run: PATH.md a markdown summary "
                         "(machine, baseline, verdicts), PATH.html a page with plots "
                         "(perfsuite[plots]); repeat for both")
    group.addoption("--perf-suite", choices=("auto", "on", "only", "off"), default="auto",
                    help="run the suite shipped with perfsuite: auto (default: when "
                         "[tool.perfsuite] configures this repository and no test paths are "
                         "given), on (also with test paths), only (it alone), off")
    group.addoption("--perf-ab", metavar="REF",
                    help="A/B: measure REF's models (any git revision) and this tree's in "
                         "alternating trials in this run, each side in its own worker process, "
                         "and gate on the paired ratios")
    group.addoption("--perf-ab-python", metavar="PATH",
                    help="A/B across environments: run the base side's worker under this "
                         "Python interpreter or virtualenv folder (REF defaults to this tree "
                         "when --perf-ab is not given)")
    group.addoption("--perf-preflight", choices=("auto", "warn", "skip", "fail"),
                    help="when a pre-flight check fails (clocks, power mode, heat, load): fail "
                         "or skip the latency benchmarks, or warn; auto (default): fail when "
                         "CI is set, else warn")
    group.addoption("--perf-benchmark-table", action="store_true",
                    help="also print pytest-benchmark's own table for perfsuite's benchmarks")
