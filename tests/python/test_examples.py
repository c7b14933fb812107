"""The Python examples run and reach their own checks (each exits 1 when its check fails)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def run(name, *args):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_every_example_is_tested():
    tested = {"decode_paged_cache.py", "patch_and_generate.py", "verify_third_party.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.parametrize("block_size", ["16", "5"])
def test_decode_on_the_paged_cache_equals_one_forward_pass(block_size):
    result = run("decode_paged_cache.py", "--prompt", "23", "--decode", "6", "--block-size", block_size)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "largest difference from PyTorch's attention" in result.stdout


def test_verify_catches_the_lost_scaling_block():
    result = run("verify_third_party.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MATCH" in result.stdout and "MISMATCH (1)" in result.stdout
    assert "the config's llama3 scaling is not applied" in result.stdout


def test_a_patched_model_generates_the_same_tokens():
    result = run("patch_and_generate.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exact angles give the same tokens: True" in result.stdout
