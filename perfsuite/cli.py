"""The `perfsuite` command: set a repository up (`init`), look after its artifact cache
(`cache`), say what this machine is and whether it is fit to time (`machine`), merge several
machines' results into one report (`merge`), plot each benchmark over time (`history`) and
find the commit that made it slower (`bisect`).
Running the suite is plain `pytest`.

Errors print one message naming the thing and the fix, and exit 2; nothing the user had is
overwritten.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from perfsuite.config.workflow import WORKFLOW_PATH
from perfsuite.errors import CliError, PerfsuiteError
from perfsuite.files import atomic_write_text
from perfsuite.init_command import run_init
from perfsuite.machine.sysroot import system_files


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
    init.set_defaults(run=lambda args: run_init(args, _root(args)))
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
    bisect = commands.add_parser(
        "bisect", help="which commit made it slower: A/B runs of commits between GOOD and BAD "
        "(git bisect's choice of commits) for the benchmarks that regressed",
        usage="perfsuite bisect [--out FILE] [--first-parent] GOOD BAD [pytest options]")
    bisect.add_argument("--out", type=Path, metavar="FILE",
                        help="also write the report: FILE.html or FILE.md")
    bisect.add_argument("--first-parent", action="store_true",
                        help="follow only the first parent of merges (as git bisect "
                             "--first-parent)")
    bisect.add_argument("good", metavar="GOOD", help="a commit as fast as you expect")
    bisect.add_argument("bad", metavar="BAD", help="a later commit that is slower")
    bisect.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="pytest options",
                        help="passed to each step's pytest run (e.g. --perf-backends torch)")
    bisect.set_defaults(run=_bisect)
    return parser


def _root(args: argparse.Namespace) -> Path:
    root: Path = args.rootdir.resolve()
    if not root.is_dir():
        raise CliError(f"--rootdir {str(args.rootdir)!r} | no such folder.\n"
                       "Remedy: run in your repository or point --rootdir at it.")
    return root


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
    from perfsuite.gate.limits import policy_for
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
    html, steps = history_page(series, lambda name: policy_for(gate, name), source, notes)
    _write_out(out, html)
    for note in notes:
        print(f"perfsuite history: {note}", file=sys.stderr)
    for step in steps:
        print(f"perfsuite history: change point: {step.describe()}")
    print(f"perfsuite history: {len(series)} benchmarks from {source} -> {out}")
    return 0


def _bisect(args: argparse.Namespace) -> int:
    from perfsuite.bisect.command import run_bisect
    from perfsuite.bisect.report import bisect_markdown, bisect_page

    out = _report_out(args.out, (".html", ".md")) if args.out else None
    report = run_bisect(args, _root(args))
    if out is not None:
        _write_out(out, bisect_page(report) if out.suffix.lower() == ".html"
                   else bisect_markdown(report))
        print(f"perfsuite bisect: report -> {out}")
    return 0 if report.benchmarks else 1  # 1: BAD is not slower than GOOD


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
