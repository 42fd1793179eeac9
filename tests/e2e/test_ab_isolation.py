"""--perf-ab runs each side in its own worker process: every module a factory imports comes from
that side's tree (helper modules, a library under src/, submodules, editable installs), a worker
that crashes or hangs stops only its side, and no worker outlives pytest.

Costs are fixed by construction (a Spin layer advances a virtual clock, the benchmark timer, in
each worker), so verdicts do not depend on machine load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.e2e.test_ab import ARGS, VCLOCK, git
from tests.e2e.test_ab import PYPROJECT as AB_PYPROJECT

# test_ab's project with one precision; `{ab}` takes more [tool.perfsuite.ab] keys
PYPROJECT = AB_PYPROJECT.replace('["fp32", "fp16"]', '["fp32"]').replace(
    "pairs = 20\n", "pairs = 20\n{ab}\n")
# The factory's module imports its cost from SPIN_FROM (a module of another top-level name, a
# library under src/, a submodule's package, a package of the environment).
MODELS = """
import os
import signal
import time

from torch import nn

import vclock
from {spin_from} import SPIN_MS


class Spin(nn.Module):
    def forward(self, x):
        vclock.advance(SPIN_MS / 1e3)
        return x


def build():
    {body}
    return nn.Sequential(Spin(), nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
"""
SLOWED = "perfsuite A/B | tiny-torch-fp32 end to end vs HEAD REGRESSED: x10.000*"


def make_repo(pytester, tmp_path, monkeypatch, spin_from="helpers", body="pass", ab="",
              files=None) -> Path:
    """A git repository whose factory takes SPIN_MS from `spin_from`; `files` adds or replaces
    files (path -> text) before the first commit."""
    pytester.makefile(".toml", pyproject=PYPROJECT.format(ab=ab))
    pytester.makepyfile(vclock=VCLOCK, models=MODELS.format(spin_from=spin_from, body=body))
    for name, text in {"helpers.py": "SPIN_MS = 1.0\n", **(files or {})}.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(tmp_path / "cache"))
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "base")
    return pytester.path


def run_ab(pytester, *extra):
    return pytester.runpytest_subprocess(*ARGS, "--perf-ab=HEAD", *extra)


def assert_no_traceback(result):
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text, text[-3000:]


# -- (a), (b), (c): where the slowed code lives -------------------------------------------------
def test_slowdown_in_a_helper_module_of_another_name_is_caught(pytester, tmp_path, monkeypatch):
    repo = make_repo(pytester, tmp_path, monkeypatch)
    (repo / "helpers.py").write_text("SPIN_MS = 10.0\n")  # uncommitted
    result = run_ab(pytester)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([SLOWED, "FAILED *test_latency?tiny-torch-fp32?*"])


def test_slowdown_in_a_library_under_src_is_caught(pytester, tmp_path, monkeypatch):
    repo = make_repo(pytester, tmp_path, monkeypatch, spin_from="mylib.costs",
                     files={"src/mylib/__init__.py": "", "src/mylib/costs.py": "SPIN_MS = 1.0\n"})
    (repo / "src/mylib/costs.py").write_text("SPIN_MS = 10.0\n")
    result = run_ab(pytester)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([SLOWED])


def _submodule(tmp_path: Path, spin: float) -> Path:
    sub = tmp_path / "vendor-origin"
    sub.mkdir()
    (sub / "__init__.py").write_text("")
    (sub / "costs.py").write_text(f"SPIN_MS = {spin}\n")
    git(sub, "init", "-q")
    git(sub, "add", "-A")
    git(sub, "commit", "-q", "-m", "vendor")
    return sub


def _add_submodule(repo: Path, origin: Path) -> None:
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(origin), "vendor")
    git(repo, "commit", "-q", "-m", "vendor as a submodule")


def test_slowdown_in_a_git_submodule_is_caught(pytester, tmp_path, monkeypatch):
    repo = make_repo(pytester, tmp_path, monkeypatch, spin_from="vendor.costs")
    _add_submodule(repo, _submodule(tmp_path, 1.0))
    (repo / "vendor/costs.py").write_text("SPIN_MS = 10.0\n")  # uncommitted, in the submodule
    result = run_ab(pytester)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines([SLOWED])


def test_a_submodule_whose_commit_is_missing_is_refused_naming_it(pytester, tmp_path,
                                                                  monkeypatch):
    repo = make_repo(pytester, tmp_path, monkeypatch, spin_from="vendor.costs")
    _add_submodule(repo, _submodule(tmp_path, 1.0))
    git(repo, "submodule", "deinit", "-q", "-f", "vendor")  # a clone without --recursive
    result = run_ab(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--perf-ab=HEAD | REF's submodule vendor records commit *, "
                                 "which this checkout does not have*",
                                 "Remedy: git submodule update --init --recursive*"])
    assert_no_traceback(result)


# -- (d): the repository's own package installed in editable mode ------------------------------
FINDER = """
import importlib.util
import sys

MAPPING = {{"mylib": {folder!r}}}


class EditableFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in MAPPING:
            return importlib.util.spec_from_file_location(
                name, MAPPING[name] + "/__init__.py", submodule_search_locations=[MAPPING[name]])
        return None


def install():
    sys.meta_path.append(EditableFinder)
"""


def thin_venv(folder: Path, extra_pth: dict[str, str]) -> Path:
    """A virtualenv that sees this environment's packages (perfsuite, torch, ...) and holds the
    .pth files and modules given: an editable install is exactly such a .pth file."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    outer = sysconfig.get_paths()["purelib"]
    files = {"zz-outer.pth": f"import site; site.addsitedir({outer!r})\n", **extra_pth}
    for name, text in files.items():
        (Path(site) / name).write_text(text)
    return python


def run_in(python: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["COLUMNS"] = "400"  # the summary's lines unwrapped
    return subprocess.run([str(python), "-m", "pytest", *ARGS, *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_an_editable_install_of_a_src_layout_is_isolated(pytester, tmp_path, monkeypatch):
    repo = make_repo(pytester, tmp_path, monkeypatch, spin_from="mylib.costs",
                     files={"src/mylib/__init__.py": "", "src/mylib/costs.py": "SPIN_MS = 1.0\n"})
    python = thin_venv(tmp_path / "venv", {"__editable__.mylib-0.1.pth": f"{repo / 'src'}\n"})
    (repo / "src/mylib/costs.py").write_text("SPIN_MS = 10.0\n")
    done = run_in(python, repo, "--perf-ab=HEAD")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "tiny-torch-fp32 end to end vs HEAD REGRESSED: x10.000" in done.stdout


def test_an_editable_install_by_import_hook_outside_src_is_refused(pytester, tmp_path,
                                                                   monkeypatch):
    repo = make_repo(pytester, tmp_path, monkeypatch, spin_from="mylib.costs",
                     files={"lib/mylib/__init__.py": "", "lib/mylib/costs.py": "SPIN_MS = 1.0\n"})
    python = thin_venv(tmp_path / "venv", {
        "__editable___mylib_0_1_finder.py": FINDER.format(folder=str(repo / "lib" / "mylib")),
        "__editable__.mylib-0.1.pth": "import __editable___mylib_0_1_finder; "
                                      "__editable___mylib_0_1_finder.install()\n"})
    done = run_in(python, repo, "--perf-ab=HEAD")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:] + done.stderr
    assert ("--perf-ab | HEAD's side imported module mylib from the working tree: "
            f"{repo / 'lib' / 'mylib' / '__init__.py'}") in done.stderr
    assert "an editable install's import hook __editable___mylib_0_1_finder" in done.stderr
    assert "Remedy: keep the package at the repository root or under src/" in done.stderr
    assert "Traceback" not in done.stderr


# -- two environments ---------------------------------------------------------------------------
def _env_with_spinpkg(folder: Path, spin: float) -> Path:
    """A virtualenv holding its own `spinpkg` (the package the model takes its cost from)."""
    python = thin_venv(folder, {})
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "spinpkg.py").write_text(f"SPIN_MS = {spin}\n")
    return python


@pytest.mark.parametrize(("base_spin", "this_spin", "ref"), [
    (1.0, 1.0, "HEAD"), (1.0, 10.0, "HEAD"), (1.0, 10.0, None)])
def test_sides_in_two_environments(pytester, tmp_path, monkeypatch, base_spin, this_spin, ref):
    """REF's side runs in environment A (--perf-ab-python), this tree's side in environment B
    (the one pytest runs in): A/A runs and names both; a slowdown only B's package has is
    caught. Without --perf-ab both sides are the working tree."""
    repo = make_repo(pytester, tmp_path, monkeypatch, spin_from="spinpkg")
    env_a = _env_with_spinpkg(tmp_path / "env-a", base_spin)
    env_b = _env_with_spinpkg(tmp_path / "env-b", this_spin)
    done = run_in(env_b, repo, *([f"--perf-ab={ref}"] if ref else []),
                  f"--perf-ab-python={tmp_path / 'env-a'}")
    text = done.stdout + done.stderr
    assert "Traceback" not in text
    label = os.path.relpath(tmp_path / "env-a", repo)
    label = f"{ref} on {label}" if ref else label
    version = sys.version.split()[0]
    assert f"perfsuite A/B side {label}: Python {version}" in done.stdout, text[-3000:]
    assert f"perfsuite A/B side this tree: Python {version}" in done.stdout
    assert f"({env_a})" in done.stdout and f"({env_b})" in done.stdout
    if base_spin == this_spin:
        assert done.returncode == 0, text[-3000:]
        assert f"{label} 1.000 ms, x1.000 [1.000, 1.000] e2e ok" in done.stdout
        assert f"perfsuite A/B vs {label}: 4 checks, 0 regressed" in done.stdout
    else:
        assert done.returncode == 1, text[-3000:]
        assert f"tiny-torch-fp32 end to end vs {label} REGRESSED: x10.000" in done.stdout


# -- (e), (f) and the other hostile cases ------------------------------------------------------
def test_an_empty_ref_is_a_usage_error(pytester, tmp_path, monkeypatch):
    make_repo(pytester, tmp_path, monkeypatch)
    result = pytester.runpytest_subprocess(*ARGS, "--perf-ab=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--perf-ab= was given an empty value (an unset CI variable?)*"])


@pytest.mark.parametrize(("target", "kept"), [("/etc/hostname", False), ("../outside", False),
                                              ("helpers.py", True)])
def test_links_in_refs_tree(pytester, tmp_path, monkeypatch, target, kept):
    repo = make_repo(pytester, tmp_path, monkeypatch)
    (repo / "data").mkdir()
    os.symlink(target if target.startswith("/") else os.path.join("..", target),
               repo / "data" / "link")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a link")
    result = run_ab(pytester)
    assert_no_traceback(result)
    if kept:
        result.assert_outcomes(passed=2, skipped=1)
        link = next((tmp_path / "cache" / "tree").glob("*/data/link"))
        assert os.readlink(link) == "../helpers.py" and link.resolve().is_file()
        return
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--perf-ab=HEAD | REF's tree holds a symbolic link that leaves "
                                 f"the tree: data/link -> *{target}*"])


ENOSPC = """
import errno
import tarfile


def full(self, tarinfo, targetpath):
    raise OSError(errno.ENOSPC, "No space left on device", targetpath)


tarfile.TarFile.makefile = full
"""


def test_a_full_disk_while_refs_tree_is_extracted_fails_cleanly(pytester, tmp_path, monkeypatch):
    make_repo(pytester, tmp_path, monkeypatch, files={"enospc.py": ENOSPC})
    result = run_ab(pytester, "-p", "enospc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--perf-ab=HEAD | REF's tree cannot be written into the "
                                 "artifact cache *: No space left on device.",
                                 "Remedy: *PERFSUITE_CACHE_DIR*"])
    assert_no_traceback(result)
    assert not list((tmp_path / "cache" / "tree").glob(".*")), "no half-written tree is left"


def test_every_revision_git_accepts_works(pytester, tmp_path, monkeypatch):
    make_repo(pytester, tmp_path, monkeypatch)
    result = pytester.runpytest_subprocess(*ARGS, "--perf-ab=:/base")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["perfsuite A/B vs :/base: * 0 regressed*"])


def test_a_config_only_in_the_working_tree_is_missing_at_ref(pytester, tmp_path, monkeypatch):
    repo = make_repo(pytester, tmp_path, monkeypatch)
    (repo / "perf.toml").write_text(PYPROJECT.format(ab=""))
    monkeypatch.setenv("PERFSUITE_CONFIG", str(repo / "perf.toml"))
    result = run_ab(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--perf-ab=HEAD | PERFSUITE_CONFIG=* is missing at REF (*)*"])


def test_a_relative_config_is_read_from_the_rootdir_at_ref(pytester, tmp_path, monkeypatch):
    """PERFSUITE_CONFIG=perf.toml, run from another folder: REF's side reads REF's copy of the
    file the working tree's run reads (from the rootdir), not one beside the current folder."""
    repo = make_repo(pytester, tmp_path, monkeypatch)
    (repo / "perf.toml").write_text(PYPROJECT.format(ab=""))
    git(repo, "add", "perf.toml")
    git(repo, "commit", "-q", "-m", "a config file")
    (repo / "elsewhere").mkdir()
    monkeypatch.setenv("PERFSUITE_CONFIG", "perf.toml")
    # the rootdir is the repository (named: pytest 8.0 does not take a pyproject.toml without
    # [tool.pytest.ini_options] above the current folder for one; 8.1 and later do)
    done = subprocess.run([sys.executable, "-m", "pytest", *ARGS, "--perf-ab=HEAD",
                           "--perf-suite=only", f"--rootdir={repo}"],
                          cwd=repo / "elsewhere", capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(repo)})  # the timer's module
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "perfsuite A/B vs HEAD: 4 checks, 0 regressed" in done.stdout


def test_a_failing_git_archive_is_a_usage_error_with_gits_words(pytester, tmp_path, monkeypatch):
    make_repo(pytester, tmp_path, monkeypatch)
    shim = tmp_path / "bin" / "git"
    shim.parent.mkdir()
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True,
                          check=True).stdout.strip()
    shim.write_text('#!/bin/sh\nif [ "$3" = archive ]; then echo "fatal: packfile is '
                    f'corrupt" >&2; exit 128; fi\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    result = run_ab(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--perf-ab=HEAD | git archive * failed: fatal: packfile is "
                                 "corrupt.*"])
    assert_no_traceback(result)


BROKEN_WORKER = """#!/bin/sh
case "$2" in
  *ab.worker*) echo "libcudart.so.12: cannot open shared object file" >&2; exit 3 ;;
esac
"{python}" "$@"
exit $?
"""


def test_a_side_whose_worker_cannot_start_is_a_usage_error(pytester, tmp_path, monkeypatch):
    """Nothing could be compared: a green run with no checks would mislead."""
    make_repo(pytester, tmp_path, monkeypatch)
    wrapper = tmp_path / "python-broken"
    wrapper.write_text(BROKEN_WORKER.format(python=sys.executable))
    wrapper.chmod(0o755)
    result = run_ab(pytester, f"--perf-ab-python={wrapper}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--perf-ab | HEAD on *'s worker ({wrapper}) failed to start: *"
                                 "exit status 3*libcudart.so.12*"])
    assert_no_traceback(result)


def test_a_long_silent_build_outlives_the_time_out_where_heartbeats_are_off(pytester, tmp_path,
                                                                          monkeypatch):
    repo = make_repo(pytester, tmp_path, monkeypatch, body="time.sleep(12)",
                     ab="worker_timeout_s = 8")
    (repo / "models.py").write_text(MODELS.format(spin_from="helpers", body="pass"))
    monkeypatch.setenv("PERFSUITE_PROGRESS_SECONDS", "0")
    result = run_ab(pytester)
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["perfsuite A/B vs HEAD: * 0 regressed*"])
    assert "not compared" not in result.stdout.str()


# -- workers that crash, hang, or outlive pytest -----------------------------------------------
@pytest.mark.parametrize(("body", "reason"), [
    # (each worker builds the run's models right after starting: that is where REF's stops)
    # a C-level exit (os._exit itself is refused while a factory runs)
    ("__import__('posix')._exit(3)", "HEAD's worker stopped (exit status 3) while building its "
                                     "models"),
    ("os.kill(os.getpid(), 11)", "HEAD's worker stopped (killed by SIGSEGV) while building its "
                                 "models"),
    # a stopped process says nothing (a sleeping one's heartbeat says it is alive)
    ("os.kill(os.getpid(), signal.SIGSTOP)", "HEAD's worker did not answer within 8 s "
     "([tool.perfsuite.ab] worker_timeout_s) while building its models"),
])
def test_a_worker_that_dies_or_hangs_stops_only_its_side(pytester, tmp_path, monkeypatch, body,
                                                         reason):
    repo = make_repo(pytester, tmp_path, monkeypatch, body=body, ab="worker_timeout_s = 8")
    (repo / "models.py").write_text(MODELS.format(spin_from="helpers", body="pass"))
    result = run_ab(pytester)
    result.assert_outcomes(passed=2, skipped=1)  # this tree's side is measured alone
    result.stdout.fnmatch_lines([f"perfsuite A/B: tiny-torch-fp32 not compared: {reason}"])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_no_worker_outlives_pytest(pytester, tmp_path, monkeypatch, how):
    marker = tmp_path / "building"
    repo = make_repo(pytester, tmp_path, monkeypatch,
                     body=f"open({str(marker)!r}, 'w').close(); time.sleep(600)")
    (repo / "models.py").write_text(MODELS.format(spin_from="helpers", body="pass"))
    # SIGINT as a terminal gives it, even where this run started in the background (`cmd &` in a
    # script ignores SIGINT, and Python then installs no handler for it)
    pytest_run = subprocess.Popen([sys.executable, "-m", "pytest", *ARGS, "--perf-ab=HEAD"],
                                  cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():  # REF's worker hangs in its factory
            assert pytest_run.poll() is None, "pytest ended before REF's worker built its model"
            assert time.monotonic() < deadline, "REF's worker never started building"
            time.sleep(0.2)
        workers = _children(pytest_run.pid)
        assert len(workers) == 2, workers
        os.kill(pytest_run.pid, how)
        pytest_run.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers), "a worker outlived pytest"
    finally:
        if pytest_run.poll() is None:
            pytest_run.kill()
    assert not list((tmp_path / "cache" / "tree").glob(".*-*")), "no temporary tree is left"
