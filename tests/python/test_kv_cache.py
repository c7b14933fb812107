"""The KV cache and reference attention against transformers and PyTorch.

- Prefill + decode through rotary.KvCache and rotary.attention equals transformers' own rotary
  module and apply function followed by torch's scaled_dot_product_attention (causal, GQA) on the
  whole sequence: max |diff| <= 2e-6 (float32 attention outputs of size ~1; both compute in float32
  in different orders).
- Dynamic NTK with a cache, as transformers runs it: a stateful rotary module called once per
  forward step, each step's keys rotated with that step's base and kept. rotary's cache holds the
  same keys, and a
  single call over all positions (the final base for every key) does not. Tolerance: 1e-6 plus the
  angle shift a 1-2 ulp theta difference causes at the key's position (PyTorch's float32 pow is not
  correctly rounded; see test_conformance.py).
"""

import numpy as np
import pytest
import torch

import rotary
from compare import check_relative_to_max
from hf_reference import hf_rope, load_records

transformers = pytest.importorskip("transformers")


def _record(name):
    return next((f, r) for f, r in load_records() if f == name)


def _heads_first(x):  # (seq, heads, d) -> (1, heads, seq, d)
    return x.permute(1, 0, 2)[None]


@pytest.mark.parametrize("paged", [False, True])
def test_decode_through_the_cache_equals_transformers_and_sdpa(paged):
    file_name, rec = _record("llama-3-8b.json")
    hf = hf_rope(file_name, rec, None)
    rope = rotary.Rope(rec["config"], inv_freq=hf.initial_frequencies()[0].numpy())
    d, q_heads, kv_heads, n, prompt = rope.head_dim, 4, 2, 40, 29
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(n, q_heads, d, generator=gen)
    k = torch.randn(n, kv_heads, d, generator=gen)
    v = torch.randn(n, kv_heads, d, generator=gen)

    # transformers' rotation and torch's attention, the whole sequence at once.
    cos, sin, _, _ = hf.call(torch.arange(n)[None])
    hq, hk = hf.apply_tables(_heads_first(q), _heads_first(k), cos, sin)
    expected = torch.nn.functional.scaled_dot_product_attention(
        hq, hk, _heads_first(v), is_causal=True, enable_gqa=True
    )[0].permute(1, 0, 2)

    cache = rotary.KvCache.paged(12, 4, kv_heads, d) if paged else rotary.KvCache.contiguous(n, kv_heads, d)
    sequence = rotary.BlockTable([7, 3, 11, 0, 5, 9, 1, 2, 10, 4] if paged else [0])
    outputs = []
    for first, count in [(0, prompt)] + [(t, 1) for t in range(prompt, n)]:
        qs = q[first : first + count].clone()
        cache.append(
            rope, qs, k[first : first + count], v[first : first + count], np.arange(first, first + count), sequence
        )
        outputs.append(torch.from_numpy(rotary.attention(qs, cache, sequence, first)))
    got = torch.cat(outputs)
    assert sequence.length == n
    assert float((got - expected).abs().max()) <= 2e-6
    # The cache holds transformers' rotated keys.
    check_relative_to_max("Llama-3-8B", "cached keys", hk[0].permute(1, 0, 2), cache.keys(sequence), 1e-6)


def test_dynamic_ntk_keys_as_transformers_caches_them():
    file_name, rec = _record("internlm2.5-7b-dynamic.json")
    hf = hf_rope(file_name, rec, None)
    module = hf.new_module()  # one stateful module for the whole generation, as in a model
    rope = rotary.Rope(rec["config"])
    max_pos = rope.config.max_position_embeddings
    d, kv_heads = rope.head_dim, 2
    # A prompt at the start, then decode steps that cross max_position_embeddings.
    steps = [np.arange(0, 8)] + [np.array([p]) for p in range(max_pos - 3, max_pos + 5)]
    n = sum(len(s) for s in steps)
    gen = torch.Generator().manual_seed(1)
    k = torch.randn(n, kv_heads, d, generator=gen)
    v = torch.randn(n, kv_heads, d, generator=gen)

    cache = rotary.KvCache.contiguous(n, kv_heads, d)
    sequence = rotary.BlockTable([0])
    hf_keys, allowed, first = [], [], 0
    for positions in steps:
        count = len(positions)
        cos, sin = module(torch.zeros(1), torch.from_numpy(positions)[None])
        _, hk = hf.apply_tables(
            _heads_first(k[first : first + count]), _heads_first(k[first : first + count]), cos, sin
        )
        hf_keys.append(hk[0].permute(1, 0, 2))
        cache.append(rope, None, k[first : first + count], v[first : first + count], positions, sequence)
        # rotary's theta for this step is within 2 ulps of the module's (PyTorch's pow is not
        # correctly rounded); at position p that moves an angle by p * |delta theta|, which bounds
        # the difference of a rotated pair of norm |pair|.
        ours, _ = rope.frequencies_for(positions)
        shift = float(positions.max()) * float(np.abs(ours - module.inv_freq.numpy()).max())
        allowed.append(np.full(count, float(k[first : first + count].abs().max()) * 2 * shift + 1e-6))
        first += count
    expected = torch.cat(hf_keys).numpy()
    error = np.abs(cache.keys(sequence) - expected).max(axis=(1, 2))
    bound = np.concatenate(allowed)
    assert (error <= bound).all(), list(zip(error, bound, strict=True))
    # The prompt keys were rotated with the initial base, the decode keys past the context each with
    # the base of their own length: bit-level agreement where theta agrees.
    assert error[:8].max() <= 1e-6

    # One call over all positions would rotate every key with the final base: not what is cached.
    one_shot = rotary.KvCache.contiguous(n, kv_heads, d)
    one_sequence = rotary.BlockTable([0])
    one_shot.append(rope, None, k, v, np.concatenate(steps), one_sequence)
    assert np.abs(one_shot.keys(one_sequence)[:8] - expected[:8]).max() > 1e-4  # 100x the tolerance


def test_cache_errors_leave_it_unchanged():
    rope = rotary.Rope({"head_dim": 64})
    cache = rotary.KvCache.paged(4, 4, 2, 64, "bfloat16")
    sequence = rotary.BlockTable([1, 3])
    k = torch.randn(6, 2, 64).bfloat16()
    cache.append(rope, None, k, k, np.arange(6), sequence)
    before = cache.keys(sequence).copy()
    with pytest.raises(rotary.Error, match="capacity"):
        cache.append(rope, None, k[:3], k[:3], np.arange(6, 9), sequence)
    with pytest.raises(rotary.Error, match="k.dtype"):
        cache.append(rope, None, k[:1].float(), k[:1], [6], sequence)
    with pytest.raises(rotary.Error, match="sequence.blocks"):
        cache.append(rope, None, k[:1], k[:1], [6], rotary.BlockTable([1, 3, 3], 6))
    assert sequence.length == 6
    np.testing.assert_array_equal(cache.keys(sequence), before)
    with pytest.raises(rotary.Error, match="dtype"):
        rotary.KvCache.contiguous(8, 2, 64, "float64")
