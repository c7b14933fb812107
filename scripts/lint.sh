#!/usr/bin/env bash
# The Python style CI enforces before building: every Python file as `ruff format` formats it and
# free of the `ruff check` rules selected in pyproject.toml ([tool.ruff]). ruff is pinned in
# requirements-test.txt (another version formats and flags differently); this refuses any other.
set -euo pipefail
cd "$(dirname "$0")/.."
pin="$(sed -n 's/^ruff==//p' requirements-test.txt)"
have="$(python3 -m ruff --version 2>/dev/null | awk '{print $2}')" || true
if [[ "$have" != "$pin" ]]; then
  echo "lint: needs ruff $pin (requirements-test.txt), found ${have:-none}: python3 -m pip install ruff==$pin" >&2
  exit 1
fi
# Both run over the whole tree (files git ignores and build folders excepted), so a new file is
# checked before it is committed; both run even when the first fails, to report everything at once.
status=0
python3 -m ruff format --check --quiet . || status=1
python3 -m ruff check --quiet . || status=1
if ((status)); then
  echo "lint: Python style violations above; fix: ruff format && ruff check --fix (then edit what remains)" >&2
  exit 1
fi
echo "ruff $pin: every Python file formatted and clean"
