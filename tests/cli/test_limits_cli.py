"""Sizes typed on the command line: past include/rotary/limits.h they exit 2 with one line naming
the option, the value and the bytes, before any file is written or any buffer allocated."""

import os

import pytest

from cli_runner import CLI, run


@pytest.fixture(scope="module", autouse=True)
def binary_exists():
    if not os.path.exists(CLI):
        pytest.skip(f"{CLI} is not built")


def refused(*args):
    result = run(*args, check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_export_positions_past_the_limit_writes_nothing(tmp_path):
    out = tmp_path / "table.safetensors"
    stderr = refused("export", "llama-3-8b", "--positions", 10**12, "--out", out)
    assert "--positions: 1000000000000 positions need 465.7 TiB of cos/sin tables (64 pairs x 2 x 4" in stderr
    assert "the limit is 33554432 positions" in stderr
    assert list(tmp_path.iterdir()) == []


def test_export_positions_at_the_limit_is_checked_by_bytes_too(tmp_path):
    # f16 halves the bytes; the count limit is the same.
    stderr = refused(
        "export", "llama-3-8b", "--positions", 2**25 + 1, "--dtype", "f16", "--out", tmp_path / "t.safetensors"
    )
    assert "33554433 positions need 8.0 GiB" in stderr and "2 bytes each" in stderr
    assert list(tmp_path.iterdir()) == []


def test_bench_sizes_are_bounded():
    stderr = refused("bench", "--tokens", 10**9)
    assert "--tokens: 1000000000 tokens need" in stderr and "rotary::kMaxBenchTokens" in stderr
    assert "--repeats" in refused("bench", "--repeats", 10**6)
    assert "--threads" in refused("bench", "--threads", 10**6)


def test_decay_sizes_are_bounded():
    assert "--points-per-decade" in refused("decay", "llama-3-8b", "--points-per-decade", 10001)
    assert "--max-distance" in refused("decay", "llama-3-8b", "--max-distance", 2**53 + 1)
