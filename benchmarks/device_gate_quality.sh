#!/usr/bin/env bash
# Gate-quality recording on a lent GPU machine (docs/gate.md): fresh pytest processes of the
# latency benchmarks, A/A and with extra GPU work inside the forward, calibrated to the targets.
# Usage: benchmarks/device_gate_quality.sh AA SLOW [pytest options]; runs go to $OUT/runs.tgz.
# GQ_OPS=6,9,14 skips the calibration and uses those extra passes.
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PERFSUITE_CACHE_DIR=/tmp/perfsuite-cache
aa=$1 slow=$2; shift 2
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
start=$(date +%s)
if [ -n "${GQ_OPS:-}" ]; then how=(--ops "$GQ_OPS"); else how=(--calibrate torch-cudagraph); fi
timeout "${GQ_LIMIT_S:-500}" python3 benchmarks/gate_quality.py record --out /tmp/gq --aa "$aa" \
  --slow "$slow" "${how[@]}" --perf-device cuda --perf-machine-key=gq-unrecorded "$@"
echo "recording rc=$? in $(( $(date +%s) - start )) s"
tar -C /tmp -czf "$OUT/runs.tgz" gq
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu --format=csv
