#!/usr/bin/env bash
# Verdicts at scale on a lent GPU machine (docs/gate.md): A/A whole runs of a zoo of 25 GPU
# benchmarks (5 torchvision models x eager fp32/fp16/bf16 and CUDA graph fp32/fp16), replayed
# by benchmarks/run_false_alarms.py, and eager fidelity repeated (benchmarks/fidelity.py
# --repeat) with the default warm-up and with 2 s (FIDELITY=0: the zoo alone). With ZOO_AB=1
# each zoo run is an A/B run of the unchanged zoo against its HEAD (A/A). Files go to $OUT.
# Usage: bash benchmarks/device_verdicts.sh [zoo runs, default 6]
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PERFSUITE_CACHE_DIR=/tmp/perfsuite-cache PYTHONPATH=$PWD
runs=${1:-6}
zoo=${ZOO_DIR:-/tmp/zoo}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
start=$(date +%s)
timeout "${ZOO_LIMIT_S:-300}" python3 benchmarks/run_false_alarms.py record --out "$zoo" \
  --runs "$runs" --device cuda --backends torch,torch-cudagraph --precisions fp32,fp16,bf16 \
  --models mobilenet_v3_small,resnet18,squeezenet1_1,shufflenet_v2_x0_5,mnasnet0_5 --sizes 224 \
  $([ "${ZOO_AB:-0}" = 1 ] && echo --ab)
echo "zoo rc=$? in $(( $(date +%s) - start )) s"
tar -C "$(dirname "$zoo")" -czf "$OUT/$(basename "$zoo").tgz" "$(basename "$zoo")"
python3 benchmarks/run_false_alarms.py evaluate "$zoo" --slowdown 1.02 | tee "$OUT/zoo_eval.txt"
[ "${FIDELITY:-1}" = 0 ] && exit 0
for warmup in default 2.0; do
  if [ "$warmup" != default ]; then
    printf '\n[tool.perfsuite.timing]\nwarmup_seconds = %s\n' "$warmup" >> pyproject.toml
  fi
  # fidelity runs pytest in its own process: the plugin by name where perfsuite is not installed
  PYTEST_PLUGINS=perfsuite.plugin timeout "${FID_LIMIT_S:-150}" python3 benchmarks/fidelity.py --rounds 300 --repeat 5 \
    --out "$OUT/fidelity_warmup_$warmup.json" 2>&1 | tail -8
done
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu --format=csv
