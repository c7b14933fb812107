"""rotary.rms_norm_rotate against the torch sequence it replaces, on the prefill shape.

    python bench/qk_norm_torch.py [--threads N] [--repeats R]

The shape of rotate_bench's qk_norm rows: T = 4096 tokens, 32 query and 8 key heads of 128,
Qwen3's norms (transformers' Qwen3RMSNorm modules) and RoPE (theta 1e6). Three timings per dtype,
medians of R runs, each on fresh copies of the same q and k:
  torch      q_norm(q), k_norm(k), then transformers' apply_rotary_pos_emb with cos/sin from
             Qwen3RotaryEmbedding (computed once, outside the timing);
  unfused    the norm modules, then rotary.Rope.rotate in place;
  fused      rotary.rms_norm_rotate in place.
"""

import argparse
import statistics
import time

import torch
from transformers import AutoConfig
from transformers.models.qwen3 import modeling_qwen3 as qwen3

import rotary

T, HEADS, KV_HEADS, HEAD_DIM = 4096, 32, 8, 128


def median_ms(run, inputs, repeats):
    times = []
    for _ in range(repeats):
        q, k = (x.clone() for x in inputs)
        start = time.perf_counter()
        run(q, k)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = AutoConfig.for_model(
        "qwen3",
        hidden_size=HEADS * HEAD_DIM,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        num_hidden_layers=1,
        rope_theta=1e6,
        max_position_embeddings=T,
    )
    rope = rotary.Rope(rotary.config_from_dict(config.to_dict()), cache_positions=T, max_threads=args.threads)
    embedding = qwen3.Qwen3RotaryEmbedding(config)
    positions = torch.arange(T).view(1, T)
    for dtype in (torch.float32, torch.bfloat16):
        times = measure(dtype, config, rope, embedding, positions, args.repeats)
        fused = times["fused"]
        ratios = f"fused vs torch {times['torch'] / fused:.2f}x, vs unfused {times['unfused'] / fused:.2f}x"
        print(
            f"{str(dtype).replace('torch.', ''):9s} threads {args.threads}: "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in times.items())
            + f"; {ratios}"
        )


def measure(dtype, config, rope, embedding, positions, repeats):
    q_norm = qwen3.Qwen3RMSNorm(HEAD_DIM, config.rms_norm_eps).to(dtype)
    k_norm = qwen3.Qwen3RMSNorm(HEAD_DIM, config.rms_norm_eps).to(dtype)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, T, HEADS, HEAD_DIM, generator=g).to(dtype)
    k = torch.randn(1, T, KV_HEADS, HEAD_DIM, generator=g).to(dtype)
    cos, sin = (x.to(dtype) for x in embedding(q, positions))

    def torch_sequence(q, k):
        qn, kn = q_norm(q).transpose(1, 2), k_norm(k).transpose(1, 2)
        return qwen3.apply_rotary_pos_emb(qn, kn, cos, sin)

    def unfused(q, k):
        rope.rotate(q_norm(q), positions, k_norm(k))

    def fused(q, k):
        rotary.rms_norm_rotate(rope, q, positions, k, q_norm=q_norm, k_norm=k_norm)

    runs = (("torch", torch_sequence), ("unfused", unfused), ("fused", fused))
    with torch.no_grad():
        return {name: median_ms(run, (q, k), repeats) for name, run in runs}


if __name__ == "__main__":
    main()
