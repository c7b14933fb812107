"""Sizes a Python caller chooses: past include/rotary/limits.h they raise rotary.Error naming the
argument, the value and the bytes, before anything is allocated, never MemoryError; sizes that
are not integers raise rotary.Error naming the argument, not int()'s own message."""

import pathlib
import re

import numpy as np
import pytest

import rotary
from rotary import _limits

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = {"head_dim": 16, "rope_theta": 10000.0, "max_position_embeddings": 64}
LLAMA = {"head_dim": 128, "rope_theta": 500000.0, "max_position_embeddings": 8192}


def refused(argument, fn, *fragments):
    """fn() raises rotary.Error for `argument` whose message holds every fragment."""
    with pytest.raises(rotary.Error) as info:
        fn()
    assert info.value.argument == argument, str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


def test_python_limits_equal_the_headers():
    header = (ROOT / "include" / "rotary" / "limits.h").read_text()
    values = {}
    for name, expression in re.findall(r"constexpr \w+ (kMax\w+) = ([^;]+);", header):
        expression = re.sub(r"int64_t\{(\d+)\}", r"\1", expression)
        values[name] = eval(expression, {})  # shifts and literals only
    for name, value in vars(_limits).items():
        if name.startswith("MAX_"):
            constant = "kMax" + "".join(part.title() for part in name[4:].split("_"))
            assert values[constant] == value, name


@pytest.mark.parametrize(
    "size, text", [(512, "512 bytes"), (1536, "1.5 KiB"), (64 << 30, "64.0 GiB"), (2e9 * 64 * 8, "953.7 GiB")]
)
def test_bytes_read_as_the_core_writes_them(size, text):
    assert _limits.format_bytes(size) == text


def test_cache_positions_past_the_limit_names_the_bytes():
    refused(
        "options.cache_positions",
        lambda: rotary.Rope(LLAMA, cache_positions=2**40),
        "1099511627776 positions need 512.0 TiB of cos/sin tables (64 pairs x 2 x 4 bytes each)",
        "33554432 positions",
    )
    refused("options.cache_positions", lambda: rotary.Rope(LLAMA, cache_positions=2_000_000_000), "953.7 GiB")


@pytest.mark.parametrize("value", [1.5, 16.0, "16", None, True, [16]])
def test_cache_positions_must_be_an_integer(value):
    error = refused("cache_positions", lambda: rotary.Rope(SMALL, cache_positions=value), "expected an integer")
    assert "int()" not in str(error)


def test_integer_like_sizes_are_accepted():
    rope = rotary.Rope(SMALL, cache_positions=np.int64(16), max_threads=np.int32(1))
    assert rope.cos_sin([3])[0].shape == (1, 8)
    refused("cache_positions", lambda: rotary.Rope(SMALL, cache_positions=2**70), "int64")


def test_max_threads_is_bounded():
    refused("max_threads", lambda: rotary.Rope(SMALL, max_threads=5000), "0 to 4096")
    refused("max_threads", lambda: rotary.Rope(SMALL, max_threads=-1))
    refused("max_threads", lambda: rotary.Rope(SMALL, max_threads=1.0), "expected an integer")
    rotary.Rope(SMALL, max_threads=4096)


def test_kv_pool_past_the_limit_names_the_bytes():
    refused(
        "num_blocks",
        lambda: rotary.KvCache.paged(2**30, 2**10, 64, 128, "float32"),
        "1073741824 blocks x 1024 tokens x 64 heads x 128 channels need 64.0 PiB of keys and "
        "values (float32, 4 bytes each)",
        "64.0 GiB",
    )
    refused(
        "capacity", lambda: rotary.KvCache.contiguous(2**25, 8, 128, "bfloat16"), "33554432 tokens", "kMaxKvBlockSize"
    )


@pytest.mark.parametrize("argument", ["num_blocks", "block_size", "num_kv_heads", "head_dim"])
@pytest.mark.parametrize("value", [2.5, "4", None])
def test_kv_sizes_must_be_integers(argument, value):
    sizes = {"num_blocks": 4, "block_size": 16, "num_kv_heads": 2, "head_dim": 8}
    sizes[argument] = value
    refused(argument, lambda: rotary.KvCache.paged(**sizes), "expected an integer")
    if argument != "num_blocks" and argument != "block_size":
        contiguous = {k: v for k, v in sizes.items() if k not in ("num_blocks", "block_size")}
        refused(argument, lambda: rotary.KvCache.contiguous(64, **contiguous))


def test_attention_integers_and_output_size():
    rope = rotary.Rope(SMALL)
    cache = rotary.KvCache.contiguous(8, 2, 16)
    sequence = rotary.BlockTable([0])
    k = np.ones((4, 2, 16), np.float32)
    cache.append(rope, None, k, k, np.arange(4), sequence)
    q = np.ones((4, 4, 16), np.float32)
    assert rotary.attention(q, cache, sequence, 0).shape == (4, 4, 16)
    refused("first_index", lambda: rotary.attention(q, cache, sequence, 0.5), "expected an integer")
    refused("sliding_window", lambda: rotary.attention(q, cache, sequence, 0, sliding_window="2"))
    # A view with zero strides is as large as it says: its output would be 8 TiB.
    virtual = np.lib.stride_tricks.as_strided(q, shape=(2**27, 2**10, 16), strides=(0, 0, 4))
    refused(
        "q",
        lambda: rotary.attention(virtual, cache, sequence, 0),
        "134217728 tokens x 1024 heads x 16 channels need 8.0 TiB of attention output",
    )


def test_kv_copy_of_a_sequence_longer_than_the_pool_is_refused():
    cache = rotary.KvCache.paged(4, 16, 2, 8)
    sequence = rotary.BlockTable([0, 0, 0, 0, 0, 0, 0, 0], 2**40)
    refused("sequence.length", lambda: cache.keys(sequence), "exceed the pool's 64")
    refused("sequence.length", lambda: cache.values(sequence))


def test_cos_sin_rows_are_bounded():
    rope = rotary.Rope(LLAMA)
    many = np.broadcast_to(np.int64(5), (2**26,))
    refused(
        "positions",
        lambda: rope.cos_sin(many),
        "67108864 positions need 32.0 GiB of cos/sin tables (64 pairs",
        "33554432 positions",
    )


def test_broadcast_positions_are_bounded():
    rope = rotary.Rope(SMALL)
    base = np.zeros((1, 1, 16), np.float32)
    q = np.lib.stride_tricks.as_strided(base, shape=(2**40, 1, 16), strides=(0, 0, 4))
    refused(
        "positions",
        lambda: rope.rotate(q, np.arange(1)),
        "1099511627776 positions need 8.0 TiB of a contiguous int64 copy",
        "64.0 GiB",
    )


def test_memory_error_becomes_rotary_error(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError()

    rope = rotary.Rope(SMALL)
    monkeypatch.setattr(np, "empty", no_memory)
    refused(
        "positions",
        lambda: rope.cos_sin(np.arange(10)),
        "10 positions need 640 bytes of cos/sin tables",
        "more than this machine could allocate",
    )


def test_multimodal_sizes():
    refused(
        "segments", lambda: rotary.mrope_positions([2**24, (1, 4, 4)]), "16777220 tokens need 384.0 MiB of position ids"
    )
    refused("grids[0].h", lambda: rotary.vision_patch_positions([(1, 2.5, 4)]), "expected an integer")
    refused("spatial_merge_size", lambda: rotary.vision_patch_positions([(1, 4, 4)], 1.0))


def test_meta_table_rows_are_bounded():
    meta = pytest.importorskip("rotary.compat.meta")
    refused(
        "end",
        lambda: meta.precompute_freqs_cis(128, 10**9),
        "1000000000 positions need 476.8 GiB of a complex64 table (64 pairs",
        "33554432",
    )
    refused("end", lambda: meta.precompute_freqs_cis(128, 4096.0), "expected an integer")


def test_verify_head_dim_is_a_bounded_integer():
    # rotary.verify builds probe tensors of head_dim channels: the size is bounded like a config's.
    def identity(q, k, positions):
        return q, k

    for bad in (1 << 20, 16.0, "64"):
        with pytest.raises(rotary.Error, match="head_dim") as info:
            rotary.verify(identity, head_dim=bad)
        assert info.value.argument == "head_dim"
