"""rotary.rms_norm_rotate against the torch sequence it replaces, on the prefill shape.

    python bench/qk_norm_torch.py [--threads 1,2] [--repeats R] [--markdown]

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
    parser.add_argument("--threads", default="2", help="comma-separated thread counts (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--markdown", action="store_true", help="print a section for bench/results-cpu.md")
    args = parser.parse_args()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        rows += timings(threads, args.repeats)
    if args.markdown:
        print(markdown(rows))
        return
    for r in rows:
        print(
            f"{r['dtype']:9s} threads {r['threads']}: torch {r['torch']:.2f} ms, unfused {r['unfused']:.2f} ms, "
            f"fused {r['fused']:.2f} ms; fused vs torch {r['torch'] / r['fused']:.2f}x, "
            f"vs unfused {r['unfused'] / r['fused']:.2f}x"
        )


def timings(threads, repeats):
    """[{dtype, threads, torch, unfused, fused}] in ms, float32 and bfloat16."""
    torch.set_num_threads(threads)
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
    rope = rotary.Rope(rotary.config_from_dict(config.to_dict()), cache_positions=T, max_threads=threads)
    embedding = qwen3.Qwen3RotaryEmbedding(config)
    positions = torch.arange(T).view(1, T)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        times = measure(dtype, config, rope, embedding, positions, repeats)
        rows.append({"dtype": str(dtype).replace("torch.", ""), "threads": threads, **times})
    return rows


def markdown(rows):
    out = [
        "## Fused QK-RMSNorm + RoPE against the torch sequence (bench/qk_norm_torch.py)\n",
        (
            f"Prefill, Qwen3's norms and RoPE: {T} tokens, {HEADS} Q + {KV_HEADS} KV heads x {HEAD_DIM}, "
            "in place, medians. torch: transformers' Qwen3RMSNorm modules, then its apply_rotary_pos_emb "
            "(cos/sin computed outside the timing); unfused: the same norm modules, then "
            "rotary.Rope.rotate; fused: rotary.rms_norm_rotate.\n"
        ),
        "| dtype | threads | torch ms | unfused ms | fused ms | fused vs torch | fused vs unfused (goal >= 1.6x) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        speedup = r["unfused"] / r["fused"]
        out.append(
            f"| {r['dtype']} | {r['threads']} | {r['torch']:.1f} | {r['unfused']:.1f} | {r['fused']:.1f} | "
            f"{r['torch'] / r['fused']:.1f}x | {speedup:.1f}x ({'met' if speedup >= 1.6 else 'not met'}) |"
        )
    return "\n".join(out) + "\n"


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
