#!/usr/bin/env bash
# A/B quality on a lent GPU machine (docs/gate.md, "A/B"): ab_quality.py makes a git repository
# of a factory model and records fresh pytest processes of `--perf-ab=HEAD`, A/A and with extra
# GPU work inside the working tree's forward (an uncommitted change to a helper module).
# Usage: [AB_RUNS=name] benchmarks/device_ab_quality.sh AA SLOW OPS [options]; runs go to
# $OUT/<name>.tgz (default name: abq).
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PERFSUITE_CACHE_DIR=/tmp/perfsuite-cache
aa=$1 slow=$2 ops=$3; shift 3
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
git --version || { echo "no git on this machine"; exit 3; }
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
runs=${AB_RUNS:-abq}
start=$(date +%s)
timeout "${AB_LIMIT_S:-520}" python3 benchmarks/ab_quality.py record --out "/tmp/$runs" --aa "$aa" \
  --slow "$slow" --ops "$ops" --size 0 --perf-device cuda "$@"
echo "recording rc=$? in $(( $(date +%s) - start )) s"
tar -C /tmp -czf "$OUT/$runs.tgz" "$runs"
python3 benchmarks/ab_quality.py evaluate "/tmp/$runs"
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu --format=csv
