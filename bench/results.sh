#!/usr/bin/env bash
# Regenerates bench/results-cpu.md, every figure from one run on this machine:
#
#   bench/results.sh                 # ~30 min on 2 cores; run it on an otherwise idle machine
#
# Builds the library, bench/rotate_bench and the Python extension (Release, no -march flag) in
# build-bench/, then runs bench/compare_peers.py: the C++ benchmark once with this CPU's best SIMD
# target and once pinned to AVX2 (on x86 CPUs that have it), then the Python peers (transformers
# eager and torch.compile, ONNX Runtime), the Python decode call and the targets table, and last
# the fused QK-RMSNorm + RoPE against transformers' norm modules (bench/qk_norm_torch.py). Needs the
# packages of requirements-test.txt and Google Benchmark (Debian libbenchmark-dev); installs the
# pinned nanobind (to build the extension outside pip) and onnx (ORT's model builder) if missing.
# The instruction counts the targets table quotes come from bench/callgrind-baseline.txt
# (bench/callgrind.sh --update).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-bench"
python3 -c "import nanobind, onnx" 2>/dev/null || python3 -m pip install -q nanobind==3.1.0 onnx==1.23.2
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DROTARY_BUILD_BENCHMARKS=ON \
  -DROTARY_BUILD_PYTHON=ON -DROTARY_BUILD_TESTS=OFF -DROTARY_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

targets=best
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw avx512f /proc/cpuinfo; then
  targets=best,AVX2  # the AVX-512 kernels and the AVX2 ones, on the same machine
fi
python3 "$root/bench/compare_peers.py" --rotary-from build --rotary-build "$build" \
  --gbench "$build/bench/rotate_bench" --gbench-targets "$targets" \
  --out "$root/bench/results-cpu.md" "$@"

# The fused norm against the torch sequence, with the package just built (not an installed one).
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -r "$root/python/rotary" "$stage/rotary"
cp "$build"/python/_rotary*.so "$stage/rotary/"
PYTHONPATH="$stage" python3 "$root/bench/qk_norm_torch.py" --threads 1,2 --markdown >>"$root/bench/results-cpu.md"
