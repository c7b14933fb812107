"""The Python examples run and reach their own checks (each exits 1 when its check fails)."""

import os
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
    tested = {"context_parallel.py", "decode_paged_cache.py", "patch_and_generate.py", "verify_third_party.py"}
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


@pytest.mark.parametrize(
    ("args", "rank_1_row"),
    [
        # 12 tokens in 4 zigzag chunks of 3: rank 1 holds chunks 1 and 2 (positions 3-8, tokens 8 + 3-8).
        (["--scheme", "zigzag", "--packed"], "| 1 | 1 | 11 12 13 14 15 16 | 3 4 5 6 7 8 |"),
        (
            ["--scheme", "contiguous", "--no-packed"],
            "| 1 | 0 | 10 11 12 13 14 15 16 17 18 19 | 10 11 12 13 14 15 16 17 18 19 |",
        ),
    ],
    ids=["zigzag-packed", "contiguous-unpacked"],
)
def test_context_parallel_shards_gather_into_the_whole_rotation(args, rank_1_row):
    # Two processes over gloo on CPU, as torchrun launches them; one OpenMP thread each on a small CI box.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    result = subprocess.run(
        [*command, str(EXAMPLES / "context_parallel.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert rank_1_row in result.stdout
    assert "gathered shards equal the single-process rotation: True" in result.stdout
    assert "... with local positions instead: False" in result.stdout
