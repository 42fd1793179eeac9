"""The base side of an A/B run (`--perf-ab=REF`): REF's tree and its perfsuite configuration.

REF's tree is `git archive`d once per commit into the artifact cache (content-addressed, locked,
renamed into place), so the base side's factories, weights files and configuration come from
REF and never from the working tree. Files git does not track (ignored weights, say) are not in
it: the base side then fails to build, saying which file is missing.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from perfsuite.artifacts import ArtifactCache
from perfsuite.config import CONFIG_ENV, CliOverrides, SuiteConfig, load_config
from perfsuite.errors import ConfigError, PerfsuiteError
from perfsuite.git import GitError, git
from perfsuite.perf_run import PerfRun


class AbError(PerfsuiteError):
    """--perf-ab cannot be set up: not a git checkout, REF unknown, no configuration at REF."""


@dataclass(frozen=True)
class BaseTree:
    ref: str
    commit: str
    root: Path  # REF's counterpart of this run's rootdir
    toplevel: Path  # the working tree's git top level


def _git(folder: Path, *args: str) -> str:
    try:
        return git(folder, *args).strip()
    except GitError as exc:
        raise AbError(str(exc)) from exc


def base_tree(rootdir: Path, ref: str, cache: ArtifactCache) -> BaseTree:
    """REF's tree, extracted (once per commit) into the cache."""
    try:
        toplevel = Path(_git(rootdir, "rev-parse", "--show-toplevel")).resolve()
    except (AbError, OSError) as exc:
        raise AbError(f"--perf-ab={ref} | {rootdir} is not in a git checkout ({exc}).\n"
                      "Remedy: run in a git clone, or gate on a stored baseline instead "
                      "(--benchmark-compare).") from exc
    try:
        commit = _git(toplevel, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except AbError as exc:
        raise AbError(f"--perf-ab={ref} | no such revision in {toplevel}.\n"
                      "Remedy: name a branch, tag or commit (in CI, fetch the base first: "
                      "git fetch origin main --depth=50).") from exc

    def extract(folder: Path) -> None:
        archive = subprocess.run(["git", "-C", str(toplevel), "archive", "--format=tar", commit],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.12, and 3.8-3.11 security releases
                tar.extractall(folder, filter="data")
            else:  # pragma: no cover - git archive of this repository's own commit
                tar.extractall(folder)

    entry = cache.get_or_build("tree", commit[:12], {"commit": commit}, extract)
    return BaseTree(ref, commit, entry.path / rootdir.resolve().relative_to(toplevel), toplevel)


def base_config(tree: BaseTree, known_backends: Sequence[str], cli: CliOverrides,
                selected_models: Sequence[str], cache_dir: Path,
                environ: Mapping[str, str]) -> SuiteConfig:
    """REF's configuration: its own file, factories imported from its tree, and only the models
    this run selected that REF has."""
    env = dict(environ)
    named = env.get(CONFIG_ENV)
    if named and Path(named).is_absolute():
        path = Path(named).resolve()
        if tree.toplevel in path.parents:  # a file of the repository: REF's copy of it
            env[CONFIG_ENV] = str(tree.root / path.relative_to(tree.toplevel))
    try:
        config = load_config(tree.root, known_backends, replace(cli, models=None), env)
    except ConfigError as exc:
        raise AbError(f"--perf-ab={tree.ref} | REF's perfsuite configuration: {exc}") from exc
    if not config.configured:
        raise AbError(f"--perf-ab={tree.ref} | REF ({tree.commit[:12]}) has no perfsuite "
                      "configuration ([tool.perfsuite] or PERFSUITE_CONFIG).\n"
                      "Remedy: compare with a revision that has one.")
    models = tuple(replace(spec, isolated=True) for spec in config.models
                   if spec.name in selected_models)
    return replace(config, models=models, cache_dir=cache_dir)


def attach_base(perf: PerfRun, rootdir: Path, ref: str, cli: CliOverrides,
                known_backends: Sequence[str], environ: Mapping[str, str]) -> None:
    """Give `perf` its base side: a PerfRun of REF's models, measured the way this run measures
    (device, timing, A/B pairs, agreement inputs, CPU threads, TF32 and cache are this run's;
    models, factories, weights, export and backend settings are REF's)."""
    tree = base_tree(rootdir, ref, perf.cache)
    config = base_config(tree, known_backends, cli, [spec.name for spec in perf.config.models],
                         perf.config.cache_dir, environ)
    current = perf.config
    config = replace(config, device=current.device, timing=current.timing, ab=current.ab,
                     agreement=current.agreement,  # the same inputs on both sides
                     cpu_threads=current.cpu_threads, tf32=current.tf32)  # process-wide in torch
    perf.base = PerfRun(config, progress=lambda message: perf.progress(f"[{ref}] {message}"))
    perf.base_ref = ref
    perf.paired_mode = perf.base.paired_mode = True
