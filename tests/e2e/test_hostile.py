"""The hostile-input list (docs/reliability.md): every case runs pytest with the perfsuite plugin
in a fresh process and must end with a usage error (4), a clean failure line (1), an interrupted
run (2) or a pass (0) as listed; never a Python traceback or INTERNALERROR, never a changed or
lost file of the user's, never a file written outside the baseline folder and the cache."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch
from tiny_models import TINY_CONFIG

REPO = Path(__file__).resolve().parents[2]
KEY = "hostile"
ARGS = ("-p", "no:cacheprovider", "--perf-backends=torch", "--perf-precisions=fp32",
        f"--perf-machine-key={KEY}", "--perf-suite=only", "-k", "test_size or test_latency")
ONNX_ARGS = ("-p", "no:cacheprovider", "--perf-backends=torch,onnxruntime",
             "--perf-precisions=fp32", f"--perf-machine-key={KEY}", "--perf-suite=only",
             "-k", "test_agreement")
BASELINE = Path("baselines") / KEY / "baseline.json"
# What a traceback looks like in pytest's output: Python's header, pytest's INTERNALERROR, a
# chained-exception line, or a frame location `file.py:LINE: ExceptionName`.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|INTERNALERROR|The above exception|"
                       r"During handling of|^\S+\.py:\d+: \w+(Error|Exception)\b", re.MULTILINE)


@dataclass(frozen=True)
class Hostile:
    """One hostile run: `prepare(project, cache)` sets it up and returns the pytest arguments."""

    id: str
    prepare: Callable[[pytest.Pytester, Path], tuple[str, ...]]
    exit_code: int
    says: tuple[str, ...]  # fnmatch patterns the output must hold (naming the thing and the fix)
    env: dict[str, str] = field(default_factory=dict)
    recorded_first: bool = False  # a baseline is recorded before the hostile run
    check: Callable[[pytest.Pytester, Path], None] | None = None  # what else must hold after


def _config(pytester: pytest.Pytester, text: str) -> None:
    pytester.makefile(".toml", pyproject=text)


def _edit_baseline(pytester: pytest.Pytester, edit: Callable[[dict], None]) -> None:
    path = pytester.path / BASELINE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))  # json writes NaN and Infinity, as a hand edit might


def _first_recording(data: dict) -> dict:
    return next(iter(data["latency"].values()))[0]


def _config_case(id: str, old: str, new: str, says: str) -> Hostile:
    def prepare(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
        assert old in TINY_CONFIG
        _config(pytester, TINY_CONFIG.replace(old, new, 1))
        return ARGS
    return Hostile(id, prepare, 4, (says,))


def _baseline_case(id: str, edit: Callable[[dict], None], says: str, code: int = 4,
                   option: str = "--benchmark-compare") -> Hostile:
    def prepare(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
        _edit_baseline(pytester, edit)
        return (*ARGS, option)
    return Hostile(id, prepare, code, (says,), recorded_first=True)


def _args_case(id: str, args: tuple[str, ...], code: int, says: str,
               env: dict[str, str] | None = None) -> Hostile:
    return Hostile(id, lambda pytester, cache: args, code, (says,), env or {})


def _not_utf8(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    """Through PERFSUITE_CONFIG: pytest itself reads pyproject.toml first and fails on it with
    its own traceback, before any plugin runs."""
    (pytester.path / "perfsuite.toml").write_bytes(TINY_CONFIG.encode() + b"# caf\xe9\n")
    return ARGS


def _factory(source: str) -> Callable[[pytest.Pytester, Path], tuple[str, ...]]:
    def prepare(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
        _config(pytester, TINY_CONFIG.replace("tiny_models:tiny_cnn", "acme:build"))
        pytester.makepyfile(acme=source)
        return ARGS
    return prepare


def _wrong_weights(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    torch.save({"0.weight": torch.zeros(2, 2)}, pytester.path / "wrong.pt")
    _config(pytester, TINY_CONFIG + 'weights = "wrong.pt"\n')
    return ARGS


def _named(name: str) -> Callable[[pytest.Pytester, Path], tuple[str, ...]]:
    def prepare(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
        _config(pytester, TINY_CONFIG.replace('name = "tiny"', f"name = {json.dumps(name)}"))
        return ONNX_ARGS
    return prepare


def _key_is_a_file(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    (pytester.path / "baselines").mkdir()
    (pytester.path / "baselines" / KEY).write_text("not a folder\n")
    return (*ARGS, "--perf-save-baseline")


def _baseline_is_a_folder(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    (pytester.path / BASELINE).mkdir(parents=True)
    return (*ARGS, "--benchmark-compare")


def _garbage_baseline(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    (pytester.path / BASELINE).write_bytes(b"{\"schema\": 2, \xff")
    return (*ARGS, "--benchmark-compare")


def _cache_is_a_file(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    cache.write_text("a file where the cache folder should be\n")
    return ONNX_ARGS


def _corrupt_cache_entry(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    onnx_files = sorted(cache.rglob("*.onnx"))
    assert onnx_files, "the recording run exported ONNX files"
    for path in onnx_files:
        path.write_bytes(b"not an onnx file")
    return ONNX_ARGS


def _stale_leftovers(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    """What SIGKILL leaves: a temporary baseline file and a cache staging folder, an hour old."""
    temporary = pytester.path / BASELINE.parent / ".baseline.json.perfsuite-tmp-k1ll3d"
    temporary.write_text("")
    entry = sorted(p for p in (cache / "onnx").iterdir() if p.is_dir())[0]
    staging = entry.with_name(f".{entry.name}.k1ll3d")
    staging.mkdir()
    old = time.time() - 2 * 3600
    for path in (temporary, staging):
        os.utime(path, (old, old))
    return (*ARGS, "--perf-add-recording")


def _leftovers_removed(pytester: pytest.Pytester, cache: Path) -> None:
    left = [p for folder in (pytester.path, cache) for p in folder.rglob("*k1ll3d")]
    assert not left, f"a killed run's leftovers stayed: {left}"


def _interrupt(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    pytester.makepyfile(test_zz_interrupt="def test_interrupt():\n    raise KeyboardInterrupt\n")
    return ("-p", "no:cacheprovider", "--perf-backends=torch", "--perf-precisions=fp32",
            f"--perf-machine-key={KEY}", "--perf-suite=on", "--perf-save-baseline",
            "-k", "test_size or test_interrupt")


def _nan(data: dict) -> None:
    _first_recording(data)["e2e"]["median_ms"] = math.nan


def _zero_size(data: dict) -> None:
    sizes = next(iter(data["sizes"].values()))
    sizes[next(iter(sizes))] = 0


def _negative_latency(data: dict) -> None:
    _first_recording(data)["e2e"]["trial_medians_ms"] = [-1.0]


def _inf_drift(data: dict) -> None:
    data["drift"] = {"tiny-onnxruntime-fp32": {"max_abs_diff": math.inf}}


def _other_machine(data: dict) -> None:
    data["machine_key"] = "some-other-runner"


def _old_schema(data: dict) -> None:
    data["schema"] = 1


HOSTILE = [
    # configuration
    _config_case("config-nan-limit", "warmup_min_runs = 1",
                 "warmup_min_runs = 1\n[tool.perfsuite.gate]\nmax_increase = nan", "*max_increase*"),
    _config_case("config-inf-warmup", "warmup_seconds = 0.0", "warmup_seconds = inf",
                 "*warmup_seconds*finite*"),
    _config_case("config-unknown-key", "trials = 1", "trails = 1", "*'trails'*Valid keys*"),
    _config_case("config-bad-toml", "[tool.perfsuite.timing]", "[tool.perfsuite.timing",
                 "*pyproject.toml*"),
    _config_case("config-huge-input", "[1, 3, 16, 16]", "[1, 3, 65536, 65536]",
                 "*input_shape*more than*"),
    _config_case("config-two-inputs", "[1, 3, 16, 16]", "[[1, 3, 16, 16], [1, 8]]",
                 "*lists 2 inputs*"),
    Hostile("config-not-utf8", _not_utf8, 4, ("*perfsuite.toml*UTF-8*",),
            {"PERFSUITE_CONFIG": "perfsuite.toml"}),
    _args_case("config-env-missing-file", ARGS, 4, "*PERFSUITE_CONFIG*",
               {"PERFSUITE_CONFIG": "no/such/perfsuite.toml"}),
    _args_case("option-unknown-backend", (*ARGS, "--perf-backends=tensorflow"), 4,
               "*tensorflow*Valid values*"),
    _args_case("option-zero-rounds", (*ARGS, "--perf-rounds=0"), 4, "*rounds*"),
    # models
    Hostile("model-missing-weights",
            lambda p, c: (_config(p, TINY_CONFIG + 'weights = "nope.pt"\n'), ARGS)[1], 1,
            ("*weights file*nope.pt*does not exist*", "Remedy: fix the `weights` path*")),
    Hostile("model-wrong-weights", _wrong_weights, 1, ("*weights file*wrong.pt*",)),
    Hostile("model-factory-raises", _factory("def build():\n    raise RuntimeError('boom')\n"), 1,
            ("*factory 'acme:build' raised RuntimeError: boom*",)),
    Hostile("model-factory-syntax-error", _factory("def build(:\n    pass\n"), 1,
            ("*factory 'acme:build' cannot be resolved: invalid syntax (acme.py, line 1)*",)),
    Hostile("model-factory-missing", _factory("def other():\n    pass\n"), 1, ("*acme:build*",)),
    Hostile("model-not-a-module", _factory("def build():\n    return 'a string'\n"), 1,
            ("*acme:build*",)),
    Hostile("model-name-250-chars", _named("m" * 250), 0, ("*passed*",)),
    Hostile("model-name-cjk", _named("模" * 90), 0, ("*passed*",)),
    Hostile("model-name-path", _named("../../outside/evil"), 0, ("*passed*",)),
    # baselines
    _baseline_case("baseline-nan-latency", _nan, "*median_ms must be a finite number*"),
    _baseline_case("baseline-zero-size", _zero_size, "*must be a whole number of bytes of at least 1*"),
    _baseline_case("baseline-negative-latency", _negative_latency, "*trial_medians_ms*"),
    _baseline_case("baseline-inf-drift", _inf_drift, "*max_abs_diff must be a finite number*"),
    _baseline_case("baseline-old-schema", _old_schema, "*schema 1, expected 2*"),
    _baseline_case("baseline-other-machine", _other_machine, "*some-other-runner*", code=1),
    Hostile("baseline-not-json", _garbage_baseline, 4, ("*baseline.json*cannot be read*",),
            recorded_first=True),
    Hostile("baseline-is-a-folder", _baseline_is_a_folder, 4, ("*baseline.json*",)),
    Hostile("baseline-key-folder-is-a-file", _key_is_a_file, 1,
            ("*ERROR: baseline NOT written: */baselines/hostile: File exists; the previous*",)),
    _args_case("baseline-compare-without-one", (*ARGS, "--benchmark-compare"), 4,
               "*--benchmark-compare needs a baseline*"),
    # names that become paths, reports
    _args_case("machine-key-escape", (*ARGS, "--perf-machine-key=../escape",
                                      "--perf-save-baseline"), 4, "*'../escape'*folder*"),
    _args_case("machine-key-env-absolute", (*ARGS[:4], *ARGS[5:], "--perf-save-baseline"), 4,
               "*PERFSUITE_MACHINE_KEY*", {"PERFSUITE_MACHINE_KEY": "/tmp/perfsuite-escape"}),
    _args_case("report-missing-folder", (*ARGS, "--perf-report=missing/report.md"), 4,
               "*its folder does not exist*"),
    _args_case("report-is-a-folder", (*ARGS, "--perf-report=."), 4, "*is a folder*"),
    # the artifact cache
    Hostile("cache-is-a-file", _cache_is_a_file, 1,
            ("*artifact cache*cannot create*Not a directory*", "Remedy: set PERFSUITE_CACHE_DIR*")),
    Hostile("cache-corrupt-entry", _corrupt_cache_entry, 0, ("*passed*",), recorded_first=True),
    Hostile("killed-run-leftovers", _stale_leftovers, 0, ("*baseline written*",),
            recorded_first=True, check=_leftovers_removed),
    # pytest-benchmark options, A/B, interruption
    _args_case("compare-fail-with-perf-baseline",
               (*ARGS, "--benchmark-compare", "--benchmark-compare-fail=median:5%"), 4,
               "*max_increase*"),
    _args_case("ab-not-a-git-repository", (*ARGS, "--perf-ab=HEAD"), 4, "*git*"),
    Hostile("interrupted-recording", _interrupt, 2, ("*KeyboardInterrupt*",), recorded_first=True),
]


# -- round 3 ---------------------------------------------------------------------------------
def _report_to(target: str, text: str | None = None) -> Callable[[pytest.Pytester, Path], tuple[str, ...]]:
    def prepare(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
        if text is not None:
            (pytester.path / target).write_text(text)
        return (*ARGS, f"--perf-report={target}")
    return prepare


def _device_kept(pytester: pytest.Pytester, cache: Path) -> None:
    import stat

    assert stat.S_ISCHR(os.stat("/dev/full").st_mode), "/dev/full is still a device"


def _deep_baseline(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    (pytester.path / BASELINE).write_text("[" * 200_000 + "]" * 200_000)
    return (*ARGS, "--benchmark-compare")


def _tool_not_a_table(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    (pytester.path / "perfsuite.toml").write_text('tool = "x"\n')
    return ARGS


def _half_size(data: dict) -> None:
    sizes = next(iter(data["sizes"].values()))
    sizes[next(iter(sizes))] = 0.5


def _nan_sample(data: dict) -> None:
    _first_recording(data)["samples_ms"] = [math.nan, 1.0]


def _orin_fingerprint(data: dict) -> None:
    data["machine"]["jetson_model"] = "NVIDIA Jetson AGX Orin Developer Kit"


def _unknown_fields(data: dict) -> None:
    data["notes"] = "recorded after the driver update"
    _first_recording(data)["comment"] = "the quiet night run"


def _unknown_fields_kept(pytester: pytest.Pytester, cache: Path) -> None:
    data = json.loads((pytester.path / BASELINE).read_text())
    assert data["notes"] == "recorded after the driver update"
    comments = [r.get("comment") for rs in data["latency"].values() for r in rs]
    assert "the quiet night run" in comments and len(comments) > len(data["latency"])


def _linked_baselines(pytester: pytest.Pytester, cache: Path) -> tuple[str, ...]:
    outside = pytester.path.parent / "outside-baselines"
    outside.mkdir()
    (pytester.path / "baselines").symlink_to(outside)
    return (*ARGS, "--perf-save-baseline")


def _nothing_outside(pytester: pytest.Pytester, cache: Path) -> None:
    assert not list((pytester.path.parent / "outside-baselines").iterdir())


def _model(body: str) -> Callable[[pytest.Pytester, Path], tuple[str, ...]]:
    return _factory("import os\nimport sys\n\nimport torch\nfrom torch import nn\n\n\n"
                    f"def build():\n    {body}\n    return nn.Sequential(nn.Conv2d(3, 4, 3), "
                    "nn.Flatten())\n")


ROUND_3 = [
    Hostile("report-device", _report_to("/dev/full"), 4, ("*/dev/full | is a character device*",),
            check=_device_kept),
    Hostile("report-users-file", _report_to("NOTES.md", "# my notes\n"), 4,
            ("*NOTES.md | exists and was not written by perfsuite; left as it is.",)),
    Hostile("baseline-deep-json", _deep_baseline, 4, ("*cannot be read as a perfsuite baseline "
                                                      "(RecursionError*",), recorded_first=True),
    Hostile("config-tool-not-a-table", _tool_not_a_table, 4, ("*`tool` is str 'x', not a table*",),
            {"PERFSUITE_CONFIG": "perfsuite.toml"}),
    _baseline_case("baseline-half-byte-size", _half_size, "*whole number of bytes of at least 1*"),
    _baseline_case("baseline-nan-sample", _nan_sample, "*samples_ms must be a finite number*"),
    _baseline_case("baseline-other-machines-fingerprint", _orin_fingerprint,
                   "*machine jetson_model: NVIDIA Jetson AGX Orin Developer Kit -> none*", code=1),
    Hostile("baseline-unknown-fields", lambda p, c: (_edit_baseline(p, _unknown_fields),
                                                     (*ARGS, "--perf-add-recording"))[1], 0,
            ("*baseline written*",), recorded_first=True, check=_unknown_fields_kept),
    Hostile("baselines-linked-outside", _linked_baselines, 1,
            ("*baseline NOT written: *outside the repository*",
             "*PERFSUITE_BASELINES_ANYWHERE=1*"), check=_nothing_outside),
    Hostile("model-factory-sys-exit", _model("sys.exit(0)"), 1, ("*called sys.exit(0)*",)),
    Hostile("model-factory-os-exit", _model("os._exit(0)"), 1, ("*called os._exit(0)*",)),
    Hostile("model-factory-default-dtype", _model("torch.set_default_dtype(torch.float64)"), 1,
            ("*changed torch's global state: default dtype: torch.float32 -> torch.float64*",)),
    Hostile("model-without-parameters", _factory("from torch import nn\n\n\ndef build():\n"
                                                 "    return nn.Flatten()\n"), 1,
            ("*returned a model with no parameters or buffers*",)),
    _args_case("option-huge-rounds", (*ARGS, "--perf-rounds=99999999999999999999"), 4,
               "*--perf-rounds | 99999999999999999999 is above perfsuite's limit of 100000: "
               "at 10 ms each, about * days per benchmark*"),
]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a digest of its bytes; bytecode caches and what pytester
    itself writes (the run's output, its basetemp) aside."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not _pytesters(p, folder)}


def _pytesters(path: Path, folder: Path) -> bool:
    parts = path.relative_to(folder).parts
    return ("__pycache__" in parts or parts[0] in ("stdout", "stderr")
            or parts[0].startswith("runpytest-"))


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    _config(pytester, TINY_CONFIG)
    pytester.makeini("[pytest]\naddopts = -ra\n")
    shutil.copy(REPO / "tests" / "tiny_models.py", pytester.path / "tiny_models.py")
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    # ONNX Runtime keeps a device id under ~/.cache/Microsoft; pytester's HOME is the project
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return pytester


HOSTILE += ROUND_3


@pytest.mark.parametrize("case", HOSTILE, ids=[case.id for case in HOSTILE])
def test_hostile_input(project, tmp_path, monkeypatch, case):
    cache = tmp_path / "cache"
    if case.recorded_first:
        recorded = project.runpytest_subprocess(*ONNX_ARGS[:-2], "-k",
                                                "test_size or test_latency or test_agreement",
                                                "--perf-save-baseline")
        assert recorded.ret == 0, recorded.stdout.str()
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    args = case.prepare(project, cache)
    before = _snapshot(project.path)
    outside_before = _names(tmp_path.parent)

    result = project.runpytest_subprocess(*args)

    output = result.stdout.str() + "\n" + result.stderr.str()
    assert not TRACEBACK.search(output), f"a traceback in {case.id}:\n{output}"
    assert result.ret == case.exit_code, output
    for pattern in case.says:
        assert any(fnmatch(line, pattern) for line in output.splitlines()), \
            f"{case.id}: {pattern!r} not in\n{output}"
    after = _snapshot(project.path)
    baselines = str(BASELINE.parent)
    changed = {p for p in before if p in after and before[p] != after[p]}
    lost = {p for p in before if p not in after and not _cleaned_leftover(p)}
    added = {p for p in after if p not in before}
    if not (result.ret == 0 and "--perf-add-recording" in args):
        assert not changed, f"{case.id} changed the user's files: {changed}"
    assert not lost, f"{case.id} removed the user's files: {lost}"
    assert all(p.startswith(baselines) for p in added), f"{case.id} wrote {added}"
    allowed = (f"{tmp_path.name}/cache", f"{tmp_path.name}/home", f"{project.path.name}/")
    strays = {p for p in _names(tmp_path.parent) - outside_before if not p.startswith(allowed)}
    assert not strays, f"{case.id} wrote outside the project and the cache: {strays}"
    assert not Path("/tmp/perfsuite-escape").exists()
    if case.check is not None:
        case.check(project, cache)


def _names(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts}


def _cleaned_leftover(path: str) -> bool:
    return path.endswith("k1ll3d")


def test_reliability_doc_lists_every_case():
    """docs/reliability.md describes each case of the list, and nothing the list lacks."""
    text = (REPO / "docs" / "reliability.md").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.MULTILINE))
    assert documented == {case.id for case in HOSTILE}


def test_two_concurrent_recordings_both_land(project, tmp_path):
    """--perf-add-recording of torch and of ONNX Runtime at once: each run reads, merges and
    writes the baseline under the folder's lock at its end, so neither recording is lost (before,
    both printed "baseline written" and the later write dropped the earlier run's)."""
    common = ("-p", "no:cacheprovider", "--perf-precisions=fp32", f"--perf-machine-key={KEY}",
              "--perf-suite=only", "-k", "test_latency", "--perf-add-recording")
    runs = [project.popen([sys.executable, "-m", "pytest", *common, f"--perf-backends={b}"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            for b in ("torch", "onnxruntime")]
    outputs = [run.communicate(timeout=600)[0].decode() for run in runs]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output
        assert "baseline written" in output
    latency = json.loads((project.path / BASELINE).read_text())["latency"]
    assert {name.split("-")[1] for name in latency} == {"torch", "onnxruntime"}, sorted(latency)
