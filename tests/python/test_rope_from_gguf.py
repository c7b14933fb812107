"""Rope.from_gguf: the rotation llama.cpp applies to a GGUF file, against transformers' rotation of
the checkpoint the file was converted from.

llama.cpp rotates a Llama in "norm" mode (adjacent pairs) where transformers rotates half-split
pairs; the converter makes the two agree by reordering the rows of each Q/K head. So the check is:
reorder the checkpoint's q as the converter reorders the weights' rows, rotate with from_gguf, put
the channels back, and compare with transformers. The files are the committed fixtures
(tests/data/gguf, written by gguf-py's GGUFWriter as convert_hf_to_gguf writes them).
"""

from pathlib import Path

import numpy as np
import pytest
import torch

import rotary
import rotary.gguf
from hf_reference import hf_rope, load_record

pytest.importorskip("gguf")
GGUF = Path(__file__).resolve().parents[1] / "data" / "gguf"


def converter_order(head_dim):
    """LlamaModel.permute (llama.cpp 0c1e57098, conversion/llama.py) on one head, as a channel
    order: the file's row 2i is the checkpoint's row i, row 2i + 1 its row i + head_dim / 2."""
    half = head_dim // 2
    return np.stack([np.arange(half), np.arange(half) + half], axis=1).reshape(-1)


def transformers_rotation(config_name, q, positions):
    """transformers' own rotary embedding and apply function; q is (tokens, heads, head_dim)."""
    hf = hf_rope(config_name, load_record(config_name), None)
    q4 = q.transpose(0, 1)[None]  # (1, heads, tokens, head_dim)
    rotated, _ = hf.apply(q4, q4.clone(), torch.as_tensor(positions)[None], torch.float32)
    return rotated[0].transpose(0, 1)


def from_gguf_rotation(file_name, q, positions, reorder):
    rope = rotary.Rope.from_gguf(GGUF / file_name)
    order = converter_order(q.shape[-1]) if reorder else np.arange(q.shape[-1])
    in_file = q[..., order].clone()  # what the file's reordered weights produce
    rope.rotate(in_file, positions)
    back = torch.empty_like(in_file)
    back[..., order] = in_file
    return back


def transformers_rotation_unscaled(q, positions):
    """The same checkpoint without its llama3 scaling: what a conversion that lost rope_freqs
    would rotate like (for the size of a real difference)."""
    rope = rotary.Rope({"head_dim": 128, "rope_theta": 500000.0})
    out = q.clone()
    rope.rotate(out, positions)
    return out


def sample(head_dim, heads=4):
    generator = torch.Generator().manual_seed(5)
    positions = np.array([0, 1, 2, 17, 1000, 8191, 8192, 65000, 131071])
    return torch.randn(len(positions), heads, head_dim, generator=generator), positions


def test_llama31_file_rotates_like_the_checkpoint_through_the_converters_reordering():
    gguf_rope = rotary.gguf.rope_config(GGUF / "llama-3.1-8b.gguf")
    assert (gguf_rope.rope_mode, gguf_rope.qk_rows_permuted) == ("norm", True)
    q, positions = sample(128)
    expected = transformers_rotation("llama-3.1-8b.json", q, positions)
    got = from_gguf_rotation("llama-3.1-8b.gguf", q, positions, reorder=True)
    # Both compute position * theta in float32 from the same float32 theta: about 2e-5 seen.
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * float(q.abs().max()))
    # At these positions the llama3 scaling moves the result by more than 1: the check can see it.
    assert (transformers_rotation_unscaled(q, positions) - expected).abs().max() > 1


def test_without_the_reordering_the_pairs_do_not_match():
    # The test of the test: rotating the checkpoint's own channel order in norm mode is wrong.
    q, positions = sample(128)
    expected = transformers_rotation("llama-3.1-8b.json", q, positions)
    got = from_gguf_rotation("llama-3.1-8b.gguf", q, positions, reorder=False)
    assert (got - expected).abs().max() > 0.1


def test_qwen2_yarn_file_rotates_like_the_checkpoint_without_reordering():
    gguf_rope = rotary.gguf.rope_config(GGUF / "qwen2-yarn.gguf")
    assert (gguf_rope.rope_mode, gguf_rope.qk_rows_permuted) == ("neox", False)
    config = gguf_rope.config
    q, positions = sample(config.head_dim)
    name = "qwen2.5-7b-instruct-yarn.json"
    expected = transformers_rotation(name, q, positions)
    got = from_gguf_rotation("qwen2-yarn.gguf", q, positions, reorder=False)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * float(q.abs().max()))


def test_from_gguf_refuses_what_it_cannot_read_by_name(tmp_path):
    not_gguf = tmp_path / "config.json"
    not_gguf.write_text("{}")
    with pytest.raises(rotary.Error) as error:
        rotary.Rope.from_gguf(not_gguf)
    assert error.value.argument == "path"
    with pytest.raises(rotary.Error) as error:
        rotary.Rope.from_gguf(GGUF / "llama-f16-rope-freqs.gguf")
    assert "F16" in str(error.value)
    with pytest.raises(rotary.Error) as error:
        rotary.gguf.rope_config(GGUF / "llama-3.1-8b.gguf", context_length=-5)
    assert error.value.argument == "context_length"
