#!/usr/bin/env bash
# The reports on a lent GPU (docs/reports.md): the shipped suite recorded as a baseline, then
# gated against it with the markdown and HTML reports and pytest-benchmark's JSON (raw samples
# kept), the JSON being what `perfsuite merge` combines with other machines' runs.
# Needs the wheels of nvidia-ml-py in .carry/nvml/ and of matplotlib (with its dependencies,
# cp312) in .carry/plots/. Everything goes to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PERFSUITE_CACHE_DIR=/tmp/perfsuite-cache PERFSUITE_MACHINE_KEY=h100-reports
python3 -m pip install -q --no-deps .carry/nvml/*.whl .carry/plots/*.whl > /dev/null 2>&1
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
python3 -c "import matplotlib; print('matplotlib', matplotlib.__version__)"
args=(-p no:cacheprovider --perf-suite=only --perf-device cuda "$@")
start=$(date +%s)
python3 -m pytest "${args[@]}" --perf-save-baseline > "$OUT/record.log" 2>&1
echo "record rc=$? in $(( $(date +%s) - start )) s"
start=$(date +%s)
python3 -m pytest "${args[@]}" --benchmark-compare "--perf-report=$OUT/h100.md" \
    "--perf-report=$OUT/h100.html" "--benchmark-json=$OUT/h100.json" --benchmark-save-data \
    > "$OUT/compare.log" 2>&1
echo "compare rc=$? in $(( $(date +%s) - start )) s"
grep -E "^\[perfsuite\].*(done in|so far|failed after)" "$OUT/record.log" | head -30
grep -E "passed|failed|perfsuite gate|^torch|^backend|^onnx|^tensorrt" "$OUT/compare.log" | head -30
ls -la "$OUT"
