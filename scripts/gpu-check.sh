#!/usr/bin/env bash
# Everything the CUDA backend needs a GPU for, in one command (run on a machine with a GPU):
#   1. build with the CUDA backend (-DROTARY_CUDA=ON, sm_90 by default, override with ARCH=...),
#   2. run cuda_test (every kernel against the CPU backend; must not skip),
#   3. run it under compute-sanitizer memcheck (must report 0 errors),
#   4. build the Python extension (needs nanobind and torch importable) and run
#      bench/gpu_bench.py with it.
# Results go to ${OUT_FILE:-gpu-check-results.txt}; the script stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_FILE=${OUT_FILE:-gpu-check-results.txt}
BUILD=${BUILD:-build-gpu}
ARCH=${ARCH:-90}
JOBS=${JOBS:-$(nproc)}
exec > >(tee "$OUT_FILE") 2>&1

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv

echo "== build (CUDA arch $ARCH)"
# The Python extension is built here too (no pip, no network: the GPU machine may have neither).
python_opt=-DROTARY_BUILD_PYTHON=OFF
if python3 -c "import nanobind, torch" 2>/dev/null; then python_opt=-DROTARY_BUILD_PYTHON=ON; fi
cmake -S . -B "$BUILD" -DROTARY_CUDA=ON -DROTARY_WERROR=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
  "$python_opt"
cmake --build "$BUILD" -j"$JOBS"

echo "== cuda_test"
GTEST_FAIL_IF_NO_TEST_SELECTED=1 "$BUILD/tests/cuda_test" --gtest_brief=0 | tee /tmp/rotary_cuda_test.txt
if grep -q "SKIPPED" /tmp/rotary_cuda_test.txt; then
  echo "cuda_test skipped device tests on a GPU machine: is the device visible?" >&2
  exit 1
fi

echo "== compute-sanitizer memcheck"
SANITIZER=${SANITIZER:-$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)}
"$SANITIZER" --tool memcheck --error-exitcode 1 --leak-check full "$BUILD/tests/cuda_test"
"$SANITIZER" --tool racecheck --error-exitcode 1 "$BUILD/tests/cuda_test" \
  --gtest_filter='cuda_rope_test.multi_axis*:cuda_kv_cache_test.*'

echo "== whole CPU suite"
ctest --test-dir "$BUILD" -j"$JOBS" --output-on-failure

echo "== Python package and benchmark"
if [[ $python_opt == -DROTARY_BUILD_PYTHON=ON ]]; then
  stage="$BUILD/python-stage"
  rm -rf "$stage" && mkdir -p "$stage/rotary"
  cp python/rotary/*.py "$stage/rotary/"
  cp "$BUILD"/python/_rotary*.so "$stage/rotary/"
  PYTHONPATH="$stage" python3 -c \
    "import torch, rotary; assert torch.cuda.is_available(); assert rotary._rotary.has_cuda_backend()"
  PYTHONPATH="$stage" python3 bench/gpu_bench.py
else
  echo "nanobind or torch not importable: benchmark skipped (pip install nanobind torch)" >&2
  exit 1
fi
echo "== done: results in $OUT_FILE"
