#!/usr/bin/env bash
# The live gate on a lent GPU machine (docs/gate.md): record a baseline of the default suite
# (save + 2 added recordings), then gate 2 unchanged runs against it under --benchmark-compare.
# Logs, reports and the baseline go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PERFSUITE_CACHE_DIR=/tmp/perfsuite-cache PERFSUITE_MACHINE_KEY=h100-gate-check
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
run() { python3 -m pytest -p no:cacheprovider --perf-device cuda "$@"; }
run --perf-save-baseline > "$OUT/live_record.log" 2>&1; echo "save rc=$?"
for i in 1 2; do run --perf-add-recording > "$OUT/live_add$i.log" 2>&1; echo "add $i rc=$?"; done
for i in 1 2; do
  run --benchmark-compare "--perf-report=$OUT/live_report$i.md" > "$OUT/live_compare$i.log" 2>&1
  echo "compare $i rc=$?"; grep -E "passed|perfsuite gate|^torch|^onnx" "$OUT/live_compare$i.log"
done
cp "baselines/$PERFSUITE_MACHINE_KEY/baseline.json" "$OUT/live_baseline.json"
