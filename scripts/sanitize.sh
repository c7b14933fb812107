#!/usr/bin/env bash
# The reliability checks: the whole C++ suite under AddressSanitizer + UndefinedBehaviorSanitizer
# and under ThreadSanitizer (clang), then each libFuzzer target for a bounded time
# (FUZZ_SECONDS, default 60) starting from the committed seed corpus.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="$(nproc)"
fuzz_seconds="${FUZZ_SECONDS:-60}"
# The CUDA backend stays out of these builds: host sanitizers do not see device memory, and its
# checks are compute-sanitizer's (scripts/gpu-check.sh, on a GPU machine).
common=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DROTARY_WERROR=ON -DROTARY_INSTALL=OFF -DROTARY_BUILD_TOOLS=OFF
        -DROTARY_CUDA=OFF)

for sanitizer in address,undefined thread; do
  dir="build-${sanitizer//,/-}"
  echo "== C++ tests under -fsanitize=$sanitizer ($dir)"
  # OpenMP runtimes are not TSan-instrumented (false reports): the TSan build runs single-threaded
  # kernels and checks concurrent calls from the threads the test itself starts.
  openmp=ON; [[ $sanitizer == thread ]] && openmp=OFF
  CXX=clang++ cmake -S . -B "$dir" "${common[@]}" -DROTARY_SANITIZE="$sanitizer" -DROTARY_OPENMP=$openmp >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  (cd "$dir" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 TSAN_OPTIONS=halt_on_error=1 \
     ctest --output-on-failure -j"$jobs")
done

echo "== libFuzzer targets, ${fuzz_seconds}s each"
CXX=clang++ cmake -S . -B build-fuzz "${common[@]}" -DROTARY_BUILD_TESTS=OFF \
  -DROTARY_BUILD_FUZZERS=ON -DROTARY_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j"$jobs" >/dev/null
for target in config gguf rotate; do
  work="$(mktemp -d)"
  # The config corpus holds deep-nesting seeds of up to 100 KB; inputs may grow that large.
  max_len=""; [[ $target == config ]] && max_len="-max_len=131072"
  # New inputs go to the scratch directory; the committed corpus is only read.
  build-fuzz/fuzz/${target}_fuzzer "$work" "fuzz/corpus/$target" $max_len -max_total_time="$fuzz_seconds" \
    -print_final_stats=1 2>"$work.log" || { tail -50 "$work.log"; exit 1; }
  echo "$target fuzzer: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$work.log" | tail -1)"
  rm -rf "$work" "$work.log"
done
