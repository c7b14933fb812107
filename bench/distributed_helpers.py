"""rotary.distributed's helpers against the rotation they prepare: what working out a rank's shard
costs next to rotating it.

    python bench/distributed_helpers.py [--threads N] [--repeats R] [--rotation-repeats R]

Batches: 32768 tokens packed as 8 sequences of 4096, and one sequence of 131072; cp_size 2, 4, 8;
schemes zigzag and contiguous. For each, medians (time.perf_counter_ns) of
  packed_shard       rd.packed_shard(cu_seqlens, cp_size, 0, scheme): rank 0's indices, positions
                     and cu_seqlens (every rank does the same work);
  packed_positions   rd.packed_positions(cu_seqlens) of the whole batch (one per batch: packed_shard
                     computes it too);
  rotate             rank 0's shard rotated in place by its positions with Llama-3.1-8B's RoPE:
                     Rope.rotate on NumPy float32 q (tokens / cp_size, 32, 128) and k (tokens /
                     cp_size, 8, 128), and rotary.torch.apply_rotary_ on the same shapes in bfloat16;
                     cos/sin cached for every position (Rope(cache_positions=131072)), the fastest
                     rotation, so the ratios are the helpers' largest share.
Ratios are packed_shard's median over the rotation's. Prints a Markdown table on stdout, then how
many cores other processes kept busy meanwhile (/proc/stat less this process's own CPU time): on a
shared machine the rotation, which uses every core, slows down the most.
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

import rotary
import rotary.distributed as rd
from rotary.torch import apply_rotary_

HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128
BATCHES = {"8 x 4096 packed": [4096] * 8, "1 x 131072": [131072]}
CP_SIZES = (2, 4, 8)


def cpu_model():
    """The model name /proc/cpuinfo gives, else platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def busy_cpu_seconds():
    """CPU time every process on the machine has used (/proc/stat), or None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def median_us(call, repeats):
    """Median of ``repeats`` timed calls, in microseconds, after one untimed call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


def rotation_us(rope, positions, repeats):
    """Median in-place rotation of a shard of ``len(positions)`` tokens: {dtype: µs}."""
    generator = np.random.default_rng(0)
    q = generator.standard_normal((len(positions), HEADS, HEAD_DIM), dtype=np.float32)
    k = generator.standard_normal((len(positions), KV_HEADS, HEAD_DIM), dtype=np.float32)
    times = {"float32": median_us(lambda: rope.rotate(q, positions, k), repeats)}
    q16, k16 = torch.from_numpy(q).bfloat16(), torch.from_numpy(k).bfloat16()
    torch_positions = torch.from_numpy(positions)
    times["bfloat16"] = median_us(lambda: apply_rotary_(q16, k16, torch_positions, rope, layout="shd"), repeats)
    return times


def rows_for(name, lengths, rope, args):
    cu_seqlens = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    positions_us = median_us(lambda: rd.packed_positions(cu_seqlens), args.repeats)
    rows = []
    for cp_size in CP_SIZES:
        for scheme in ("zigzag", "contiguous"):
            shard_us = median_us(lambda c=cp_size, s=scheme: rd.packed_shard(cu_seqlens, c, 0, s), args.repeats)
            shard = rd.packed_shard(cu_seqlens, cp_size, 0, scheme)
            rotate = rotation_us(rope, shard.positions, args.rotation_repeats)
            rows.append((name, cp_size, scheme, len(shard.indices), shard_us, positions_us, rotate))
    return rows


def print_header(args):
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; rotary threads: {args.threads}")
    print(
        f"Load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; medians of {args.repeats} helper "
        f"calls and {args.rotation_repeats} rotations (rank 0; Llama-3.1-8B, {HEADS} + {KV_HEADS} heads x {HEAD_DIM})\n"
    )
    print(
        "| batch | cp_size | scheme | tokens per rank | packed_shard µs | packed_positions µs | rotate f32 µs "
        "| rotate bf16 µs | packed_shard / rotate f32 | packed_shard / rotate bf16 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="rotary max_threads (default: every core)")
    parser.add_argument("--repeats", type=int, default=201, help="timed calls per helper median")
    parser.add_argument("--rotation-repeats", type=int, default=15, help="timed calls per rotation median")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rope = rotary.Rope("llama-3.1-8b", cache_positions=max(sum(x) for x in BATCHES.values()), max_threads=args.threads)
    print_header(args)
    start_wall, start_own, start_all = time.perf_counter(), time.process_time(), busy_cpu_seconds()
    for name, lengths in BATCHES.items():
        for batch, cp_size, scheme, tokens, shard_us, positions_us, rotate in rows_for(name, lengths, rope, args):
            f32, bf16 = rotate["float32"], rotate["bfloat16"]
            print(
                f"| {batch} | {cp_size} | {scheme} | {tokens} | {shard_us:.1f} | {positions_us:.1f} | {f32:.0f} "
                f"| {bf16:.0f} | {shard_us / f32:.2%} | {shard_us / bf16:.2%} |",
                flush=True,
            )
    if start_all is not None:  # the timings are only as quiet as the machine was
        others = busy_cpu_seconds() - start_all - (time.process_time() - start_own)
        print(f"\nOther processes kept {others / (time.perf_counter() - start_wall):.2f} cores busy during the run.")


if __name__ == "__main__":
    main()
