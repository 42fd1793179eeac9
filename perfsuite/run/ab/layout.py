"""Where an A/B worker's code comes from: its side's tree, spelled in the same length as the
other side's on its import path, and the check that no loaded module came from the other side's
tree (perfsuite.run.ab.worker uses it; standard library only, as the worker's interpreter may have
nothing else)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _real(path: str) -> str:
    return os.path.realpath(path or os.curdir)


def environment_folders() -> list[str]:
    """The interpreter's own folders (prefixes, site-packages): never a side's code."""
    import site

    folders = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    try:
        folders.update(site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenv's site module
        pass
    user = getattr(site, "USER_SITE", None)
    if user:
        folders.add(user)
    return sorted({_real(f) for f in folders})


def padded(path: str, length: int) -> str:
    """`path` spelled in `length` characters where it is shorter (`/.` steps, and one `//`):
    the same folder. Both workers then hold import-path strings of equal lengths, and so lay out
    their heaps alike; with the two trees' paths of different lengths one side ran torch 2%
    faster than the other in A/A runs (a CPU, fixed address layout)."""
    missing = length - len(path)
    if missing <= 0:
        return path
    return path + "/" * (missing % 2) + "/." * (missing // 2)


class SideLayout:
    """Where this side's code lives and what belongs to the other side."""

    def __init__(self, own: list[str], other: list[str], exempt: list[str],
                 lengths: list[int] | None = None) -> None:
        self.own = [_real(f) for f in own]  # this side's tree roots (rootdir, git top level)
        self.other = [_real(f) for f in other]
        self.exempt = [_real(f) for f in exempt] + environment_folders()
        # how this side spells its roots on the import path: as long as the other side's
        self.spelled = [padded(root, n) for root, n in zip(self.own, lengths or [])]

    def owner(self, path: str) -> str:
        """'own', 'other' or '' (neither tree, or an interpreter folder). The deepest folder
        holding `path` decides: a virtualenv inside the repository is the interpreter's, a
        repository under the interpreter's prefix (/usr/src/app with prefix /usr) a tree."""
        real = _real(path)
        best, side = "", ""
        for name, roots in (("", self.exempt), ("own", self.own), ("other", self.other)):
            for root in roots:
                if _under(real, root) and len(root) > len(best):
                    best, side = root, name
        return side

    def mapped(self, entry: str) -> str | None:
        """A sys.path entry of the other side's tree on this side's, or None."""
        real = _real(entry)
        for root, mine in zip(self.other, self.own):
            if _under(real, root):
                candidate = os.path.join(mine, os.path.relpath(real, root))
                return self.spelling(candidate) if os.path.isdir(candidate) else None
        return None

    def spelling(self, entry: str) -> str:
        """`entry` of this side's tree with its root spelled as `spelled` says."""
        real = _real(entry)
        best = -1
        for index, root in enumerate(self.own[:len(self.spelled)]):
            if _under(real, root) and (best < 0 or len(root) > len(self.own[best])):
                best = index
        if best < 0:
            return entry
        rest = os.path.relpath(real, self.own[best])
        return self.spelled[best] if rest == os.curdir else f"{self.spelled[best]}/{rest}"

    def import_path(self, harness: str, first: list[str]) -> list[str]:
        """harness, this side's folders, then the interpreter's path with entries of the other
        side's tree mapped onto this side's (or dropped when this side has no such folder)."""
        path = [harness, *(self.spelling(folder) for folder in first)]
        for entry in sys.path[1:]:
            if not entry:
                continue
            owner = self.owner(entry)
            if owner == "other":
                entry = self.mapped(entry) or ""
            elif owner == "own":
                entry = self.spelling(entry)
            if entry and entry not in path:
                path.append(entry)
        return path


def leaks(layout: SideLayout) -> list[tuple[str, str, str]]:
    """(module, file, how it came) for every loaded module whose file is in the other tree."""
    found = []
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and layout.owner(origin) == "other":
            found.append((name, origin, _how_imported(name, origin)))
    return sorted(found)


def _how_imported(name: str, origin: str) -> str:
    """The sys.path entry, .pth file or import hook that made `origin` importable."""
    real = _real(origin)
    for entry in sys.path:
        if entry and _under(real, _real(entry)):
            pth = _pth_naming(entry)
            if pth:
                kind = "an editable install's " if "__editable__" in pth else ""
                return f"the sys.path entry {entry} from {kind}.pth file {pth}"
            if entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
                return f"the PYTHONPATH entry {entry}"
            return f"the sys.path entry {entry}"
    for finder in sys.meta_path:
        module = getattr(finder, "__module__", "") or type(finder).__module__
        if module.startswith(("importlib", "_frozen_importlib", "six", "_distutils_hack")):
            continue
        hook = getattr(sys.modules.get(module), "__file__", module)
        kind = "an editable install's import hook" if "__editable__" in module else "the import hook"
        return f"{kind} {module} ({hook})"
    return "an import hook"


def _pth_naming(entry: str) -> str:
    for folder in environment_folders():
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            try:
                lines = Path(folder, name).read_text(errors="replace").splitlines()
            except OSError:
                continue
            if any(line.strip() and _real(os.path.join(folder, line.strip())) == _real(entry)
                   for line in lines if not line.startswith(("#", "import"))):
                return os.path.join(folder, name)
    return ""
