"""What the command-line tests share: where the built binary and the bundled configs are, and how a
command is run. The binary is $ROTARY_CLI, or build/tools/rotary under the repository root.
Each bundled config is a plain config.json (tests/data/configs/NAME.json), its provenance in
tests/data/configs/sources/NAME.json."""

import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = os.environ.get("ROTARY_CLI", str(ROOT / "build" / "tools" / "rotary"))
CONFIGS = ROOT / "tests" / "data" / "configs"
# Every stored config, the ones rotary refuses included (`rotary list` shows those apart).
STORED = sorted(p.stem for p in CONFIGS.glob("*.json"))


def run(*args, check=True):
    """Runs `rotary ARGS...`; with `check`, a non-zero exit fails the test with its stderr."""
    result = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"rotary {' '.join(map(str, args))} exited {result.returncode}: {result.stderr}")
    return result


def stored_config(name):
    """The config dict of a bundled config: its file is the model's config.json fields as published."""
    return json.loads((CONFIGS / f"{name}.json").read_text(encoding="utf-8"))
