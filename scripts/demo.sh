#!/usr/bin/env bash
# The main job: build rotary and run `rotary demo` (a real model's RoPE, no download needed).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
# The tool, and whatever else `cmake --install build` copies (the library; with nvcc, its CUDA
# backend), so that installing works after this build too.
cmake --build "$root/build" --target rotary_cli rotary_installable -j"$(nproc)" >/dev/null
"$root/build/tools/rotary" demo
