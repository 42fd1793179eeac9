#!/usr/bin/env bash
# Mutation testing of perfsuite's backends, NVML/Jetson readers and gate decision code.
#
# A BENCHMARK, not a test: slow (about an hour on 2 cores), never run by .ci/run or any CI.
# It measures how many small faults ("mutants") the unit tests catch in the modules below, and
# leaves the surviving mutants for someone to write tests against.
#
# What it does, from a fresh clone of this repository (it measures the committed HEAD):
#   1. makes a virtualenv in $MUT_WORK/venv and pip-installs the tool there (mutmut 3.x). The
#      project's heavy dependencies (torch, onnx, onnxruntime, pytest, hypothesis, numpy) are
#      reused from an existing environment through a .pth file ($MUT_DEPS_SITE); without one
#      they are pip-installed from pyproject.toml (large: torch).
#   2. for each group of modules, clones HEAD into $MUT_WORK/<group>, writes mutmut's setup.cfg
#      there (what to mutate, which test files to run) and runs `mutmut run`.
#   3. prints per-module killed / survived / timeout / no-tests / total and the score, and writes
#      $MUT_WORK/score.txt and $MUT_WORK/survivors.txt (every surviving mutant's diff, grouped by
#      module and function).
#
# Usage:  bash benchmarks/mutation.sh [GROUP ...]        GROUPs: backends readers gate (default: all)
# Knobs (environment):
#   MUT_WORK       work folder (default: <repo>/.mutation-work; delete it to start over)
#   MUT_PYTHON     interpreter for the venv (default: python3.11)
#   MUT_DEPS_SITE  site-packages holding the project's dependencies (default: <repo>/.venv's,
#                  else /work/main/.venv's; set it empty to pip-install them instead)
#   MUT_JOBS       parallel mutant workers (default: 2)
#   MUT_NICE       nice level (default: 10)
#   MUT_REPORT_ONLY=1  skip the runs; only print the counts and write score.txt / survivors.txt
#                  from the groups' earlier results
#
# Layout notes (why this is more than `mutmut run`):
#   * perfsuite's pytest plugin loads through a `pytest11` entry point. An editable install of
#     perfsuite would make tests import the unmutated tree, so the venv gets only a hand-written
#     perfsuite dist-info (metadata + entry points, no code), and the dependencies' site-packages
#     is added as a plain path (a .pth path line does not run the editable finder's .pth there).
#   * Many tests run perfsuite in subprocesses (pytester.runpytest_subprocess, workers): they
#     find the mutated copy through PYTHONPATH=<group>/mutants, and they inherit mutmut's
#     MUTANT_UNDER_TEST, so the active mutant applies there too. mutmut only records which
#     tests reach a function in its own process, though: code reached ONLY from a subprocess
#     shows up as "no tests".
#   * perfsuite/backends/torch_worker_main.py is not mutated: it is run by path (as __main__) in
#     a separate interpreter, where mutmut's trampolines, keyed by module name, never switch a
#     mutant on, and it must stay Python 3.6 (mutmut's generated code is not).
#   * conftest.py, pytest.ini and the docs/tools/benchmarks files some tests read are copied
#     into mutants/ (mutmut copies only the source and tests/).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${MUT_WORK:-$REPO/.mutation-work}
PY=${MUT_PYTHON:-python3.11}
JOBS=${MUT_JOBS:-2}
NICE=${MUT_NICE:-10}
MUTMUT_SPEC='mutmut==3.8.1'
if [[ -z ${MUT_DEPS_SITE+set} ]]; then
    MUT_DEPS_SITE=""
    for c in "$REPO/.venv/lib/python3.11/site-packages" ; do
        [[ -d $c/torch ]] && { MUT_DEPS_SITE=$c; break; }
    done
fi
SELECTED_GROUPS=("$@")
[[ ${#SELECTED_GROUPS[@]} -gt 0 ]] || SELECTED_GROUPS=(backends readers gate)

# --- the groups: which files to mutate, which unit-test files can kill their mutants ---------
# Picked with `grep -rl 'perfsuite.<module>' tests/`, keeping the fast focused files and
# leaving out the slow end-to-end ones (test_gate_e2e 4.5 min, test_hostile 4 min, test_plugin,
# test_jetson_e2e, test_benchmark_*), which would make every surviving mutant cost minutes.
# mutmut then runs, per mutant, only the selected tests that reached the mutated function.
declare -A MUTATE TESTS
MUTATE[backends]="perfsuite/backends/*"
TESTS[backends]="unit/backends/tensorrt/test_tensorrt.py unit/backends/tensorrt/test_tensorrt_defects.py unit/backends/tensorrt/test_tensorrt_rtx.py unit/backends/tensorrt/test_trtexec.py unit/backends/tensorrt/test_trtexec_runner.py
  e2e/test_torch_worker.py unit/backends/test_torch_worker_runner.py unit/measure/test_gpu_timing.py unit/models/test_cache.py unit/test_lazy.py unit/run/test_perf_run.py
  unit/report/test_report.py unit/config/test_config.py unit/machine/test_cuda_on_cpu.py unit/backends/test_runners_exact.py unit/backends/tensorrt/test_tensorrt_pycuda.py
  unit/backends/tensorrt/test_tensorrt_engine_exact.py e2e/test_trtexec_e2e.py e2e/test_tensorrt_e2e.py
  e2e/test_tensorrt_rtx_e2e.py e2e/test_config_e2e.py"
MUTATE[readers]="perfsuite/machine/nvml.py perfsuite/machine/jetson.py perfsuite/machine/jetson_boards.py perfsuite/machine/sysroot.py"
TESTS[readers]="unit/machine/test_nvml.py unit/machine/test_machine.py unit/machine/test_jetson.py unit/machine/test_jetson_boards.py
  unit/test_hostile_inputs.py unit/machine/test_cpu_load.py unit/machine/test_readers_exact.py"
MUTATE[gate]="perfsuite/gate/decide.py perfsuite/measure/paired.py"
TESTS[gate]="unit/gate/test_gate.py e2e/test_ab.py unit/gate/test_properties.py unit/test_reference.py unit/config/test_config.py
  unit/measure/test_paired_exact.py unit/gate/test_gate_exact.py e2e/test_config_e2e.py"

# --- 1. the tool ----------------------------------------------------------------------------
VENV=$WORK/venv
mkdir -p "$WORK"
if [[ ! -x $VENV/bin/mutmut ]]; then
    "$PY" -m venv "$VENV"
    SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    if [[ -n $MUT_DEPS_SITE ]]; then
        echo "$MUT_DEPS_SITE" > "$SITE/zz_perfsuite_deps.pth"   # a path line: no editable finder
    else
        "$VENV/bin/pip" install -q "$REPO[test]" && "$VENV/bin/pip" uninstall -q -y perfsuite
    fi
    "$VENV/bin/pip" install -q "$MUTMUT_SPEC" 2>&1 | { grep -v '^WARNING: Location' || true; }
    # perfsuite's entry points without its code: the code comes from mutants/ on PYTHONPATH.
    DI=$SITE/perfsuite-0.0.0+mutation.dist-info
    mkdir -p "$DI"
    printf 'Metadata-Version: 2.1\nName: perfsuite\nVersion: 0.0.0+mutation\n' > "$DI/METADATA"
    printf '[pytest11]\nperfsuite = perfsuite.plugin\n\n[console_scripts]\nperfsuite = perfsuite.cli:main\n' \
        > "$DI/entry_points.txt"
    : > "$DI/RECORD"
fi
# Subprocesses that tests start (pytester.runpytest_subprocess, the A/B sides) run mutated code
# too; while mutmut collects its stats (MUTANT_UNDER_TEST=stats) each trampoline hit there loads
# mutmut's config from the current folder, which is the test's tmp folder: no setup.cfg, so
# mutmut fails. This sitecustomize loads it from the group's folder first (MUTMUT_PROJECT_DIR).
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > "$SITE/sitecustomize.py" <<'PYEOF'
import os
if os.environ.get("MUTMUT_PROJECT_DIR") and os.environ.get("MUTANT_UNDER_TEST") == "stats":
    import mutmut.configuration as _config
    _cwd = os.getcwd()
    os.chdir(os.environ["MUTMUT_PROJECT_DIR"])
    try:
        _config.config()
    finally:
        os.chdir(_cwd)
PYEOF
echo "tool: $("$VENV/bin/mutmut" --version 2>/dev/null || "$VENV/bin/pip" show mutmut | grep ^Version)"

# --- 2. one mutmut run per group ---------------------------------------------------------------
for group in "${SELECTED_GROUPS[@]}"; do
    [[ -n ${MUTATE[$group]:-} ]] || { echo "unknown group: $group" >&2; exit 2; }
    [[ ${MUT_REPORT_ONLY:-0} == 1 ]] && continue
    dir=$WORK/$group
    [[ -d $dir/.git ]] || git clone -q "$REPO" "$dir"
    {
        echo "[mutmut]"
        echo "source_paths = perfsuite/"
        echo "only_mutate ="; for p in ${MUTATE[$group]}; do echo "    $p"; done
        echo "do_not_mutate ="
        echo "    perfsuite/backends/torch_worker_main.py"
        echo "also_copy ="
        for p in conftest.py pytest.ini README.md docs tools benchmarks baselines; do echo "    $p"; done
        echo "pytest_add_cli_args ="
        for a in -p no:cacheprovider -p no:randomly; do echo "    $a"; done
        echo "pytest_add_cli_args_test_selection ="
        for t in ${TESTS[$group]}; do echo "    tests/$t"; done
        # per-mutant timeout: wall (estimated test time + 10 s) x 3, CPU twice that
        echo "timeout_multiplier = 3.0"
        echo "timeout_constant = 10.0"
        echo "process_isolation = forkserver"   # fork deadlocks: torch and onnxruntime threads hold locks at fork time
    } > "$dir/setup.cfg"
    # mutants/ must exist before Python starts: a PYTHONPATH entry that is missing at start-up
    # is cached as "no importer" and later ignored, and mutmut adds that same path itself.
    mkdir -p "$dir/mutants"
    echo "=== $group: mutating ${MUTATE[$group]}"
    start=$(date +%s)
    # mutmut runs tests itself with `-x -q`; cwd is mutants/. One thread per worker: 2 cores.
    ( cd "$dir" && PYTHONPATH="$dir/mutants" MUTMUT_PROJECT_DIR="$dir" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        nice -n "$NICE" "$VENV/bin/mutmut" run --max-children "$JOBS" ) > "$WORK/$group.log" 2>&1 \
        || echo "mutmut run for $group exited $? (see $WORK/$group.log)"
    echo "$group took $(( $(date +%s) - start )) s" | tee "$WORK/$group.time"
done

# --- 3. per-module counts, score and survivors -------------------------------------------------
"$VENV/bin/python" - "$WORK" "${SELECTED_GROUPS[@]}" <<'EOF'
import json, os, sys
from collections import Counter, defaultdict
from pathlib import Path
from mutmut.stats import status_by_exit_code
from mutmut.mutation.diff_apply import get_diff_for_mutant

work = Path(sys.argv[1]).resolve(); groups = sys.argv[2:]
rows, surv = [], defaultdict(lambda: defaultdict(list))
for g in groups:
    meta_root = work / g / "mutants"
    for meta in sorted(meta_root.rglob("*.py.meta")):
        module = str(meta.relative_to(meta_root))[:-len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        c = Counter(status_by_exit_code[v] for v in codes.values())
        rows.append((g, module, c, len(codes)))
        for name, code in codes.items():
            if status_by_exit_code[code] in ("survived", "no tests", "suspicious"):
                func = name.rsplit("__mutmut_", 1)[0]
                surv[module][func].append((name, status_by_exit_code[code], g))

def score(c, n):
    caught = c["killed"] + c["timeout"] + c["segfault"]
    tested = n - c["skipped"] - c["not checked"]
    covered = caught + c["survived"] + c["suspicious"]
    return (100 * caught / tested if tested else 0.0, 100 * caught / covered if covered else 0.0)

out = ["group     module                                   killed survived timeout notests other total  score  score(covered)"]
tot = defaultdict(Counter); totn = Counter()
for g, module, c, n in rows:
    other = n - c["killed"] - c["survived"] - c["timeout"] - c["no tests"]
    s, sc = score(c, n)
    out.append(f"{g:9} {module:40} {c['killed']:6} {c['survived']:8} {c['timeout']:7} {c['no tests']:7} {other:5} {n:5} {s:5.1f}% {sc:6.1f}%")
    tot[g] += c; totn[g] += n
for g in groups:
    c, n = tot[g], totn[g]
    s, sc = score(c, n)
    t = (work / f"{g}.time").read_text().strip() if (work / f"{g}.time").exists() else ""
    out.append(f"{g:9} {'TOTAL':40} {c['killed']:6} {c['survived']:8} {c['timeout']:7} {c['no tests']:7} {n - c['killed'] - c['survived'] - c['timeout'] - c['no tests']:5} {n:5} {s:5.1f}% {sc:6.1f}%   ({t})")
out.append("score = (killed + timeout) / (total - skipped); score(covered) leaves out 'no tests' mutants")
text = "\n".join(out) + "\n"
print(text)
(work / "score.txt").write_text(text)

with open(work / "survivors.txt", "w") as f:
    f.write("Surviving mutants (status survived / no tests / suspicious), grouped by module and function.\n")
    f.write("Reproduce one: cd <work>/<group> && mutmut show <name>; mutmut tests-for-mutant <name> lists the tests run.\n\n")
    for module in sorted(surv):
        f.write(f"{'#' * 100}\n# {module}: {sum(len(v) for v in surv[module].values())} surviving\n{'#' * 100}\n")
        for func in sorted(surv[module], key=lambda k: -len(surv[module][k])):
            names = surv[module][func]
            f.write(f"\n=== {func}  ({len(names)})\n")
            for name, status, g in names:
                os.chdir(work / g)  # what `mutmut show NAME` prints, without a process per mutant
                diff = get_diff_for_mutant(name, path=Path(module))
                f.write(f"--- {name}  [{status}]\n{diff.strip()}\n\n")
print(f"survivors: {work / 'survivors.txt'}")
EOF
