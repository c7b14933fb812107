#!/usr/bin/env bash
# The C++ rules CI enforces before building: every C++ file as clang-format 14 formats it
# (.clang-format; another version formats differently, so the version is pinned), and every include
# within its layer (scripts/check_layers.py, docs/ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
format=clang-format-14
mapfile -t files < <(git ls-files '*.h' '*.cc' '*.cu' '*.cuh' '*.h.in' | grep -v '\.in$')
bad=()
for f in "${files[@]}"; do
  "$format" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  for f in "${bad[@]}"; do echo "$f: not formatted as $format formats it" >&2; done
  echo "fix: $format -i ${bad[*]}" >&2
  exit 1
fi
echo "clang-format: ${#files[@]} files formatted"
python3 scripts/check_layers.py
echo "includes: every layer includes only what it may"
