"""Where the suite shipped with perfsuite lives, and when it joins a pytest run."""

from __future__ import annotations

from pathlib import Path

import pytest

SUITE_DIR = Path(__file__).resolve().parent / "suite"
PACKAGE_DIR = SUITE_DIR.parent


def add_shipped_suite(config: pytest.Config, configured: bool) -> None:
    """Put the suite shipped in perfsuite/suite among the paths pytest collects."""
    mode = config.getoption("perf_suite")
    if mode == "only":
        config.args[:] = [str(SUITE_DIR)]
        return
    named_paths = config.args_source == pytest.Config.ArgsSource.ARGS
    if mode == "off" or (mode == "auto" and (named_paths or not configured)):
        return
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == SUITE_DIR or SUITE_DIR in path.parents:
            return  # named already
        if path in SUITE_DIR.parents:
            inside = SUITE_DIR.relative_to(path).parts
            if not any(part.startswith(".") or part == "site-packages" for part in inside):
                return  # collected by recursion (a source checkout of perfsuite)
    config.args.append(str(SUITE_DIR))
