"""rotary.distributed: which tokens a context-parallel rank holds and their global positions, for
plain and packed (THD) sequences, checked against the layouts written out here, and rotation by
shards equal to the whole sequence's rotation, bit for bit."""

import numpy as np
import pytest
import torch

import rotary
import rotary.distributed as rd


def zigzag_formula(length, cp_size, rank):
    """TransformerEngine's / Megatron's load-balanced layout: 2 * cp_size chunks, rank r holds
    chunks r and 2 * cp_size - 1 - r."""
    chunk = length // (2 * cp_size)
    first = list(range(rank * chunk, (rank + 1) * chunk))
    second = list(range((2 * cp_size - 1 - rank) * chunk, (2 * cp_size - rank) * chunk))
    return first + second


def test_zigzag_of_eight_tokens_over_two_ranks():
    assert rd.shard_indices(8, 2, 0).tolist() == [0, 1, 6, 7]
    assert rd.shard_indices(8, 2, 1).tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize("cp_size", [1, 2, 3, 4])
@pytest.mark.parametrize("scheme", rd.SCHEMES)
def test_shards_follow_the_layout_and_cover_every_token_once(cp_size, scheme):
    length = 2 * cp_size * 5
    shards = [rd.shard_indices(length, cp_size, r, scheme) for r in range(cp_size)]
    for rank, indices in enumerate(shards):
        if scheme == "zigzag":
            assert indices.tolist() == zigzag_formula(length, cp_size, rank)
        else:
            per_rank = length // cp_size
            assert indices.tolist() == list(range(rank * per_rank, (rank + 1) * per_rank))
    assert sorted(np.concatenate(shards).tolist()) == list(range(length))


def test_packed_positions_restart_per_sequence_from_their_offsets():
    cu_seqlens = [0, 3, 3, 7]  # lengths 3, 0, 4
    assert rd.packed_positions(cu_seqlens).tolist() == [0, 1, 2, 0, 1, 2, 3]
    assert rd.packed_positions(cu_seqlens, offsets=[5, 9, 2]).tolist() == [5, 6, 7, 2, 3, 4, 5]


def test_packed_shard_cuts_each_sequence_on_its_own():
    cu_seqlens = np.array([0, 8, 20])  # 8 and 12 tokens, cp_size 2: chunks of 2 and 3 (zigzag)
    shard = rd.packed_shard(cu_seqlens, 2, 1, "zigzag", offsets=[0, 100])
    expected = [2, 3, 4, 5] + [8 + i for i in (3, 4, 5, 6, 7, 8)]
    assert shard.indices.tolist() == expected
    assert shard.positions.tolist() == [2, 3, 4, 5] + [103, 104, 105, 106, 107, 108]
    assert shard.cu_seqlens.tolist() == [0, 4, 10]


def rotate_whole_and_by_shards(rope, length_or_cu, cp_size, scheme, dtype, packed, offsets=None, local=False):
    generator = torch.Generator().manual_seed(7)
    cu = np.asarray(length_or_cu) if packed else np.array([0, length_or_cu])
    tokens = int(cu[-1])
    q = torch.randn(tokens, 4, rope.head_dim, generator=generator).to(dtype)
    k = torch.randn(tokens, 2, rope.head_dim, generator=generator).to(dtype)
    whole_q, whole_k = q.clone(), k.clone()
    rope.rotate(whole_q, rd.packed_positions(cu, offsets), whole_k)
    gathered_q, gathered_k = torch.empty_like(q), torch.empty_like(k)
    for rank in range(cp_size):
        shard = rd.packed_shard(cu, cp_size, rank, scheme, offsets=offsets)
        index = torch.from_numpy(shard.indices)
        local_q, local_k = q[index].clone(), k[index].clone()  # what the rank holds
        positions = np.arange(len(shard.indices)) if local else shard.positions
        rope.rotate(local_q, positions, local_k)
        gathered_q[index], gathered_k[index] = local_q, local_k
    return (whole_q, whole_k), (gathered_q, gathered_k)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("scheme", rd.SCHEMES)
@pytest.mark.parametrize("packed", [False, True])
def test_rotating_each_shard_by_its_positions_equals_the_whole_rotation(dtype, scheme, packed):
    rope = rotary.Rope("llama-3.1-8b")
    data = [0, 16, 16, 64, 96] if packed else 64
    offsets = [0, 3, 1000, 7] if packed else None
    whole, gathered = rotate_whole_and_by_shards(rope, data, 4, scheme, dtype, packed, offsets)
    assert torch.equal(whole[0], gathered[0]) and torch.equal(whole[1], gathered[1])


def test_a_rank_given_local_positions_rotates_wrongly():
    # The test of the test: the usual mistake (positions counted within the shard) must show.
    rope = rotary.Rope("llama-3.1-8b")
    whole, gathered = rotate_whole_and_by_shards(rope, 64, 4, "zigzag", torch.float32, False, local=True)
    assert not torch.equal(whole[0], gathered[0])


def test_mrope_position_ids_shard_like_the_tokens():
    rope = rotary.Rope("qwen2.5-vl-7b-instruct")
    tokens = 32
    ids = np.stack([np.arange(tokens), np.arange(tokens) // 4, np.arange(tokens) % 4 + 10])
    generator = torch.Generator().manual_seed(3)
    q = torch.randn(tokens, 2, rope.head_dim, generator=generator)
    whole = q.clone()
    rope.rotate(whole, ids)
    for rank in range(2):
        indices = rd.shard_indices(tokens, 2, rank)
        local = q[torch.from_numpy(indices)].clone()
        rope.rotate(local, rd.shard_mrope_positions(ids, indices))
        assert torch.equal(local, whole[torch.from_numpy(indices)])


@pytest.mark.parametrize(
    ("call", "argument", "words"),
    [
        (lambda: rd.shard_indices(10, 2, 0), "length", "do not split into 4 equal chunks"),
        (lambda: rd.shard_indices(8, 2, 2), "cp_rank", "[0, cp_size = 2)"),
        (lambda: rd.shard_indices(8, 0, 0), "cp_size", ">= 1"),
        (lambda: rd.shard_indices(8, 2, 0, "ring"), "scheme", "'contiguous', 'zigzag'"),
        (lambda: rd.packed_positions([1, 4]), "cu_seqlens", "starting at 0"),
        (lambda: rd.packed_positions([0, 4, 2]), "cu_seqlens", "non-decreasing"),
        (lambda: rd.packed_positions([0, 4], offsets=[1, 2]), "offsets", "one offset per sequence"),
        (lambda: rd.packed_positions([0, 4], offsets=[-1]), "offsets", ">= 0"),
        (lambda: rd.packed_positions([0, 2**50]), "cu_seqlens", "per request"),
        (lambda: rd.packed_shard([0, 8, 14], 2, 0), "cu_seqlens", "sequence 1: 6 tokens do not split"),
        (lambda: rd.shard_mrope_positions(np.zeros((3, 4), dtype=np.int64), [4]), "indices", "[0, 4)"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, argument, words):
    with pytest.raises(rotary.Error) as error:
        call()
    assert error.value.argument == argument
    assert words in str(error.value)
