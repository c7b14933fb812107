#!/usr/bin/env bash
# Installs what rotary's build and tests need on Debian/Ubuntu, once: compilers and CMake,
# GoogleTest, nlohmann-json, CLI11 and clang (sanitizers, libFuzzer) from the distribution. With --python, also the pinned Python
# packages of requirements-test.txt. Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

packages=(g++ cmake make python3 python3-pip libgtest-dev nlohmann-json3-dev libcli11-dev libhwy-dev)
# clang and its runtime libraries for the sanitizer builds and libFuzzer (scripts/sanitize.sh).
packages+=(clang libclang-rt-14-dev)
# Google Benchmark and valgrind for the benchmarks (bench/: rotate_bench, callgrind.sh).
packages+=(libbenchmark-dev valgrind)
# clang-format, the version whose output the C++ style check pins (scripts/check-cpp.sh).
packages+=(clang-format-14)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--python" ]]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  python3 -m pip install -q --disable-pip-version-check -r "$root/requirements-test.txt"
fi
