"""Aliasing and the smaller argument checks of the Python layer.

Each case is one a user can hit by accident: an output that is another call's input, the same
array passed as q and k, Q and K views that share heads of one buffer (also across the batch
entries of a BHSD tensor, which the C++ library sees one entry at a time). Refusals must name both
tensors and leave every byte as it was; views that interleave without sharing an element (packed
QKV) must still be rotated, and equal a rotation of separate copies.
"""

import numpy as np
import pytest
import torch

import rotary

CONFIG = {"rope_theta": 10000.0, "hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 128}
TOKENS, HEAD_DIM = 5, 16


@pytest.fixture
def rope():
    return rotary.Rope(CONFIG)


def _random(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _refused(call, *buffers, names):
    before = [b.copy() for b in buffers]
    with pytest.raises(rotary.Error) as info:
        call()
    message = str(info.value)
    for name in names:
        assert name in message, message
    for b, old in zip(buffers, before, strict=True):
        np.testing.assert_array_equal(b, old)
    return info.value


def test_q_out_that_is_k_is_refused(rope):
    q, k, k2 = (
        _random(TOKENS, 2, HEAD_DIM),
        _random(TOKENS, 2, HEAD_DIM, seed=1),
        np.zeros((TOKENS, 2, HEAD_DIM), np.float32),
    )
    error = _refused(
        lambda: rope.rotate(q, np.arange(TOKENS), k=k, q_out=k, k_out=k2),
        q,
        k,
        k2,
        names=["q_out", "shares memory with k"],
    )
    assert error.argument == "q_out"


def test_the_same_array_as_q_and_k_is_refused(rope):
    x = _random(TOKENS, 2, HEAD_DIM)
    _refused(lambda: rope.rotate(x, np.arange(TOKENS), k=x), x, names=["q_out", "k"])


def test_q_and_k_sharing_a_head_of_one_buffer_are_refused(rope):
    buffer = _random(TOKENS, 6, HEAD_DIM)
    _refused(
        lambda: rope.rotate(buffer[:, 0:4], np.arange(TOKENS), k=buffer[:, 3:5]),
        buffer,
        names=["q_out", "shares memory with k"],
    )


def test_bhsd_views_sharing_heads_are_refused_before_any_batch_entry_is_written(rope):
    # (batch, heads, seq, head_dim) does not fold into one view: rotated entry by entry, so the
    # whole-tensor check must come first.
    buffer = _random(2, 6, TOKENS, HEAD_DIM)
    _refused(
        lambda: rope.rotate(buffer[:, 0:4], np.arange(TOKENS), k=buffer[:, 3:5], layout="bhsd"),
        buffer,
        names=["q_out", "shares memory with k"],
    )


def test_packed_qkv_slices_are_rotated_like_separate_copies(rope):
    packed = _random(TOKENS, 8, HEAD_DIM)  # 4 Q heads, 2 K heads, 2 V heads per token
    q, k = packed[:, 0:4].copy(), packed[:, 4:6].copy()
    positions = np.arange(TOKENS) * 7
    rope.rotate(q, positions, k=k)
    rope.rotate(packed[:, 0:4], positions, k=packed[:, 4:6])
    np.testing.assert_array_equal(packed[:, 0:4], q)
    np.testing.assert_array_equal(packed[:, 4:6], k)


def test_kv_append_of_one_array_as_q_and_k_is_refused(rope):
    cache = rotary.KvCache.paged(4, 4, num_kv_heads=2, head_dim=HEAD_DIM, dtype="float32")
    sequence = rotary.BlockTable([0, 1])
    x, v = _random(TOKENS, 2, HEAD_DIM), _random(TOKENS, 2, HEAD_DIM, seed=2)
    _refused(
        lambda: cache.append(rope, x, x, v, np.arange(TOKENS), sequence), x, v, names=["q", "shares memory with k"]
    )
    _refused(
        lambda: cache.append(rope, x, v, x, np.arange(TOKENS), sequence), x, v, names=["q", "shares memory with v"]
    )
    assert sequence.length == 0
    assert not cache.keys(rotary.BlockTable([0, 1], length=8)).any()


def test_a_tensor_on_the_meta_device_is_refused_by_its_device(rope):
    q = torch.empty(TOKENS, 4, HEAD_DIM, device="meta")
    with pytest.raises(rotary.Error, match="device") as info:
        rope.rotate(q, np.arange(TOKENS))
    assert info.value.argument == "q"
    with pytest.raises(rotary.Error, match="'meta' device"):
        rope.rotate(torch.zeros(TOKENS, 4, HEAD_DIM), np.arange(TOKENS), q_out=q)


@pytest.mark.parametrize("shape", [(0, 4, HEAD_DIM), (TOKENS, 0, HEAD_DIM), (2, 0, 4, HEAD_DIM)])
def test_an_empty_numpy_array_is_a_no_op(rope, shape):
    # NumPy exports zero strides for arrays without elements; there is nothing to address.
    q = np.empty(shape, np.float32)
    positions = np.zeros(shape[:-2], np.int64)
    assert rope.rotate(q, positions) is q


def test_block_ids_past_int32_are_named(rope):
    with pytest.raises(rotary.Error, match=r"blocks\[1\]: expected a 32-bit block id") as info:
        rotary.BlockTable([0, 2**31])
    assert info.value.argument == "blocks[1]"
    table = rotary.BlockTable([0])
    with pytest.raises(rotary.Error, match=r"blocks\[0\]"):
        table.blocks = [2**40]
    assert table.blocks == [0]
