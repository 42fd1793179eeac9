#!/usr/bin/env bash
# On a lent GPU machine without TensorRT: build pycuda from its sdist (carried in .whl/), then run
# the TensorRT runners' real CUDA paths (torch buffers + CUDA events, pycuda buffers + stream)
# against the emulated engine. Logs and JSON go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CUDA_ROOT=$(dirname "$(dirname "$(command -v nvcc)")")
start=$(date +%s)
python3 -m pip install -q --no-build-isolation --no-deps --no-compile --target /tmp/site \
  .whl/*.whl .whl/pycuda-*.tar.gz > "$OUT/pycuda_build.log" 2>&1
echo "pycuda install rc=$? in $(( $(date +%s) - start )) s (CUDA_ROOT=$CUDA_ROOT)"
export PYTHONPATH=/tmp/site:$PWD/tests
python3 -c "import pycuda, pycuda.driver as cuda; cuda.init(); print('pycuda', pycuda.VERSION_TEXT, 'CUDA driver', cuda.get_driver_version(), cuda.Device(0).name())"
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
for version in 10.3.0 11.4.0.106; do
  PERFSUITE_EMULATE_TRT=$version PERFSUITE_CACHE_DIR=/tmp/pc python3 -m pytest -p no:cacheprovider \
    -p fakes.emulated_tensorrt_plugin perfsuite/suite/test_latency.py perfsuite/suite/test_agreement.py \
    -k "tensorrt or torch-fp32" --perf-device cuda --perf-backends torch,tensorrt,tensorrt-pycuda \
    --perf-precisions fp32,fp16 --benchmark-json "$OUT/trt_emulated_$version.json" \
    > "$OUT/trt_emulated_$version.log" 2>&1
  echo "emulated TensorRT $version: rc=$?"; grep -E "passed|failed|^tensorrt|^torch " "$OUT/trt_emulated_$version.log"
done
python3 -m pytest -p no:cacheprovider tests/unit/backends/tensorrt/test_tensorrt.py -q 2>&1 | tail -2
