"""A PerfRun over tiny_models' configuration, for unit tests that drive backends directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tiny_models import TINY_CONFIG

from perfsuite.config.settings import load_config
from perfsuite.run.workshop import PerfRun


def tiny_perf_run(root: Path) -> Iterator[PerfRun]:
    """Yields a run configured in `root` (its cache inside it) and closes it after: a fixture
    body is `yield from tiny_perf_run(tmp_path)`."""
    (root / "pyproject.toml").write_text(TINY_CONFIG)
    run = PerfRun(load_config(root, ["torch", "onnxruntime"],
                              environ={"PERFSUITE_CACHE_DIR": str(root / "cache")}))
    yield run
    run.close()
