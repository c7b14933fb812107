"""The binding of gguf_rope: GGUF metadata as Python holds it -> the rotation llama.cpp applies.

The metadata is written here as convert_hf_to_gguf (llama.cpp 0c1e57098) writes it; the expected
frequencies come from transformers' own rotary embedding of the same model (hf_reference.py).
"""

import math

import numpy as np
import pytest
import torch

import rotary
from hf_reference import hf_rope, load_record
from rotary import _rotary
from rotary.gguf import GgufMetadata


def _hf_frequencies(file_name):
    inv_freq, attention = hf_rope(file_name, load_record(file_name), None).initial_frequencies()
    return inv_freq.numpy(), float(attention)


def _llama3_rope_freqs():
    """conversion/llama.py's rope_freqs for Llama 3.1 8B (its float32 torch arithmetic)."""
    base, dim, factor, low, high, old = 500000.0, 128, 8.0, 1.0, 4.0, 8192
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factors = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def test_llama31_as_a_dict_matches_transformers():
    metadata = {
        "architecture": "llama",
        "keys": {
            "general.architecture": "llama",
            "llama.context_length": 131072,
            "llama.embedding_length": 4096,
            "llama.attention.head_count": 32,
            "llama.rope.dimension_count": 128,
            "llama.rope.freq_base": 500000.0,
        },
        "rope_tensors": {"rope_freqs": _llama3_rope_freqs()},
    }
    config, mode, permuted, notes = _rotary.gguf_rope(metadata)
    assert (mode, permuted) == ("norm", True)
    assert config.layout == "interleaved"
    assert any("rope_freqs" in note for note in notes)
    expected, attention = _hf_frequencies("llama-3.1-8b.json")
    rope = rotary.Rope(config)
    np.testing.assert_allclose(rope.inv_freq, expected, rtol=1e-6)
    assert rope.attention_factor == pytest.approx(attention)


def test_qwen2_yarn_from_numpy_values_matches_transformers():
    metadata = GgufMetadata(
        "qwen2",
        {
            "qwen2.context_length": np.uint32(32768),
            "qwen2.embedding_length": np.uint32(3584),
            "qwen2.attention.head_count": np.uint32(28),
            "qwen2.rope.freq_base": np.float32(1000000.0),
            "qwen2.rope.scaling.type": "yarn",
            "qwen2.rope.scaling.factor": np.float32(4.0),
            "qwen2.rope.scaling.original_context_length": np.uint32(32768),
        },
        {},
    )
    config, mode, permuted, _ = _rotary.gguf_rope(metadata, context_length=131072)
    assert (mode, permuted) == ("neox", False)
    assert config.rope_type == "yarn"
    expected, attention = _hf_frequencies("qwen2.5-7b-instruct-yarn.json")
    rope = rotary.Rope(config)
    np.testing.assert_allclose(rope.inv_freq, expected, rtol=2.5e-7)  # float32 rounding
    assert attention == pytest.approx(0.1 * math.log(4.0) + 1)
    assert rope.attention_factor == pytest.approx(attention)


def test_modes_and_refusals():
    def metadata(arch, keys=None):
        return {"architecture": arch, "keys": keys or {}, "rope_tensors": {}}

    assert _rotary.gguf_rope_mode(metadata("deepseek2")) == ("norm", False)
    assert _rotary.gguf_rope_mode(metadata("qwen2vl")) == ("mrope", False)
    sections = {"glm4.rope.dimension_sections": (8, 12, 12, 0)}
    assert _rotary.gguf_rope_mode(metadata("glm4", sections)) == ("mrope", True)
    with pytest.raises(rotary.Error) as e:
        _rotary.gguf_rope(metadata("no-such-arch"))
    assert e.value.argument == "general.architecture"
    with pytest.raises(rotary.Error) as e:
        _rotary.gguf_rope(metadata("gpt2", {"gpt2.context_length": 1024}))
    assert "no RoPE" in str(e.value)
    with pytest.raises(rotary.Error) as e:
        _rotary.gguf_rope(metadata("qwen2", {"qwen2.rope.freq_base": {"not": "a number"}}))
    assert e.value.argument == "qwen2.rope.freq_base"
    with pytest.raises(rotary.Error) as e:
        _rotary.gguf_rope({"keys": {}, "rope_tensors": {}})
    assert e.value.argument == "metadata"
