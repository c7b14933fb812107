"""One rank of the context-parallel tests (tests/python/test_distributed_gloo.py).

Every process joins a gloo group, takes its shard of the sequence with rotary.distributed, rotates
it with rotary's torch operator and works on it together with the other ranks; rank 0 then writes
what the group found (JSON) for the test to assert on. Every rank builds the same global tensors
from one seed, so the single-process reference is at hand without sending it, while what a rank
computes itself uses only its own shard. Each check is run twice: with the shard's global
positions, and with the mistake the tests must catch, positions counted within the shard.
"""

import datetime
import json
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import rotary
import rotary.distributed as rd
import rotary.torch as rt

ROPE = "llama-3.1-8b"  # 128 channels, llama3 frequency scaling
HEADS, KV_HEADS = 4, 2
LENGTH = 64  # one sequence (unpacked)
CU_SEQLENS = [0, 16, 16, 64, 96]  # packed: 16, 0, 48 and 32 tokens, each splits into 8 chunks
OFFSETS = [0, 3, 1000, 7]  # each packed sequence's first position (a cached prefix, a chunk)
BATCHES = ("unpacked", "packed")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
POSITIONS = ("global", "local")
DECODE_BLOCK, DECODE_STEPS = 4, 9
MASKED = -1e30  # finite, so that a row with no visible key in a block stays finite


def cu_seqlens(batch):
    return np.array(CU_SEQLENS if batch == "packed" else [0, LENGTH])


def whole_positions(batch):
    """Positions of every token, written out: each sequence counts from its offset."""
    cu = cu_seqlens(batch)
    offsets = OFFSETS if batch == "packed" else [0]
    return np.concatenate([offsets[s] + np.arange(cu[s + 1] - cu[s]) for s in range(len(cu) - 1)])


def layout(batch, scheme, rank, world, positions="global"):
    """The tokens rank holds (global indices) and the positions it rotates them by."""
    if batch == "packed":
        shard = rd.packed_shard(CU_SEQLENS, world, rank, scheme, offsets=OFFSETS)
    else:
        shard = rd.shard(LENGTH, world, rank, scheme)
    local = np.arange(len(shard.indices))  # the mistake: positions counted within the shard
    return shard.indices, (shard.positions if positions == "global" else local)


def global_tensors(tokens, seed, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    shapes = {"q": HEADS, "k": KV_HEADS, "v": KV_HEADS, "grad": HEADS}
    return {name: torch.randn(tokens, heads, 128, generator=generator).to(dtype) for name, heads in shapes.items()}


def gather_rows(local, indices, tokens):
    """Every rank's rows placed at their global indices, on every rank. Sent as raw bytes, so that
    any dtype travels bit for bit; ranks may hold different numbers of rows (padded to the most)."""
    world = dist.get_world_size()
    counts = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([len(indices)]))
    most = int(max(counts).item())
    raw = torch.zeros((most, *local.shape[1:]), dtype=local.dtype)
    raw[: len(indices)] = local.detach()
    index = torch.zeros(most, dtype=torch.int64)
    index[: len(indices)] = torch.from_numpy(np.asarray(indices, dtype=np.int64))
    parts = [torch.empty_like(raw.view(torch.uint8)) for _ in range(world)]
    index_parts = [torch.empty_like(index) for _ in range(world)]
    dist.all_gather(parts, raw.view(torch.uint8))
    dist.all_gather(index_parts, index)
    whole = torch.empty((tokens, *local.shape[1:]), dtype=local.dtype)
    held = [i[: int(c.item())] for i, c in zip(index_parts, counts, strict=True)]
    for part, rows in zip(parts, held, strict=True):
        whole[rows] = part.view(local.dtype)[: len(rows)]
    covered_once = torch.equal(torch.cat(held).sort().values, torch.arange(tokens))
    return whole, covered_once


def check_rotation(batch, scheme, dtype, positions):
    """Each rank rotates its shard; gathered, the shards equal one process's rotation."""
    rank, world = dist.get_rank(), dist.get_world_size()
    rope = rotary.Rope(ROPE)
    data = global_tensors(len(whole_positions(batch)), seed=1, dtype=DTYPES[dtype])
    indices, rank_positions = layout(batch, scheme, rank, world, positions)
    index = torch.from_numpy(indices)
    q, k = rt.apply_rotary(data["q"][index], data["k"][index], rank_positions, rope, layout="shd")
    whole_q, whole_k = rt.apply_rotary(data["q"], data["k"], whole_positions(batch), rope, layout="shd")
    gathered_q, covered_once = gather_rows(q, indices, len(whole_q))
    gathered_k, _ = gather_rows(k, indices, len(whole_k))
    return {
        "equal": torch.equal(gathered_q, whole_q) and torch.equal(gathered_k, whole_k),
        "covered_once": covered_once,
    }


def exchange(tensor, send_to, receive_from):
    received = torch.empty_like(tensor)
    requests = dist.batch_isend_irecv(
        [dist.P2POp(dist.isend, tensor.contiguous(), send_to), dist.P2POp(dist.irecv, received, receive_from)]
    )
    for request in requests:
        request.wait()
    return received


class RingShift(torch.autograd.Function):
    """Passes K/V blocks one rank on around the ring; the gradients travel back the other way."""

    @staticmethod
    def forward(ctx, *blocks):
        rank, world = dist.get_rank(), dist.get_world_size()
        return tuple(exchange(b, (rank + 1) % world, (rank - 1) % world) for b in blocks)

    @staticmethod
    def backward(ctx, *grads):
        rank, world = dist.get_rank(), dist.get_world_size()
        return tuple(exchange(g, (rank - 1) % world, (rank + 1) % world) for g in grads)


def visible(batch, query_indices, key_indices):
    """Causal mask of a packed batch: a query sees the keys of its own sequence up to itself."""
    cu = cu_seqlens(batch)
    query_sequence = np.searchsorted(cu, query_indices, side="right") - 1
    key_sequence = np.searchsorted(cu, key_indices, side="right") - 1
    same = query_sequence[:, None] == key_sequence[None, :]
    return torch.from_numpy(same & (key_indices[None, :] <= query_indices[:, None]))


def ring_attention(batch, scheme, q, k, v, query_indices):
    """Causal attention of this rank's queries over every rank's keys: the K/V blocks go round the
    ring, each block's scores are merged into the output by their log-sum-exp (online softmax)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    groups = HEADS // KV_HEADS
    out, lse = None, None
    for step in range(world):
        key_indices, _ = layout(batch, scheme, (rank - step) % world, world)  # whose block this is
        scores = torch.einsum("qhd,khd->hqk", q, k.repeat_interleave(groups, dim=1)) / 128**0.5
        scores = scores.masked_fill(~visible(batch, query_indices, key_indices), MASKED)
        block_lse = torch.logsumexp(scores, dim=-1)
        new_lse = block_lse if lse is None else torch.logaddexp(lse, block_lse)
        weights = torch.exp(scores - new_lse[..., None])
        part = torch.einsum("hqk,khd->qhd", weights, v.repeat_interleave(groups, dim=1))
        out = part if out is None else out * torch.exp(lse - new_lse).T[..., None] + part
        lse = new_lse
        if step < world - 1:
            k, v = RingShift.apply(k, v)
    return out


def reference_attention(batch, q, k, v):
    """One process, the whole sequence, float64 softmax over the visible keys."""
    tokens = np.arange(len(q))
    groups = HEADS // KV_HEADS
    q, k, v = q.double(), k.double().repeat_interleave(groups, dim=1), v.double().repeat_interleave(groups, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q, k) / 128**0.5
    scores = scores.masked_fill(~visible(batch, tokens, tokens), float("-inf"))
    return torch.einsum("hqk,khd->qhd", torch.softmax(scores, dim=-1), v)


def leaves(*tensors):
    return [t.clone().requires_grad_() for t in tensors]


def check_ring_attention(batch, scheme, positions):
    """Ring attention over rotary-rotated shards, forward and backward (through rotary::rotate),
    against one process's attention over the whole sequence."""
    rank, world = dist.get_rank(), dist.get_world_size()
    rope = rotary.Rope(ROPE)
    data = global_tensors(len(whole_positions(batch)), seed=2)
    indices, rank_positions = layout(batch, scheme, rank, world, positions)
    index = torch.from_numpy(indices)
    q, k, v = leaves(data["q"][index], data["k"][index], data["v"][index])
    q_rot, k_rot = rt.apply_rotary(q, k, rank_positions, rope, layout="shd")
    out = ring_attention(batch, scheme, q_rot, k_rot, v, indices)
    (out * data["grad"][index]).sum().backward()

    whole_q, whole_k, whole_v = leaves(data["q"], data["k"], data["v"])
    rotated = rt.apply_rotary(whole_q, whole_k, whole_positions(batch), rope, layout="shd")
    expected = reference_attention(batch, *rotated, whole_v)
    (expected * data["grad"].double()).sum().backward()
    tokens = len(expected)
    errors = {}
    for name, got, want in (
        ("out", out, expected),
        ("grad_q", q.grad, whole_q.grad),
        ("grad_k", k.grad, whole_k.grad),
        ("grad_v", v.grad, whole_v.grad),
    ):
        gathered, _ = gather_rows(got, indices, tokens)
        errors[name] = (gathered.double() - want.double()).abs().max().item()
        errors[name + "_scale"] = want.abs().max().item()
    return errors


def decode_owner(position, world):
    """The rank whose cache holds a decoded token: the sequence's blocks of DECODE_BLOCK tokens are
    dealt to the ranks in turn."""
    return (position // DECODE_BLOCK) % world


def partial_attention(q, keys, values):
    """This rank's part of a decode step: softmax over its own keys, and their log-sum-exp."""
    groups = HEADS // KV_HEADS
    keys = keys.double().repeat_interleave(groups, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q.double(), keys) / 128**0.5
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.einsum("hqk,khd->qhd", torch.softmax(scores, dim=-1), values.double().repeat_interleave(groups, dim=1))
    return out, lse


def merge_ranks(out, lse):
    world = dist.get_world_size()
    outs, lses = [torch.empty_like(out) for _ in range(world)], [torch.empty_like(lse) for _ in range(world)]
    dist.all_gather(outs, out)
    dist.all_gather(lses, lse)
    total = torch.logsumexp(torch.stack(lses), dim=0)
    return sum(part * torch.exp(part_lse - total).T[..., None] for part, part_lse in zip(outs, lses, strict=True))


def check_decode(scheme, positions):
    """A context-parallel prefill into each rank's paged cache, then decoding token by token: the
    rank owning the new token's block appends it (at its global position, or, the mistake, at its
    local cache length), every rank attends over its own cache and the parts are merged."""
    rank, world = dist.get_rank(), dist.get_world_size()
    rope = rotary.Rope(ROPE)
    total = LENGTH + DECODE_STEPS
    data = global_tensors(total, seed=3)
    indices, prefill_positions = layout("unpacked", scheme, rank, world)
    blocks = -(-(len(indices) + DECODE_STEPS) // DECODE_BLOCK)
    cache = rotary.KvCache.paged(blocks, DECODE_BLOCK, KV_HEADS, 128)
    sequence = rotary.BlockTable(list(reversed(range(blocks))))
    index = torch.from_numpy(indices)
    cache.append(rope, None, data["k"][index], data["v"][index], prefill_positions, sequence)
    cached = list(indices)  # global index of each cache row
    error, owners = 0.0, []
    for position in range(LENGTH, total):
        step = slice(position, position + 1)
        q, owner = data["q"][step].clone(), decode_owner(position, world)
        if rank == owner:
            appended_at = position if positions == "global" else sequence.length
            cache.append(rope, q, data["k"][step], data["v"][step], [appended_at], sequence)
            cached.append(position)
        else:
            rope.rotate(q, [position])
        keys, values = torch.from_numpy(cache.keys(sequence)), torch.from_numpy(cache.values(sequence))
        out = merge_ranks(*partial_attention(q, keys, values))
        error = max(error, decode_error(rope, data, position, out))
        owners.append(owner)
    keys, _ = gather_rows(torch.from_numpy(cache.keys(sequence)), np.array(cached), total)
    whole_k = data["k"].clone()
    rope.rotate(whole_k, np.arange(total))
    return {"error": error, "keys_equal": torch.equal(keys, whole_k), "owners": owners}


def decode_error(rope, data, position, out):
    """The merged decode output against one process attending over the whole sequence so far."""
    q, k = data["q"][position : position + 1].clone(), data["k"][: position + 1].clone()
    rope.rotate(q, [position])
    rope.rotate(k, np.arange(position + 1))
    expected, _ = partial_attention(q, k, data["v"][: position + 1])
    return (out - expected).abs().max().item()


def every_check():
    for batch in BATCHES:
        for scheme in rd.SCHEMES:
            for positions in POSITIONS:
                for dtype in DTYPES:
                    yield (
                        f"rotation/{batch}/{scheme}/{dtype}/{positions}",
                        check_rotation,
                        (batch, scheme, dtype, positions),
                    )
                yield f"ring/{batch}/{scheme}/{positions}", check_ring_attention, (batch, scheme, positions)
    for scheme in rd.SCHEMES:
        for positions in POSITIONS:
            yield f"decode/{scheme}/{positions}", check_decode, (scheme, positions)


def run_rank(rank, world, directory):
    """The entry point of each spawned process (torch.multiprocessing passes the rank first)."""
    torch.set_num_threads(1)
    init = f"file://{Path(directory) / 'rendezvous'}"
    timeout = datetime.timedelta(seconds=60)  # a rank that dies must not leave the others waiting long
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world, timeout=timeout)
    try:
        facts = {name: check(*arguments) for name, check, arguments in every_check()}
    finally:
        dist.destroy_process_group()
    if rank == 0:
        (Path(directory) / "facts.json").write_text(json.dumps(facts, indent=1))
