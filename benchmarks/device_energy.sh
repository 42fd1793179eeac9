#!/usr/bin/env bash
# Power and energy per inference from NVML on a lent GPU (docs/benchmarks.md): what
# `perfsuite machine` sees, then the suite's CUDA sessions recorded as a baseline (save + 2
# added recordings), gated unchanged, and gated with PERFSUITE_SLOW_OPS extra passes inside the
# model (benchmarks/slowdown_plugin.py). Needs nvidia-ml-py's wheel in .carry/nvml/.
# Logs, JSON, reports and the baseline go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PERFSUITE_CACHE_DIR=/tmp/perfsuite-cache PERFSUITE_MACHINE_KEY=h100-energy
python3 -m pip install -q --no-deps .carry/nvml/*.whl > /dev/null 2>&1
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
python3 -m perfsuite machine > "$OUT/machine.json"; echo "machine rc=$?"
args=(-p no:cacheprovider --perf-suite=only --perf-device cuda --perf-backends torch,torch-cudagraph
      --perf-precisions fp32,fp16 -k test_latency "$@")
run() { python3 -m pytest "${args[@]}" "$@"; }
run --perf-save-baseline "--benchmark-json=$OUT/energy_record.json" > "$OUT/energy_record.log" 2>&1
echo "save rc=$?"
for i in 1 2; do run --perf-add-recording > "$OUT/energy_add$i.log" 2>&1; echo "add $i rc=$?"; done
run --benchmark-compare "--perf-report=$OUT/energy_same.md" "--benchmark-json=$OUT/energy_same.json" \
    > "$OUT/energy_same.log" 2>&1; echo "same rc=$?"
PERFSUITE_SLOW_OPS=${SLOW_OPS:-29} run -p benchmarks.slowdown_plugin --benchmark-compare \
    "--perf-report=$OUT/energy_slow.md" "--benchmark-json=$OUT/energy_slow.json" \
    > "$OUT/energy_slow.log" 2>&1; echo "slow rc=$?"
cp "baselines/$PERFSUITE_MACHINE_KEY/baseline.json" "$OUT/energy_baseline.json"
for f in energy_record energy_same energy_slow; do
  echo "== $f"; grep -E "passed|failed|perfsuite gate|^torch|^backend|pre-flight|^  " "$OUT/$f.log" | head -40
done
