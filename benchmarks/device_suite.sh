#!/usr/bin/env bash
# Runs the default suite on a lent GPU machine (see docs/benchmarks.md). Writes logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PERFSUITE_CACHE_DIR=/tmp/perfsuite-cache
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
python3 -c "import torch, torchvision, onnx, onnxruntime; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__, 'onnx', onnx.__version__, 'ort', onnxruntime.__version__)"
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2 || true
python3 -c "import perfsuite.plugin" || exit 1
start=$(date +%s.%N)
python3 -m pytest --perf-device cuda --benchmark-json "$OUT/suite_cuda.json" "$@" 2>&1 | tee "$OUT/suite_cuda.log"
end=$(date +%s.%N)
echo "suite wall time: $(python3 -c "print(round($end - $start, 1))") s"
