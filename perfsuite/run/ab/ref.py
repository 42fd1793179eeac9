"""The base side of an A/B run (`--perf-ab=REF`, `--perf-ab-python=PATH`): REF's tree, its
perfsuite configuration, and the two workers that measure the sides.

REF's tree is `git archive`d once per commit, with its submodules at the commits REF records,
into the artifact cache (content-addressed, locked, renamed into place), so the base side's
factories, the modules they import, weights files and configuration come from REF and never
from the working tree. Files git does not track (ignored weights, say) are not in it: the base
side then fails to build, saying which file is missing.
"""

from __future__ import annotations

import io
import posixpath
import subprocess
import sys
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from perfsuite.backends import configured_cases
from perfsuite.config.settings import CONFIG_ENV, CliOverrides, SuiteConfig, load_config
from perfsuite.errors import CacheError, ConfigError, PerfsuiteError
from perfsuite.git import GitError, git
from perfsuite.models.artifacts import ArtifactCache
from perfsuite.progress import Progress
from perfsuite.run.ab.process import SideSpec, environment_label, sides_python
from perfsuite.run.ab.sides import AbSides


class AbError(PerfsuiteError):
    """--perf-ab cannot be set up: not a git checkout, REF unknown, no configuration at REF."""


@dataclass(frozen=True)
class BaseTree:
    ref: str
    commit: str
    root: Path  # REF's counterpart of this run's rootdir
    toplevel: Path  # the working tree's git top level
    top: Path  # REF's counterpart of it


def _git(folder: Path, *args: str) -> str:
    try:
        return git(folder, *args).strip()
    except GitError as exc:
        raise AbError(str(exc)) from exc


def _commit(toplevel: Path, ref: str) -> str:
    """REF as a full commit id: any revision `git rev-parse --verify` accepts (a branch, a tag,
    HEAD~2, :/message) that names a commit."""
    try:
        if ref.startswith("-"):
            raise AbError("an option, not a revision")
        found = _git(toplevel, "rev-parse", "--verify", "--quiet", ref)
        return _git(toplevel, "rev-parse", "--verify", "--quiet", f"{found}^{{commit}}")
    except AbError as exc:
        raise AbError(f"--perf-ab={ref} | no such revision in {toplevel} (or not a commit).\n"
                      "Remedy: name a branch, tag or commit (in CI, fetch the base first: "
                      "git fetch origin main --depth=50).") from exc


def base_tree(rootdir: Path, ref: str, cache: ArtifactCache) -> BaseTree:
    """REF's tree with its submodules, extracted (once per commit) into the cache."""
    try:
        toplevel = _toplevel(rootdir)
    except (AbError, OSError) as exc:
        raise AbError(f"--perf-ab={ref} | {rootdir} is not in a git checkout ({exc}).\n"
                      "Remedy: run in a git clone, or gate on a stored baseline instead "
                      "(--benchmark-compare).") from exc
    commit = _commit(toplevel, ref)
    parts = tree_parts(toplevel, commit, ref)

    def extract(folder: Path) -> None:
        for repository, at, prefix in parts:
            extract_archive(repository, at, folder / prefix, ref)

    try:
        # "format" 2: submodules included, links checked; trees extracted before are not reused
        entry = cache.get_or_build("tree", commit[:12], {"commit": commit, "format": "2"},
                                   extract)
    except OSError as exc:
        raise AbError(f"--perf-ab={ref} | REF's tree cannot be written into the artifact cache "
                      f"{cache.root}: {exc.strerror or exc}.\nRemedy: free space there, or "
                      "point PERFSUITE_CACHE_DIR at a folder with room for a copy of the "
                      "repository.") from exc
    except CacheError as exc:
        raise AbError(f"--perf-ab={ref} | {exc}") from exc
    return BaseTree(ref, commit, entry.path / rootdir.resolve().relative_to(toplevel), toplevel,
                    entry.path)


def tree_parts(toplevel: Path, commit: str, ref: str,
               prefix: Path = Path()) -> list[tuple[Path, str, Path]]:
    """(repository, commit, folder in the tree) for REF's tree and, recursively, every
    submodule at the commit REF records; AbError naming a submodule whose commit is missing."""
    parts = [(toplevel, commit, prefix)]
    listing = _git(toplevel, "ls-tree", "-r", "-z", commit)
    for line in filter(None, listing.split("\0")):
        meta, _, path = line.partition("\t")
        mode, kind, sub_commit = meta.split()
        if kind != "commit":
            continue
        checkout = toplevel / path
        try:
            _git(checkout, "cat-file", "-e", f"{sub_commit}^{{commit}}")
            is_root = Path(_git(checkout, "rev-parse", "--show-toplevel")).resolve() == \
                checkout.resolve()
        except (AbError, OSError):
            is_root = False
        if not is_root:
            raise AbError(
                f"--perf-ab={ref} | REF's submodule {prefix / path} records commit "
                f"{sub_commit[:12]}, which this checkout does not have (the submodule is not "
                "checked out, or its commit was never fetched): REF's side would run the "
                "working tree's copy.\nRemedy: git submodule update --init --recursive (in CI: "
                "actions/checkout with submodules: recursive), then run again.")
        parts += tree_parts(checkout, sub_commit, ref, prefix / path)
    return parts


def extract_archive(repository: Path, commit: str, folder: Path, ref: str) -> None:
    """`git archive` of `commit` into `folder`: symbolic links inside the tree are kept, links to
    absolute paths or out of the tree are refused naming the file."""
    done = subprocess.run(["git", "-C", str(repository), "archive", "--format=tar", commit],
                          capture_output=True)
    if done.returncode != 0:
        raise AbError(f"--perf-ab={ref} | git archive {commit[:12]} in {repository} failed: "
                      f"{done.stderr.decode(errors='replace').strip() or done.returncode}.\n"
                      "Remedy: check that the repository is readable and the commit complete "
                      "(git fsck), then run again.")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _extract(io.BytesIO(done.stdout), folder, ref)
    except tarfile.TarError as exc:
        raise AbError(f"--perf-ab={ref} | REF's tree ({commit[:12]}) cannot be copied: "
                      f"{exc}.\nRemedy: compare with another revision, or report this with "
                      "the output of git archive.") from exc


def _extract(archive: io.BytesIO, folder: Path, ref: str) -> None:
    with tarfile.open(fileobj=archive) as tar:
        members = tar.getmembers()
        for member in members:
            if member.issym() or member.islnk():
                target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name),
                                                           member.linkname))
                if (posixpath.isabs(member.linkname) or target == ".."
                        or target.startswith("../")):
                    raise AbError(
                        f"--perf-ab={ref} | REF's tree holds a symbolic link that leaves the "
                        f"tree: {member.name} -> {member.linkname}. perfsuite copies REF's tree "
                        "and keeps only links inside it.\nRemedy: make the link relative and "
                        "inside the repository, or compare with a revision without it.")
        if hasattr(tarfile, "data_filter"):  # Python 3.12, and 3.8-3.11 security releases
            tar.extractall(folder, members, filter="data")
        else:  # pragma: no cover - links were checked above
            tar.extractall(folder, members)


def base_config(tree: BaseTree, known_backends: Sequence[str], cli: CliOverrides,
                selected_models: Sequence[str], cache_dir: Path,
                environ: Mapping[str, str]) -> SuiteConfig:
    """REF's configuration: its own file, factories imported from its tree, and only the models
    this run selected that REF has."""
    env = dict(environ)
    named = env.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_absolute():  # as the working tree's run reads it: from the rootdir
            path = tree.toplevel / tree.root.relative_to(tree.top) / path
        path = path.resolve()
        if tree.toplevel in path.parents:  # a file of the repository: REF's copy of it
            at_ref = tree.top / path.relative_to(tree.toplevel)
            if not at_ref.is_file():
                raise AbError(f"--perf-ab={tree.ref} | {CONFIG_ENV}={named} is missing at REF "
                              f"({tree.commit[:12]}): REF's side reads REF's copy of it.\n"
                              "Remedy: commit the file, or compare with a revision that has "
                              "it.")
            env[CONFIG_ENV] = str(at_ref)
    try:
        config = load_config(tree.root, known_backends, replace(cli, models=None), env)
    except ConfigError as exc:
        raise AbError(f"--perf-ab={tree.ref} | REF's perfsuite configuration: {exc}") from exc
    if not config.configured:
        raise AbError(f"--perf-ab={tree.ref} | REF ({tree.commit[:12]}) has no perfsuite "
                      "configuration ([tool.perfsuite] or PERFSUITE_CONFIG).\n"
                      "Remedy: compare with a revision that has one.")
    models = tuple(spec for spec in config.models if spec.name in selected_models)
    return replace(config, models=models, cache_dir=cache_dir)


def start_sides(current: SuiteConfig, cache: ArtifactCache, progress: Progress, rootdir: Path,
                ref: str | None, python: str | None, timer: str | None, cli: CliOverrides,
                known_backends: Sequence[str], environ: Mapping[str, str]) -> AbSides:
    """Launch the run's two workers; `AbSides.ready` waits for them. REF's side (or, with only
    `python`, the working tree under the other interpreter) is measured the way this run
    measures: device, timing, A/B pairs, agreement inputs, CPU threads, TF32 and cache are this
    run's; models, factories, weights, export and backend settings are REF's."""
    interpreter = sides_python(python)
    if ref:
        tree = base_tree(rootdir, ref, cache)
        config = base_config(tree, known_backends, cli, [spec.name for spec in current.models],
                             current.cache_dir, environ)
        base_roots: tuple[Path, ...] = (tree.root, tree.top)
        current_roots: tuple[Path, ...] = (rootdir.resolve(), tree.toplevel)
    else:  # the working tree on both sides, under two interpreters
        config = current
        current_roots = base_roots = _roots(rootdir)
    config = replace(config, device=current.device, timing=current.timing, ab=current.ab,
                     agreement=current.agreement,  # the same inputs on both sides
                     cpu_threads=current.cpu_threads, tf32=current.tf32)
    label = ref or environment_label(interpreter)
    if ref and python:
        label = f"{ref} on {environment_label(interpreter)}"
    base = SideSpec(label, interpreter, base_roots[0], base_roots,
                    current_roots if ref else (), config, timer)
    current_side = SideSpec("this tree", sys.executable, current_roots[0], current_roots,
                            base_roots if ref else (), current, timer)
    cases = configured_cases([spec.name for spec in config.models], config.backends,
                             config.precisions)
    sides = AbSides(label, config, base, current_side, cache, current.ab.worker_timeout_s,
                    progress, cases)
    try:
        sides.launch()
    except BaseException:
        sides.close()
        raise
    return sides


def _roots(rootdir: Path) -> tuple[Path, ...]:
    """The rootdir, and its git top level when it is in a git checkout."""
    try:
        return (rootdir.resolve(), _toplevel(rootdir))
    except (AbError, OSError):
        return (rootdir.resolve(),)


def _toplevel(rootdir: Path) -> Path:
    return Path(_git(rootdir, "rev-parse", "--show-toplevel")).resolve()
