#!/usr/bin/env bash
# Instruction counts of rotary for fixed shapes, so that regressions show despite noisy timings.
#
#   bench/callgrind.sh            # build, count, compare with bench/callgrind-baseline.txt
#   bench/callgrind.sh --update   # ... and write the counts as the new baseline
#
# Builds bench/callgrind_driver (Release, no -march flag; build directory $ROTARY_CALLGRIND_BUILD,
# default build-callgrind/) and runs each of its cases under
#   valgrind --tool=callgrind --toggle-collect=callgrind_measured_region
# which counts only the instructions (Ir) of the driver's measured calls (4 calls of one fixed
# tensor each, after a warm-up call outside the region). Valgrind emulates no AVX-512, so the
# library's run-time dispatch picks its AVX2 kernels here whatever the host has; the driver prints
# the target it got. Prints Ir per case and the % change from the baseline; never fails on a
# change (exit status 0 unless something does not build or run).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${ROTARY_CALLGRIND_BUILD:-$root/build-callgrind}"
baseline="$root/bench/callgrind-baseline.txt"
update=0
[[ "${1:-}" == "--update" ]] && update=1

command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DROTARY_BUILD_BENCHMARKS=ON \
  -DROTARY_BUILD_TESTS=OFF -DROTARY_BUILD_TOOLS=OFF -DROTARY_BUILD_PYTHON=OFF -DROTARY_INSTALL=OFF \
  >/dev/null
cmake --build "$build" --target callgrind_driver -j "$(nproc)" >/dev/null
driver="$build/bench/callgrind_driver"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

declare -A base
if [[ -f "$baseline" ]]; then
  while read -r name ir _; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    base[$name]=$ir
  done <"$baseline"
fi

target=""
results=()
printf '%-50s %14s %14s %9s\n' case Ir baseline change
for name in $("$driver" --list); do
  out="$work/$name.out"
  valgrind --tool=callgrind --toggle-collect=callgrind_measured_region \
    --callgrind-out-file="$out" "$driver" "$name" >"$work/$name.log" 2>&1 ||
    { cat "$work/$name.log" >&2; exit 1; }
  ir="$(awk '/^totals:/ {print $2}' "$out")"
  target="$(sed -n 's/.*simd_target=\([^ ]*\).*/\1/p' "$work/$name.log")"
  results+=("$name $ir")
  if [[ -n "${base[$name]:-}" ]]; then
    change="$(awk -v a="$ir" -v b="${base[$name]}" 'BEGIN {printf "%+.2f%%", 100 * (a - b) / b}')"
    printf '%-50s %14s %14s %9s\n' "$name" "$ir" "${base[$name]}" "$change"
  else
    printf '%-50s %14s %14s %9s\n' "$name" "$ir" "-" "new"
  fi
done
echo "SIMD target under valgrind: $target"

if ((update)); then
  {
    echo "# Instruction counts (callgrind Ir) of bench/callgrind_driver's measured region: 4 calls per case."
    echo "# Made by: bench/callgrind.sh --update"
    echo "# Commit: $(git -C "$root" rev-parse HEAD)$(git -C "$root" diff --quiet HEAD -- src include 2>/dev/null || echo ' (with uncommitted changes in src/include)')"
    echo "# Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(valgrind --version); $(${CXX:-c++} --version | head -1); SIMD target under valgrind: $target"
    printf '%s\n' "${results[@]}"
  } >"$baseline"
  echo "wrote $baseline"
fi
