"""Prefill a prompt and decode token by token on rotary's paged KV cache, then check that the
decoded attention outputs equal one causal attention over the whole sequence computed by PyTorch.

    python examples/python/decode_paged_cache.py [--prompt 40] [--decode 8] [--block-size 16]

One attention layer of Llama 3.1 8B's shape (32 query heads, 8 KV heads, 128 channels) with its
real RoPE (the stored config "llama-3.1-8b"). ``KvCache.append`` rotates the new queries in place
and writes the rotated keys and the values into the sequence's blocks in one call; the blocks are
scattered over the pool, as a server's scheduler hands them out. Exit status 1 on a mismatch.
"""

import argparse
import sys

import torch

import rotary

HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", type=int, default=40)
    parser.add_argument("--decode", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=16)
    args = parser.parse_args()
    total = args.prompt + args.decode

    rope = rotary.Rope(rotary.builtin_config("llama-3.1-8b"))
    torch.manual_seed(0)
    q = torch.randn(total, HEADS, HEAD_DIM)  # (tokens, heads, head_dim): one sequence
    k = torch.randn(total, KV_HEADS, HEAD_DIM)
    v = torch.randn(total, KV_HEADS, HEAD_DIM)

    # A pool of blocks, and the (scattered) blocks this sequence was given.
    blocks_needed = -(-total // args.block_size)
    cache = rotary.KvCache.paged(4 * blocks_needed, args.block_size, num_kv_heads=KV_HEADS, head_dim=HEAD_DIM)
    sequence = rotary.BlockTable([4 * b + 3 for b in reversed(range(blocks_needed))])

    decoded = []
    for start, stop in [(0, args.prompt)] + [(t, t + 1) for t in range(args.prompt, total)]:
        q_step = q[start:stop].clone()  # rotated in place by append
        cache.append(rope, q_step, k[start:stop], v[start:stop], torch.arange(start, stop), sequence)
        decoded.append(torch.from_numpy(rotary.attention(q_step, cache, sequence, first_index=start)))
    decoded = torch.cat(decoded)

    # The same layer in one pass: rotate q and k out of place, causal attention by PyTorch.
    q_rot, k_rot = q.clone(), k.clone()
    rope.rotate(q_rot, torch.arange(total), k=k_rot)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q_rot.transpose(0, 1), k_rot.transpose(0, 1), v.transpose(0, 1), is_causal=True, enable_gqa=True
    ).transpose(0, 1)

    error = (decoded - expected).abs().max().item()
    print(f"{args.prompt} prompt tokens, {args.decode} decoded one by one, blocks {list(sequence.blocks)}")
    print(f"largest difference from PyTorch's attention over the whole sequence: {error:.2e}")
    return 0 if error < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
