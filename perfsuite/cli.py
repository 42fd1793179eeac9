"""The `perfsuite` command: set a repository up (`init`), look after its artifact cache
(`cache`), say what this machine is and whether it is fit to time (`machine`), merge several
machines' results into one report (`merge`) and plot each benchmark over time (`history`).
Running the suite is plain `pytest`.

Errors print one message naming the thing and the fix, and exit 2; nothing the user had is
overwritten.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from perfsuite.config.workflow import WORKFLOW_PATH, default_branch, install_source, workflow_text
from perfsuite.errors import PerfsuiteError
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

class CliError(PerfsuiteError):
    """A mistake in how `perfsuite` was called or in what it found; exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except PerfsuiteError as exc:
        print(f"perfsuite {args.command}: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfsuite", description="Set up and look after perfsuite in a repository; "
        "`pytest` runs the suite.")
    parser.add_argument("--rootdir", type=Path, default=Path.cwd(),
                        help="the repository's root folder (default: the current folder)")
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="write a starter [tool.perfsuite] configuration and "
                               "a CI workflow; never overwrites")
    source = init.add_mutually_exclusive_group()
    source.add_argument("--torchvision", metavar="NAME", default="mobilenet_v3_small",
                        help="a torchvision model to start with (default: %(default)s)")
    source.add_argument("--factory", metavar="MODULE:CALLABLE",
                        help="your own model: a callable returning a torch.nn.Module")
    init.add_argument("--name", help="the model's name in tables and baselines "
                      "(default: the torchvision name, or the callable's)")
    init.add_argument("--input-shape", default="1,3,224,224", metavar="N,C,H,W",
                      help="the model's input shape (default: %(default)s)")
    init.add_argument("--no-workflow", action="store_true",
                      help=f"do not write {WORKFLOW_PATH}")
    init.set_defaults(run=_init)
    cache = commands.add_parser("cache", help="show the artifact cache's size; --clear empties it")
    cache.add_argument("--clear", action="store_true",
                       help="delete every ONNX file and engine perfsuite cached (rebuilt on the "
                            "next run); other files in the folder are kept")
    cache.set_defaults(run=_cache)
    machine = commands.add_parser("machine", help="print, as JSON, this machine's fingerprint, "
                                  "baseline key, Jetson identity, pre-flight verdicts and a "
                                  "telemetry sample (read through PERFSUITE_SYSFS_ROOT)")
    machine.add_argument("--seconds", type=float, default=1.0,
                         help="length of the telemetry sample (default: %(default)s)")
    machine.set_defaults(run=_machine)
    merge = commands.add_parser("merge", help="one report from several machines' result files "
                                "(pytest --benchmark-json): a table per model, a column per "
                                "machine, with plots")
    merge.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                       help="result JSON files, or folders searched for them")
    merge.add_argument("--out", type=Path, required=True, metavar="FILE",
                       help="the report to write: FILE.html (with plots) or FILE.md")
    merge.set_defaults(run=_merge)
    history = commands.add_parser("history", help="each benchmark's median and tail over time, "
                                  "marking where the gate fired: across a baseline's versions "
                                  "in git, or across saved pytest-benchmark runs")
    history.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                         help="saved runs: JSON files, or folders such as .benchmarks/")
    history.add_argument("--baseline", type=Path, metavar="FILE",
                         help="a committed baseline, e.g. baselines/<machine-key>/baseline.json")
    history.add_argument("--out", type=Path, required=True, metavar="FILE.html")
    history.set_defaults(run=_history)
    return parser


def _root(args: argparse.Namespace) -> Path:
    root: Path = args.rootdir.resolve()
    if not root.is_dir():
        raise CliError(f"--rootdir {str(args.rootdir)!r} | no such folder.\n"
                       "Remedy: run in your repository or point --rootdir at it.")
    return root


def _init(args: argparse.Namespace) -> int:
    """Add [tool.perfsuite] (and the workflow): everything is checked before anything is
    written, the user's pyproject keeps its line endings and comments, and a failure while
    writing the workflow puts pyproject.toml back as it was."""
    root = _root(args)
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


def _cache(args: argparse.Namespace) -> int:
    from perfsuite.backends import BACKEND_TYPES
    from perfsuite.config.settings import load_config
    from perfsuite.models.artifacts import ArtifactCache

    config = load_config(_root(args), list(BACKEND_TYPES))
    cache = ArtifactCache(config.cache_dir)
    usage = cache.usage()
    total = sum(kind.size_bytes for kind in usage)
    print(f"perfsuite cache: {cache.root} ({_megabytes(total)})")
    for kind in usage:
        aside = f", {kind.set_aside} corrupt set aside" if kind.set_aside else ""
        print(f"  {kind.kind:<10} {kind.entries:>4} entries  {_megabytes(kind.size_bytes)}{aside}")
    if not usage:
        print("  empty")
    if args.clear:
        freed = cache.clear()
        print(f"perfsuite cache: cleared {_megabytes(freed)}; the next run rebuilds what it needs.")
    return 0


def _machine(args: argparse.Namespace) -> int:
    import json

    from perfsuite.backends import BACKEND_TYPES, software_packages
    from perfsuite.config.settings import load_config
    from perfsuite.machine.device import resolve_device
    from perfsuite.machine.fingerprint import fingerprint, machine_key
    from perfsuite.machine.preflight import failure_action
    from perfsuite.machine.telemetry import open_telemetry

    if not 0 < args.seconds <= 60:
        raise CliError(f"--seconds {args.seconds!r} | expected a number of seconds above 0, up "
                       "to 60.")
    config = load_config(_root(args), list(BACKEND_TYPES))
    files = system_files()
    machine = fingerprint(files, software_packages())
    telemetry = open_telemetry(files, resolve_device(config.device))
    report = {
        "fingerprint": machine.as_dict(), "machine_key": machine_key(machine),
        "sysfs_root": str(files.root), "telemetry": telemetry.kind, "notice": telemetry.notice,
        "identity": telemetry.identity(),
        "preflight": {"on_failure": failure_action(config.preflight.on_failure),
                      "checks": [c.as_dict() for c in telemetry.checks(config.preflight)]},
        "sample": telemetry.sample(args.seconds),
    }
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


def _report_out(path: Path, kinds: tuple[str, ...]) -> Path:
    """--out: a report file in an existing folder; an existing file only if perfsuite wrote it
    (the real path, symbolic links resolved)."""
    from perfsuite.files import FileRefused, replaceable
    from perfsuite.report.files import is_perfsuite_report

    try:
        real = replaceable(path, is_perfsuite_report, "--out ")
    except FileRefused as exc:
        raise CliError(str(exc)) from exc
    if path.suffix.lower() not in kinds or not real.parent.is_dir():
        raise CliError(f"--out {str(path)!r} | expected a {' or '.join(kinds)} file in an "
                       f"existing folder.\nRemedy: e.g. --out report{kinds[0]}.")
    return real


def _write_out(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise CliError(f"--out {str(path)!r} | cannot be written ({exc.strerror or exc}).\n"
                       "Remedy: name a file in a folder you can write.") from exc


def _merge(args: argparse.Namespace) -> int:
    from perfsuite.report.merge import merged_markdown, merged_page
    from perfsuite.report.run_files import READ_HINT, load_runs

    out = _report_out(args.out, (".html", ".md"))
    skipped: list[str] = []
    runs = load_runs(args.paths, skipped)
    for line in skipped:
        print(f"perfsuite merge: {line}", file=sys.stderr)
    if not runs:
        raise CliError("no perfsuite results in " + ", ".join(map(str, args.paths))
                       + f".\nRemedy: {READ_HINT}.")
    _write_out(out, merged_page(runs) if out.suffix.lower() == ".html" else merged_markdown(runs))
    print(f"perfsuite merge: {len(runs)} runs ({', '.join(sorted({r.machine for r in runs}))}) "
          f"-> {out}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from perfsuite.backends import BACKEND_TYPES
    from perfsuite.config.settings import load_config
    from perfsuite.gate.baseline_gate import policy_for
    from perfsuite.report.history import baseline_versions, history_page, run_versions
    from perfsuite.report.run_files import load_runs

    out = _report_out(args.out, (".html",))
    if bool(args.baseline) == bool(args.paths):
        raise CliError("history | name either --baseline FILE (its versions in git) or saved "
                       "runs (files or folders such as .benchmarks/), not both or neither.")
    notes: list[str] = []
    if args.baseline:
        series, source = baseline_versions(args.baseline, notes), str(args.baseline)
    else:
        series, source = run_versions(load_runs(args.paths, notes)), "saved runs"
    gate = load_config(_root(args), list(BACKEND_TYPES)).gate
    _write_out(out, history_page(series, lambda name: policy_for(gate, name), source, notes))
    for note in notes:
        print(f"perfsuite history: {note}", file=sys.stderr)
    print(f"perfsuite history: {len(series)} benchmarks from {source} -> {out}")
    return 0


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
