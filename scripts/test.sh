#!/usr/bin/env bash
# Builds everything with warnings as errors and runs every test: the C++ suite (CTest), the same
# suite under ASan+UBSan and TSan plus the fuzzers (scripts/sanitize.sh), and the Python package
# with its conformance suite against transformers (pytest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [[ -f pyproject.toml ]]; then scripts/install-deps.sh --python; else scripts/install-deps.sh; fi

if [[ -f pyproject.toml ]]; then
  echo "== Python: style (ruff format, ruff check)"
  scripts/lint.sh
fi

echo "== C++: formatting and include layers"
scripts/check-cpp.sh

echo "== C++: build (-Werror) and CTest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DROTARY_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
(cd build && ctest --output-on-failure -j"$(nproc)")

scripts/sanitize.sh

if [[ -f pyproject.toml ]]; then
  echo "== Python: build the extension and run pytest"
  python3 -m pip install -q --disable-pip-version-check .
  ROTARY_CLI="$root/build/tools/rotary" python3 -m pytest -q tests/python tests/cli
fi
