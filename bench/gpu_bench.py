"""GPU benchmark of rotary's CUDA backend, in one run (scripts/gpu-check.sh runs it).

Measures, on the current CUDA device, for Q (32 heads) and K (8 heads) x 128 channels in bf16:
  * copy:        a device-to-device copy of the same bytes (torch .copy_): the bandwidth ceiling,
  * rotary:      rotary.Rope.rotate in place and out of place (the CUDA backend),
  * hf eager:    transformers' apply_rotary_pos_emb (cos/sin precomputed, as a model reuses them),
  * hf compile:  torch.compile of the same function,
  * flashinfer:  flashinfer.apply_rope_pos_ids_inplace, if importable,
  * vllm:        vllm's rotary_embedding custom op, if importable.
Bytes moved = read + write of Q and K (cos/sin reads not counted, in favour of the peers). Prints
median GB/s over repeats (CUDA events) and % of the copy's GB/s for prefill shapes (4096 and 32768
tokens), and median latency in microseconds for decode (1 token, batch 1 and 64).

Targets (issue): >= 85% of copy bandwidth on prefill, faster than every peer measured, decode close
to the launch overhead.
"""

import statistics
import sys

import torch

import rotary

HEAD_DIM, Q_HEADS, K_HEADS, THETA = 128, 32, 8, 500000.0
DTYPE = torch.bfloat16
REPEATS, WARMUP = 50, 10


def time_ms(fn):
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPEATS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


# transformers' functions (modeling_llama), written out so that the benchmark does not depend on a
# transformers version: the code is the reference's few lines.
def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def hf_cos_sin(positions, device):
    inv_freq = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.int64, device=device).float() / HEAD_DIM))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(DTYPE), emb.sin().to(DTYPE)


def peers(tokens, batch, device):
    """name -> zero-argument callable, for one shape (batch x tokens)."""
    n = batch * tokens
    q = torch.randn(n, Q_HEADS, HEAD_DIM, dtype=DTYPE, device=device)
    k = torch.randn(n, K_HEADS, HEAD_DIM, dtype=DTYPE, device=device)
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    positions = torch.arange(tokens, device=device, dtype=torch.int64).repeat(batch)
    if tokens == 1:
        positions = positions + 4095  # decode at a realistic position
    src = torch.cat([q.reshape(-1), k.reshape(-1)])
    dst = torch.empty_like(src)
    rope = rotary.Rope({"head_dim": HEAD_DIM, "rope_theta": THETA})
    out = {
        "copy (D2D)": lambda: dst.copy_(src),
        "rotary in place": lambda: rope.rotate(q, positions, k),
        "rotary out of place": lambda: rope.rotate(q, positions, k, q_out=q_out, k_out=k_out),
    }
    # transformers' layout: (batch, heads, seq, head_dim) views of the same data.
    qh = q.view(batch, tokens, Q_HEADS, HEAD_DIM).transpose(1, 2)
    kh = k.view(batch, tokens, K_HEADS, HEAD_DIM).transpose(1, 2)
    cos, sin = hf_cos_sin(positions, device)
    cos, sin = cos.view(batch, tokens, HEAD_DIM), sin.view(batch, tokens, HEAD_DIM)
    out["hf eager"] = lambda: apply_rotary_pos_emb(qh, kh, cos, sin)
    try:
        compiled = torch.compile(apply_rotary_pos_emb)
        compiled(qh, kh, cos, sin)
        out["hf torch.compile"] = lambda: compiled(qh, kh, cos, sin)
    except Exception as e:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
        print(f"  torch.compile unavailable: {e!r}"[:200])
    try:
        import flashinfer

        pos32 = positions.to(torch.int32)
        out["flashinfer in place"] = lambda: flashinfer.apply_rope_pos_ids_inplace(
            q, k, pos32, rotary_dim=HEAD_DIM, interleave=False, rope_theta=THETA
        )
    except Exception as e:  # noqa: BLE001
        print(f"  flashinfer unavailable: {e!r}"[:200])
    try:
        from vllm import _custom_ops as vllm_ops

        # vLLM's cos_sin_cache: one row per position, cos of the half-dim angles then their sin.
        max_pos = int(positions.max()) + 1
        inv_freq = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2, device=device).float() / HEAD_DIM))
        freqs = torch.arange(max_pos, device=device).float()[:, None] * inv_freq[None, :]
        cache = torch.cat((freqs.cos(), freqs.sin()), dim=-1).to(DTYPE)
        q2, k2 = q.view(n, -1), k.view(n, -1)
        out["vllm in place"] = lambda: vllm_ops.rotary_embedding(positions, q2, k2, HEAD_DIM, cache, True)
    except Exception as e:  # noqa: BLE001
        print(f"  vllm unavailable: {e!r}"[:200])
    bytes_moved = 2 * (q.numel() + k.numel()) * q.element_size()
    return out, bytes_moved


def main():
    if not torch.cuda.is_available():
        sys.exit("gpu_bench.py needs a CUDA device")
    device = torch.device("cuda")
    print(
        f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
        f"bf16, Q {Q_HEADS} + K {K_HEADS} heads x {HEAD_DIM}"
    )
    for tokens in (4096, 32768):
        fns, nbytes = peers(tokens, 1, device)
        print(f"\nprefill {tokens} tokens ({nbytes / 2**20:.1f} MiB read + written)")
        results = {name: nbytes / (time_ms(fn) * 1e-3) / 1e9 for name, fn in fns.items()}
        copy = results["copy (D2D)"]
        for name, gbs in results.items():
            print(f"  {name:24s} {gbs:8.1f} GB/s  {100 * gbs / copy:6.1f}% of copy")
        rotary_best = results["rotary in place"]
        peers_gbs = {n: g for n, g in results.items() if not n.startswith(("rotary", "copy"))}
        verdict = "yes" if all(rotary_best > g for g in peers_gbs.values()) else "no"
        print(
            f"  target >= 85% of copy: {'yes' if rotary_best >= 0.85 * copy else 'no'}; "
            f"faster than every peer: {verdict}"
        )
    for batch in (1, 64):
        fns, _ = peers(1, batch, device)
        print(f"\ndecode, batch {batch} (1 token each)")
        for name, fn in fns.items():
            print(f"  {name:24s} {time_ms(fn) * 1e3:8.1f} us")
    empty = torch.empty(0, device=device)
    print(
        f"\nreference: an empty kernel launch (torch add of 0 elements) {time_ms(lambda: empty.add_(1)) * 1e3:.1f} us"
    )


if __name__ == "__main__":
    main()
