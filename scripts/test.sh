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

echo "== C++: the demo's build (scripts/demo.sh), installed and found by a consumer"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DROTARY_WERROR=ON >/dev/null
# demo.sh builds only the tool and what `cmake --install` copies; the install must work from that
# partial build (README), not only after the full one (CTest's find_package_install checks that).
# Same build directory and flags: the full build below reuses all of it.
scripts/demo.sh >/dev/null
prefix="$(mktemp -d)"
cmake --install build --prefix "$prefix/install" >/dev/null
ctest --build-and-test tests/find_package "$prefix/consumer" --build-generator "Unix Makefiles" \
  --build-options -DCMAKE_PREFIX_PATH="$prefix/install" -DCMAKE_BUILD_TYPE=Release --test-command consumer >/dev/null
"$prefix/install/bin/rotary" --version
rm -rf "$prefix"

echo "== C++: build (-Werror) and CTest"
cmake --build build -j"$(nproc)"
(cd build && ctest --output-on-failure -j"$(nproc)")

scripts/sanitize.sh

if [[ -f pyproject.toml ]]; then
  echo "== Python: source distribution, one wheel built from it, installed; pytest"
  # `python -m build` makes the sdist, then the wheel from the unpacked sdist: what the wheel needs
  # must be in the sdist. One compile (library, extension with its stub, command-line tool).
  dist="$(mktemp -d)"
  python3 -m build --outdir "$dist" . >"$dist/build.log" 2>&1 || { tail -n 60 "$dist/build.log"; exit 1; }
  wheel="$(echo "$dist"/rotary-*.whl)"
  # --force-reinstall: pip skips a wheel whose version is already installed.
  python3 -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
  ROTARY_CLI="$root/build/tools/rotary" python3 -m pytest -q tests/python tests/cli
  # The command pip installed (the console script running rotary/_bin/rotary) against the CLI
  # tests; its plot subcommand is rotary.plot's, tested in tests/python.
  scripts_dir="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  ROTARY_CLI="$scripts_dir/rotary" python3 -m pytest -q tests/cli/test_cli.py -k "not plot"

  echo "== Python: the same wheel in a fresh virtual environment (NumPy from PyPI)"
  venv="$dist/venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
  (
    cd "$dist"  # away from the source tree
    "$venv/bin/rotary" --version
    "$venv/bin/rotary" inspect llama-3.1-8b >/dev/null
    "$venv/bin/python" -c "import rotary; rotary.Rope('llama-3.1-8b')"
  )
  rm -rf "$dist"
fi
