"""`perfsuite init`: set a repository up for perfsuite: a starter `[tool.perfsuite]` table in its
pyproject.toml (the precisions this machine computes natively) and the GitHub Actions workflow.
Nothing the user had is overwritten; a half-done init is undone."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from pathlib import Path

from perfsuite.config.workflow import WORKFLOW_PATH, default_branch, install_source, workflow_text
from perfsuite.errors import CliError
from perfsuite.files import atomic_write_text
from perfsuite.machine.device import cuda_capability, native_precisions
from perfsuite.machine.sysroot import system_files

CONFIG_TEMPLATE = """
# perfsuite: `pytest` runs latency, agreement, drift and size for these models.
# Every key and its default: the Reference section of perfsuite's README.
[tool.perfsuite]
device = "auto"  # cuda when torch sees a GPU, else cpu
backends = ["torch", "torch-cudagraph", "onnxruntime", "tensorrt"]
precisions = {precisions}  # {why}

[[tool.perfsuite.models]]
name = "{name}"
{source}
input_shape = {shape}
"""


def run_init(args: argparse.Namespace, root: Path) -> int:
    """Add [tool.perfsuite] (and the workflow): everything is checked before anything is
    written, the user's pyproject keeps its line endings and comments, and a failure while
    writing the workflow puts pyproject.toml back as it was."""
    shape = _shape(args.input_shape)
    if args.factory:
        if not FACTORY.fullmatch(args.factory):
            raise CliError(f"--factory {args.factory!r} | expected 'module:callable' (Python "
                           "names, dots allowed), e.g. my_models:build.")
        name = args.name or args.factory.partition(":")[0].rpartition(".")[2]
        source = f'factory = "{args.factory}"  # importable from this folder'
    else:
        _check_torchvision(args.torchvision)
        name = args.name or args.torchvision
        source = f'torchvision = "{args.torchvision}"'
    if not MODEL_NAME.fullmatch(name):
        raise CliError(f"--name {name!r} | a model name is 1 to 100 characters without quotes, "
                       "backslashes or control characters (it goes into pyproject.toml as a "
                       "string).\nRemedy: e.g. --name my-model.")
    precisions, why = _precisions()
    config = CONFIG_TEMPLATE.format(name=name, source=source, shape=list(shape),
                                    precisions=json.dumps(list(precisions)), why=why)
    pyproject = root / "pyproject.toml"
    workflow = root / WORKFLOW_PATH
    existing = _read_pyproject(pyproject)
    if _has_perfsuite_table(existing, pyproject):
        raise CliError(f"{pyproject} | already has a [tool.perfsuite] table; left as it is.\n"
                       "Remedy: edit it, or remove the table to start again.")
    if not args.no_workflow:
        _check_workflow_path(root, workflow)
    newline = "\r\n" if "\r\n" in existing else "\n"
    text = existing + (newline if existing and not existing.endswith("\n") else "") + \
        config.lstrip("\n" if not existing else "").replace("\n", newline)
    _check_toml(text, pyproject)
    _write(pyproject, text)
    print(f"perfsuite init: {'added [tool.perfsuite] to' if existing else 'wrote'} {pyproject}")
    if not args.no_workflow:
        install, origin = install_source()
        try:
            workflow.parent.mkdir(parents=True, exist_ok=True)
            _write(workflow, workflow_text(default_branch(root), install, origin))
        except (CliError, OSError) as exc:
            _undo(pyproject, existing)
            raise CliError(f"{workflow} | cannot be written ({_why(exc)}); {pyproject} was put "
                           "back as it was.\nRemedy: make the folder writable, or pass "
                           "--no-workflow.") from exc
        print(f"perfsuite init: wrote {workflow} (installs {install} on the runner; edit "
              f"PERFSUITE_INSTALL there to change it)")
    print("Next: `pytest` runs the suite here; `pytest --perf-save-baseline` records this "
          "machine's baseline (commit baselines/); `pytest --benchmark-compare` gates on it.")
    return 0


FACTORY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:"
                     r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MODEL_NAME = re.compile(r'[^"\\\x00-\x1f\x7f]{1,100}')  # a TOML string's text as it is


def _check_torchvision(name: str) -> None:
    """A torchvision name that torchvision (where installed) knows."""
    try:
        from torchvision.models import list_models
    except ImportError:  # checked when the suite builds the model
        return
    known = list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        raise CliError(f"--torchvision {name!r} | torchvision has no such model"
                       + (f" (did you mean {', '.join(close)}?)" if close else "") +
                       ".\nRemedy: pick one of torchvision.models.list_models(), e.g. "
                       "mobilenet_v3_small.")


def _read_pyproject(path: Path) -> str:
    """The existing pyproject.toml's text, exactly (CRLF kept); '' when there is none."""
    if path.is_symlink() and not path.exists():
        raise CliError(f"{path} | is a symbolic link to {os.readlink(path)}, which does not "
                       "exist; left as it is.\nRemedy: fix or remove the link.")
    if path.exists() and not path.is_file():
        raise CliError(f"{path} | is not a regular file (a folder?); left as it is.\n"
                       "Remedy: move it away, or run init in another folder.")
    if not path.exists():
        return ""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} | is not UTF-8 text (byte {exc.start}); TOML files are UTF-8; "
                       "left as it is.\nRemedy: save it as UTF-8, then run init again.") from exc
    except OSError as exc:
        raise CliError(f"{path} | cannot be read ({exc.strerror}).") from exc


def _check_workflow_path(root: Path, workflow: Path) -> None:
    if workflow.exists() or workflow.is_symlink():
        raise CliError(f"{workflow} | already exists; left as it is.\n"
                       "Remedy: pass --no-workflow, or move the file away.")
    for folder in reversed(workflow.relative_to(root).parents):
        where = root / folder
        if where.exists() and not where.is_dir():
            raise CliError(f"{where} | is a file where the workflow's folder goes; nothing was "
                           "written.\nRemedy: move it away, or pass --no-workflow.")


def _write(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise CliError(f"{path} | cannot be written ({_why(exc)}); left as it was.\n"
                       "Remedy: run init where you can write (not a read-only checkout).") \
            from exc


def _undo(pyproject: Path, existing: str) -> None:
    try:
        if existing:
            atomic_write_text(pyproject, existing)
        else:
            pyproject.unlink()
    except OSError:  # pragma: no cover - it was just written
        pass


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc).splitlines()[0]


def _precisions() -> tuple[tuple[str, ...], str]:
    """What this machine computes natively, and the comment that says so."""
    capability = cuda_capability()
    native = native_precisions(system_files().text("proc/cpuinfo") or "", capability)
    where = (f"a GPU of compute capability {capability[0]}.{capability[1]}" if capability
             else "this CPU")
    missing = [p for p in ("fp16", "bf16") if p not in native]
    if not missing:
        return native, f"what {where} computes natively"
    return native, (f"what {where} computes natively; {' and '.join(missing)} would be emulated "
                    f"(slow): add them to time them anyway")


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise CliError(f"--input-shape {text!r} | expected positive integers such as "
                       "1,3,224,224.")
    return shape


def _has_perfsuite_table(text: str, path: Path) -> bool:
    tool = _check_toml(text, path).get("tool", {}) if text else {}
    if not isinstance(tool, dict):
        raise CliError(f"{path} | `tool` is {type(tool).__name__} {tool!r}, not a table.\n"
                       "Remedy: write tables under [tool.NAME] first; init adds "
                       "[tool.perfsuite].")
    return "perfsuite" in tool


def _check_toml(text: str, path: Path) -> dict:  # type: ignore[type-arg]
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise CliError(f"{path} | is not valid TOML ({exc or 'nested too deeply'}); left as it "
                       "is.\nRemedy: fix the file first.") from exc
