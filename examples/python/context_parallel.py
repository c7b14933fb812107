"""Context parallelism over torch.distributed: every rank rotates its shard of a packed batch by the
tokens' global positions, and the gathered shards equal one process rotating the whole batch.

    torchrun --standalone --nproc-per-node 2 examples/python/context_parallel.py \
        [--scheme zigzag|contiguous] [--packed|--no-packed]

Runs on CPU with the gloo backend. The batch is two packed sequences of 4 and 6 tokens per rank
(8 and 12 on two ranks), or with --no-packed one sequence of 10 per rank; q and k have Llama 3.1
8B's heads (32 and 8 of 128) and are the same on every rank (fixed seed). rotary.distributed says
which tokens each rank holds and their positions; rank 0 prints the layout, gathers the rotated
shards, and compares them with the single-process rotation, and with what ranks that count
positions within their shard (0, 1, ...) would have computed. Exit status 1 on a mismatch.
"""

import argparse
import datetime
import sys

import numpy as np
import torch
import torch.distributed as dist

import rotary
import rotary.distributed as rd
from rotary.torch import apply_rotary

HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128


def gather(tensor, world_size):
    """Every rank's tensor (all the same shape), in rank order."""
    parts = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(parts, tensor)
    return parts


def print_layout(shard, indices, positions, scheme):
    """One row per rank and sequence: the global tokens it holds and their positions."""
    print(f"| rank | sequence | global tokens ({scheme}) | positions |\n|---|---|---|---|")
    bounds = shard.cu_seqlens  # every rank holds the same number of each sequence's tokens
    for rank, (rank_indices, rank_positions) in enumerate(zip(indices, positions, strict=True)):
        for sequence in range(len(bounds) - 1):
            part = slice(bounds[sequence], bounds[sequence + 1])
            tokens = " ".join(map(str, rank_indices[part].tolist()))
            where = " ".join(map(str, rank_positions[part].tolist()))
            print(f"| {rank} | {sequence} | {tokens} | {where} |")


def equals_whole(gathered, indices, whole):
    """Whether the ranks' rotated q and k shards, each token put back at its global index, equal
    the whole batch's rotated q and k, bit for bit."""
    for parts, expected in zip(gathered, whole, strict=True):
        put_back = torch.empty_like(expected)
        for part, index in zip(parts, indices, strict=True):
            put_back[index] = part
        if not torch.equal(put_back, expected):
            return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", choices=rd.SCHEMES, default="zigzag")
    parser.add_argument("--packed", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank, world_size = dist.get_rank(), dist.get_world_size()

    lengths = [4 * world_size, 6 * world_size] if args.packed else [10 * world_size]
    cu_seqlens = np.concatenate([[0], np.cumsum(lengths)])
    tokens = int(cu_seqlens[-1])
    generator = torch.Generator().manual_seed(0)  # the same global q and k on every rank
    q = torch.randn(tokens, HEADS, HEAD_DIM, generator=generator)
    k = torch.randn(tokens, KV_HEADS, HEAD_DIM, generator=generator)
    rope = rotary.Rope("llama-3.1-8b")

    shard = rd.packed_shard(cu_seqlens, world_size, rank, args.scheme)
    index, positions = torch.from_numpy(shard.indices), torch.from_numpy(shard.positions)
    q_local, k_local = q[index], k[index]  # what this rank holds
    q_rot, k_rot = apply_rotary(q_local, k_local, positions, rope, layout="shd")
    # The usual mistake, for comparison: positions counted within the shard.
    q_wrong, k_wrong = apply_rotary(q_local, k_local, torch.arange(len(index)), rope, layout="shd")

    indices, all_positions = gather(index, world_size), gather(positions, world_size)
    rotated = [gather(x, world_size) for x in (q_rot, k_rot)]
    wrong = [gather(x, world_size) for x in (q_wrong, k_wrong)]
    ok = torch.ones(1, dtype=torch.int64)
    if rank == 0:
        print(f"{world_size} ranks, sequences of {lengths} tokens (cu_seqlens {cu_seqlens.tolist()})")
        print_layout(shard, indices, all_positions, args.scheme)
        whole = apply_rotary(q, k, rd.packed_positions(cu_seqlens), rope, layout="shd")
        equal = equals_whole(rotated, indices, whole)
        print(f"gathered shards equal the single-process rotation: {equal}")
        print(f"... with local positions instead: {equals_whole(wrong, indices, whole)}")
        ok[0] = int(equal)
    dist.broadcast(ok, src=0)  # every rank exits with rank 0's verdict
    dist.destroy_process_group()
    return 0 if ok.item() else 1


if __name__ == "__main__":
    sys.exit(main())
