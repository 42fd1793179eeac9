#!/usr/bin/env bash
# On a lent GPU machine (issue 13): the TensorRT defect tests that need CUDA (stream order, CUDA
# graph fallback) on this code, on the code before the fixes and with the emulator before the
# fixes; then TensorRT-RTX: its libraries travel xz-compressed in two parts (61 MB; one call
# carries 64 MiB in all, the working tree included), each call leaving its part in /tmp/keep.
#   call 1: carry .carry/a (libs.part.aa, old_perfsuite.tar.gz, old_emulator.py)
#   call 2: carry .carry/b (libs.part.ab, the cp312 bindings wheel) and .whl (pycuda sdist + deps)
set -uo pipefail
OUT=${OUT:-/tmp/perfsuite-out}; mkdir -p "$OUT" /tmp/keep
export PYTHONUNBUFFERED=1
cp .carry/*/* /tmp/keep/ 2>/dev/null
python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader

if [ -f /tmp/keep/old_perfsuite.tar.gz ]; then
  echo "== this code: the CUDA tests of tests/unit/backends/tensorrt/test_tensorrt_defects.py and test_tensorrt.py"
  python3 -m pytest -p no:cacheprovider tests/unit/backends/tensorrt/test_tensorrt_defects.py \
    tests/unit/backends/tensorrt/test_tensorrt.py -q -rs 2>&1 | tail -4
  echo "== the code before the fixes (perfsuite/ of 9aec784, not installed), the same CUDA tests"
  rm -rf /tmp/old && mkdir -p /tmp/old && tar -xzf /tmp/keep/old_perfsuite.tar.gz -C /tmp/old
  python3 -m pip uninstall -y -q perfsuite > /dev/null 2>&1
  cp -r tests pytest.ini conftest.py /tmp/old/  # run there: the repository root is not on sys.path
  (cd /tmp/old && python3 -c "import perfsuite; print('perfsuite from', perfsuite.__file__)" &&
   python3 -m pytest -p no:cacheprovider -p perfsuite.plugin -q -rf \
    tests/unit/backends/tensorrt/test_tensorrt_defects.py -k "stream_ordered or captured" 2>&1 \
    | grep -E "^(FAILED|PASSED)|passed|failed" | cut -c1-220)
  python3 -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
  echo "== the emulator before the fixes (this code), the same CUDA tests and the enum test"
  rm -rf /tmp/oldemu && mkdir /tmp/oldemu && cp -r perfsuite tests pyproject.toml pytest.ini /tmp/oldemu/
  cp /tmp/keep/old_emulator.py /tmp/oldemu/tests/fakes/tensorrt_emulator.py
  (cd /tmp/oldemu && python3 -m pytest -p no:cacheprovider -q -rf \
    tests/unit/backends/tensorrt/test_tensorrt_defects.py -k "stream_ordered or captured or enums" 2>&1 \
    | grep -E "^(FAILED|PASSED)|passed|failed" | cut -c1-220)
fi

if [ -f /tmp/keep/libs.part.aa ] && [ -f /tmp/keep/libs.part.ab ]; then
  echo "== TensorRT-RTX"
  mkdir -p /tmp/rtx && cat /tmp/keep/libs.part.aa /tmp/keep/libs.part.ab | xz -d | tar -xf - -C /tmp/rtx
  python3 -m pip install -q --no-deps --target /tmp/rtx /tmp/keep/tensorrt_rtx_cu12_bindings-*.whl
  export PYTHONPATH=/tmp/rtx LD_LIBRARY_PATH=/tmp/rtx/tensorrt_rtx_libs:${LD_LIBRARY_PATH:-}
  python3 -c "import tensorrt_rtx_bindings as t; print('TensorRT-RTX', t.__version__)"
  PERFSUITE_CACHE_DIR=/tmp/pc python3 -m pytest -p no:cacheprovider -rs --perf-device cuda \
    --perf-backends torch,tensorrt-rtx --perf-precisions fp32,fp16 > "$OUT/rtx_suite.log" 2>&1
  echo "suite rc=$?"; grep -E "passed|failed|tensorrt-rtx|^backend|^torch " "$OUT/rtx_suite.log" | cut -c1-400 | sort | uniq -c | head -20
  python3 -m pytest -p no:cacheprovider tests/unit/backends/tensorrt/test_tensorrt_rtx.py -q 2>&1 | tail -2
  unset PYTHONPATH LD_LIBRARY_PATH
fi

if ls .whl/pycuda-*.tar.gz > /dev/null 2>&1; then
  echo "== emulated TensorRT on CUDA: torch buffers with cuda_graph = true, and real pycuda"
  start=$(date +%s)
  CUDA_ROOT=$(dirname "$(dirname "$(command -v nvcc)")") python3 -m pip install -q \
    --no-build-isolation --no-deps --no-compile --target /tmp/site .whl/*.whl \
    .whl/pycuda-*.tar.gz > "$OUT/pycuda_build.log" 2>&1
  echo "pycuda install rc=$? in $(( $(date +%s) - start )) s"
  printf '[tool.perfsuite.tensorrt]\ncuda_graph = true\n' > /tmp/graph.toml
  for version in 8.6.1 11.4.0.106; do
    PYTHONPATH=/tmp/site:$PWD/tests PERFSUITE_EMULATE_TRT=$version PERFSUITE_CACHE_DIR=/tmp/pe \
      PERFSUITE_CONFIG=/tmp/graph.toml python3 -m pytest -p no:cacheprovider \
      -p fakes.emulated_tensorrt_plugin perfsuite/suite/test_latency.py \
      perfsuite/suite/test_agreement.py -k "tensorrt or torch-fp32" --perf-device cuda \
      --perf-backends torch,tensorrt,tensorrt-pycuda --perf-precisions fp32,fp16 \
      > "$OUT/trt_emulated_$version.log" 2>&1
    echo "emulated TensorRT $version: rc=$?"
    grep -E "passed|failed|^tensorrt|^torch |capture" "$OUT/trt_emulated_$version.log" | cut -c1-300
  done
fi
