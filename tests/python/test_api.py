"""The Python API: configs, zero-copy rotation of NumPy arrays and torch tensors, clear errors."""

import json

import numpy as np
import pytest
import torch

import rotary
from reference_rotation import rotate_reference

LLAMA3 = {  # Llama-3.1-8B's RoPE fields, older form
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}
LLAMA3_V5 = {  # the same, newer form
    "head_dim": 128,
    "max_position_embeddings": 131072,
    "rope_parameters": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}
SMALL = {"head_dim": 16, "rope_theta": 10000.0, "max_position_embeddings": 64}
PARTIAL = {"head_dim": 16, "partial_rotary_factor": 0.5, "max_position_embeddings": 64}
YARN = {
    "head_dim": 16,
    "max_position_embeddings": 8192,
    "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048},
}
DYNAMIC = {"head_dim": 16, "max_position_embeddings": 64, "rope_scaling": {"type": "dynamic", "factor": 2.0}}


def reference(x, positions, rope, inverse=False):
    """float64 rotation of x (tokens, heads, head_dim) with rotary's own cos/sin: the kernels' math
    without their float32 rounding."""
    x = np.asarray(x, np.float64)
    cos, sin = (np.asarray(t, np.float64) for t in rope.cos_sin(positions))
    if inverse:
        sin = -sin
    return rotate_reference(x, cos, sin, rope.rotary_dim, rope.layout)


def expect_error(argument, fn, *match):
    with pytest.raises(ValueError) as info:
        fn()
    assert isinstance(info.value, rotary.Error)
    assert info.value.argument == argument, str(info.value)
    for text in match:
        assert text in str(info.value), str(info.value)
    return info.value


# ---- configuration --------------------------------------------------------------------------------


def test_both_config_forms_give_the_same_rope():
    old, new = rotary.config_from_dict(LLAMA3), rotary.config_from_dict(LLAMA3_V5)
    for c in (old, new):
        assert (c.rope_type, c.layout, c.rope_theta, c.head_dim, c.rotary_dim) == (
            "llama3",
            "half_split",
            5e5,
            128,
            128,
        )
        assert (c.factor, c.low_freq_factor, c.high_freq_factor, c.original_max_position_embeddings) == (
            8.0,
            1.0,
            4.0,
            8192,
        )
    np.testing.assert_array_equal(rotary.Rope(old).inv_freq, rotary.Rope(new).inv_freq)


def test_config_from_file_and_path_like(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA3))
    from_file = rotary.Rope(rotary.config_from_file(path))
    np.testing.assert_array_equal(from_file.inv_freq, rotary.Rope(LLAMA3).inv_freq)
    np.testing.assert_array_equal(rotary.Rope(str(path)).inv_freq, from_file.inv_freq)
    with pytest.raises(FileNotFoundError):
        rotary.config_from_file(tmp_path / "missing.json")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="malformed JSON"):
        rotary.config_from_file(path)


def test_config_from_a_transformers_config_object():
    import transformers

    hf = transformers.LlamaConfig(
        hidden_size=4096,
        num_attention_heads=32,
        max_position_embeddings=131072,
        rope_scaling=LLAMA3["rope_scaling"],
        rope_theta=500000.0,
    )
    np.testing.assert_array_equal(rotary.Rope(rotary.config_from_dict(hf)).inv_freq, rotary.Rope(LLAMA3).inv_freq)


def test_per_layer_type_configs():
    gemma = {
        "text_config": {
            "head_dim": 256,
            "hidden_size": 3840,
            "num_attention_heads": 16,
            "rope_theta": 1e6,
            "rope_local_base_freq": 1e4,
            "rope_scaling": {"rope_type": "linear", "factor": 8.0},
        }
    }
    assert rotary.rope_layer_types(gemma) == ["full_attention", "sliding_attention"]
    expect_error("layer_type", lambda: rotary.config_from_dict(gemma), "choose one of")
    assert rotary.config_from_dict(gemma, "full_attention").factor == 8.0
    assert rotary.config_from_dict(gemma, "sliding_attention").rope_theta == 1e4
    assert rotary.Rope(gemma, layer_type="sliding_attention").config.rope_type == "default"


def test_config_errors_name_the_field():
    expect_error("head_dim", lambda: rotary.config_from_dict({"rope_theta": 1e4}), "missing")
    expect_error(
        "rope_scaling.factor",
        lambda: rotary.config_from_dict({"head_dim": 64, "rope_scaling": {"type": "linear"}}),
        "required for rope_type 'linear'",
    )
    expect_error(
        "rope_scaling.type",
        lambda: rotary.config_from_dict({"head_dim": 64, "rope_scaling": {"type": "warp"}}),
        "unknown value 'warp'",
    )
    expect_error("config", lambda: rotary.config_from_dict([1, 2]), "expected a dict")
    expect_error(
        "rope_theta",
        lambda: rotary.config_from_dict({"head_dim": 64, "rope_theta": float("nan")}),
        "expected a finite number, got NaN",
    )


# ---- Rope -----------------------------------------------------------------------------------------


def test_rope_properties():
    rope = rotary.Rope(YARN, cache_positions=16)
    assert rope.inv_freq.dtype == np.float32 and rope.inv_freq.shape == (8,)
    assert rope.head_dim == 16 and rope.rotary_dim == 16 and rope.layout == "half_split"
    assert rope.angle_mode == "hf"
    assert rope.attention_factor == pytest.approx(0.1 * np.log(4.0) + 1.0, abs=1e-15)
    assert "yarn" in repr(rope)


def test_explicit_frequencies():
    theta = (np.arange(8, dtype=np.float32) + 1) / 16
    rope = rotary.Rope(SMALL, inv_freq=theta)
    np.testing.assert_array_equal(rope.inv_freq, theta)
    assert rope.attention_factor == 1.0
    # The config's own attention factor is kept unless replaced.
    assert rotary.Rope(YARN, inv_freq=theta).attention_factor == rotary.Rope(YARN).attention_factor
    assert rotary.Rope(YARN, inv_freq=theta, attention_factor=2.0).attention_factor == 2.0
    expect_error("inv_freq", lambda: rotary.Rope(SMALL, inv_freq=theta.astype(np.float64)), "float32")
    expect_error("frequencies.inv_freq", lambda: rotary.Rope(SMALL, inv_freq=theta[:4]), "8 entries")
    expect_error("attention_factor", lambda: rotary.Rope(SMALL, attention_factor=2.0), "inv_freq")
    expect_error("angle_mode", lambda: rotary.Rope(SMALL, angle_mode="fast"))


def test_cos_sin_shapes_and_values():
    rope = rotary.Rope(SMALL)
    positions = np.arange(12).reshape(3, 4)
    cos, sin = rope.cos_sin(positions)
    assert cos.shape == sin.shape == (3, 4, 8) and cos.dtype == np.float32
    angle = positions[..., None].astype(np.float32) * rope.inv_freq
    np.testing.assert_allclose(cos, np.cos(angle.astype(np.float64)), atol=1e-7)
    np.testing.assert_allclose(sin, np.sin(angle.astype(np.float64)), atol=1e-7)
    c2, _ = rope.cos_sin(torch.arange(12, dtype=torch.int32).reshape(3, 4))
    np.testing.assert_array_equal(cos, c2)


def test_frequencies_for_follows_the_sequence_length():
    rope = rotary.Rope(DYNAMIC)
    below, _ = rope.frequencies_for(np.arange(64))
    np.testing.assert_array_equal(below, rope.inv_freq)
    above, factor = rope.frequencies_for([0, 127])
    assert factor == 1.0 and np.all(above[1:] < below[1:])  # a larger base: lower frequencies


# ---- rotation: values, layouts, in place and out of place ------------------------------------------


@pytest.mark.parametrize(
    "config",
    [SMALL, PARTIAL, YARN, dict(SMALL, model_type="gptj", rotary_dim=8)],
    ids=["default", "partial", "yarn", "interleaved-partial"],
)
def test_rotate_numpy_in_place(config):
    rope = rotary.Rope(config)
    rng = np.random.default_rng(0)
    q = rng.standard_normal((5, 3, 16)).astype(np.float32)
    positions = np.array([0, 1, 7, 100, -3])
    expected = reference(q, positions, rope)
    out = rope.rotate(q, positions)
    assert out is q
    np.testing.assert_allclose(q, expected, atol=1e-6, rtol=1e-6)
    if rope.rotary_dim < 16:  # pass-through channels untouched
        np.testing.assert_array_equal(q[..., rope.rotary_dim :], expected[..., rope.rotary_dim :].astype(np.float32))


def test_out_of_place_leaves_the_input_and_copies_pass_through_channels():
    rope = rotary.Rope(PARTIAL)
    q = np.random.default_rng(1).standard_normal((4, 2, 16)).astype(np.float32)
    k = np.random.default_rng(2).standard_normal((4, 1, 16)).astype(np.float32)
    q0, k0 = q.copy(), k.copy()
    q_out, k_out = np.full_like(q, np.nan), np.full_like(k, np.nan)
    got = rope.rotate(q, np.arange(4), k=k, q_out=q_out, k_out=k_out)
    assert got[0] is q_out and got[1] is k_out
    np.testing.assert_array_equal(q, q0)
    np.testing.assert_array_equal(k, k0)
    rope.rotate(q0, np.arange(4), k=k0)  # in place gives the same numbers
    np.testing.assert_array_equal(q_out, q0)
    np.testing.assert_array_equal(k_out, k0)


def test_inverse_is_the_transpose():
    x = torch.randn(6, 4, 16)
    positions = torch.arange(6) * 1000
    for config in (SMALL, YARN):
        rope = rotary.Rope(config)
        y = rope.rotate(x.clone(), positions)
        back = rope.rotate(y.clone(), positions, inverse=True)
        # R^T R = a^2 I: the inverse when the attention factor a is 1.
        torch.testing.assert_close(back, x * rope.attention_factor**2, atol=2e-6, rtol=2e-6)


def test_layouts_and_batches():
    rope = rotary.Rope(SMALL)
    bhsd = torch.randn(3, 4, 5, 16)  # transformers' (batch, heads, seq, head_dim)
    positions = torch.arange(15).reshape(3, 5)
    expected = bhsd.clone()
    for b in range(3):  # one batch entry at a time, (seq, heads, head_dim) views
        rope.rotate(expected[b].transpose(0, 1), positions[b])
    got = bhsd.clone()
    rope.rotate(got, positions, layout="bhsd")
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    got = bhsd.clone()
    rope.rotate(got.transpose(1, 2), positions)  # the same memory seen as (batch, seq, heads, head_dim)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    got = bhsd.clone()
    rope.rotate(got[1], positions[1], layout="hsd")
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=0)
    # (seq,) positions broadcast over the batch.
    same = torch.randn(2, 5, 4, 16)
    a, b = same.clone(), same.clone()
    rope.rotate(a, torch.arange(5))
    rope.rotate(b, torch.arange(5).expand(2, 5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_one_frequency_set_per_call_across_batch_entries():
    """Dynamic NTK chooses the frequencies from max(positions) + 1 over the whole call, also when
    the batch is rotated entry by entry (a (batch, heads, seq, head_dim) tensor)."""
    rope = rotary.Rope(DYNAMIC)
    positions = np.stack([np.arange(8), 120 + np.arange(8)])
    x = torch.randn(2, 3, 8, 16)
    got = rope.rotate(x.clone(), positions, layout="bhsd")
    inv_freq, _ = rope.frequencies_for(positions)
    pinned = rotary.Rope(DYNAMIC, inv_freq=inv_freq)
    expected = pinned.rotate(x.clone(), positions, layout="bhsd")
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    alone = rope.rotate(x[0].clone(), positions[0], layout="hsd")  # entry 0 alone: initial frequencies
    assert not torch.equal(alone, got[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_torch_dtypes(dtype):
    rope = rotary.Rope(YARN)
    x = torch.randn(4, 2, 16)
    positions = torch.tensor([0, 5, 50, 500])
    expected = torch.from_numpy(reference(x.numpy(), positions.numpy(), rope)).to(dtype)
    got = rope.rotate(x.to(dtype), positions)
    assert got.dtype == dtype
    # One rounding to the storage type (the reference rounds the float64 value once too).
    tol = {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
    torch.testing.assert_close(got.float(), expected.float(), atol=tol, rtol=tol)


def test_numpy_float16_and_position_types():
    rope = rotary.Rope(SMALL)
    x = np.random.default_rng(3).standard_normal((3, 2, 16)).astype(np.float16)
    results = [
        rope.rotate(x.copy(), p)
        for p in ([0, 1, 2], np.array([0, 1, 2], np.int32), np.array([0, 1, 2], np.uint8), torch.tensor([0, 1, 2]))
    ]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_threads_do_not_change_results():
    x = torch.randn(512, 8, 128)
    positions = torch.arange(512)
    one = rotary.Rope(LLAMA3, max_threads=1).rotate(x.clone(), positions)
    many = rotary.Rope(LLAMA3, max_threads=0).rotate(x.clone(), positions)
    assert torch.equal(one, many)


# ---- zero copy ------------------------------------------------------------------------------------


def test_transposed_torch_view_is_rotated_where_it_lies():
    rope = rotary.Rope(SMALL)
    base = torch.randn(2, 4, 5, 16)  # (batch, heads, seq, head_dim), contiguous
    view = base.transpose(1, 2)  # (batch, seq, heads, head_dim), not contiguous
    assert not view.is_contiguous()
    expected = rope.rotate(view.contiguous(), torch.arange(10).reshape(2, 5))
    pointer = view.data_ptr()
    out = rope.rotate(view, torch.arange(10).reshape(2, 5))
    assert out is view and view.data_ptr() == pointer == base.data_ptr()
    torch.testing.assert_close(base.transpose(1, 2), expected, rtol=0, atol=0)


def test_packed_qkv_slices_are_rotated_where_they_lie():
    rope = rotary.Rope(SMALL)
    tokens, q_heads, kv_heads, d = 6, 4, 2, 16
    qkv = torch.randn(tokens, (q_heads + 2 * kv_heads) * d)
    before = qkv.clone()
    q = qkv[:, : q_heads * d].view(tokens, q_heads, d)
    k = qkv[:, q_heads * d : (q_heads + kv_heads) * d].view(tokens, kv_heads, d)
    expected_q = rope.rotate(q.contiguous(), torch.arange(tokens))
    rope.rotate(q, torch.arange(tokens), k=k)
    torch.testing.assert_close(qkv[:, : q_heads * d].view(tokens, q_heads, d), expected_q, rtol=0, atol=0)
    assert torch.equal(qkv[:, (q_heads + kv_heads) * d :], before[:, (q_heads + kv_heads) * d :])  # v untouched


def test_strided_numpy_view_is_rotated_where_it_lies():
    rope = rotary.Rope(SMALL)
    base = np.random.default_rng(4).standard_normal((8, 3, 16)).astype(np.float32)
    original = base.copy()
    view = base[::2]  # every other token
    expected = reference(original[::2], np.arange(4), rope)
    rope.rotate(view, np.arange(4))
    np.testing.assert_allclose(base[::2], expected, atol=1e-6)
    np.testing.assert_array_equal(base[1::2], original[1::2])


# ---- errors: raised before anything is written, naming the argument ---------------------------------


def test_unsupported_dtypes():
    rope = rotary.Rope(SMALL)
    expect_error("q.dtype", lambda: rope.rotate(torch.zeros(2, 1, 16, dtype=torch.float64), [0, 1]), "float64")
    expect_error("q.dtype", lambda: rope.rotate(np.zeros((2, 1, 16), np.int32), [0, 1]), "int32")
    expect_error("positions", lambda: rope.rotate(np.zeros((2, 1, 16), np.float32), [0.0, 1.5]), "integers")


def test_non_contiguous_head_dim_is_refused_not_copied():
    rope = rotary.Rope(SMALL)
    base = torch.randn(3, 2, 32)
    before = base.clone()
    expect_error("q", lambda: rope.rotate(base[..., ::2], [0, 1, 2]), "contiguous", "never copies")
    assert torch.equal(base, before)
    expect_error("q", lambda: rope.rotate(torch.randn(3, 16, 2).transpose(1, 2), [0, 1, 2]), "stride")


def test_shape_errors():
    rope = rotary.Rope(SMALL)
    expect_error("q.head_dim", lambda: rope.rotate(np.zeros((2, 1, 8), np.float32), [0, 1]), "16", "got 8")
    expect_error(
        "positions", lambda: rope.rotate(np.zeros((2, 1, 16), np.float32), [0, 1, 2]), "one position per token"
    )
    expect_error("q", lambda: rope.rotate(np.zeros((2, 16), np.float32), [0, 1]), "3 or 4 dimensions")
    expect_error("layout", lambda: rope.rotate(np.zeros((2, 1, 16), np.float32), [0, 1], layout="bshd"))
    expect_error(
        "k",
        lambda: rope.rotate(np.zeros((2, 1, 16), np.float32), [0, 1], k=np.zeros((3, 1, 16), np.float32)),
        "batch and sequence",
    )
    expect_error(
        "k_out",
        lambda: rope.rotate(np.zeros((2, 1, 16), np.float32), [0, 1], k_out=np.zeros((2, 1, 16), np.float32)),
        "without k",
    )
    expect_error(
        "q.token_stride", lambda: rope.rotate(np.zeros((3, 1, 16), np.float32)[::-1], [0, 1, 2]), "expected >= 0"
    )
    expect_error(
        "q_out.dtype",
        lambda: rope.rotate(np.zeros((2, 1, 16), np.float32), [0, 1], q_out=np.zeros((2, 1, 16), np.float16)),
    )


def test_read_only_and_grad_requiring_outputs():
    rope = rotary.Rope(SMALL)
    frozen = np.zeros((2, 1, 16), np.float32)
    frozen.flags.writeable = False
    expect_error("q", lambda: rope.rotate(frozen, [0, 1]), "read-only")
    expect_error("q_out", lambda: rope.rotate(np.zeros((2, 1, 16), np.float32), [0, 1], q_out=frozen), "read-only")
    out = rope.rotate(frozen, [0, 1], q_out=np.zeros((2, 1, 16), np.float32))  # reading it is fine
    assert out.shape == (2, 1, 16)
    leaf = torch.zeros(2, 1, 16, requires_grad=True)
    expect_error("q", lambda: rope.rotate(leaf, [0, 1]), "requires grad", "apply_rotary")
    rope.rotate(leaf, [0, 1], q_out=torch.zeros(2, 1, 16))  # out of place: the input is only read


def test_in_place_writes_are_visible_to_autograd():
    """A tensor autograd saved for a backward pass and then rotated in place: the backward pass
    must fail as it would after any in-place torch operation, not use the overwritten values."""
    rope = rotary.Rope(SMALL)
    w = torch.randn(2, 1, 16, requires_grad=True)
    q = torch.randn(2, 1, 16)
    loss = (w * q).sum()  # saves q
    version = q._version
    rope.rotate(q, [0, 1])
    assert q._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_overlapping_outputs():
    rope = rotary.Rope(SMALL)
    x = torch.randn(4, 2, 16)
    expect_error(
        "q_out", lambda: rope.rotate(x, torch.arange(4), q_out=torch.zeros(2, 16).expand(4, 2, 16)), "overlaps itself"
    )
    buf = torch.randn(5, 2, 16)
    expect_error("q_out", lambda: rope.rotate(buf[:4], torch.arange(4), q_out=buf[1:]), "overlaps q partially")
    batched = torch.randn(2, 2, 3, 16)  # (batch, heads, seq, head_dim): rotated entry by entry
    expect_error(
        "q_out",
        lambda: rope.rotate(
            batched, torch.arange(6).reshape(2, 3), layout="bhsd", q_out=torch.zeros(2, 3, 16).expand(2, 2, 3, 16)
        ),
        "overlaps itself",
    )


def test_nothing_is_written_when_a_later_batch_entry_is_invalid():
    rope = rotary.Rope(SMALL)
    x = torch.randn(2, 2, 3, 16)
    before = x.clone()
    positions = torch.tensor([[0, 1, 2], [0, 1, 2**60]])
    expect_error("positions[5]", lambda: rope.rotate(x, positions, layout="bhsd"), "2^53")
    assert torch.equal(x, before)


def test_non_array_inputs():
    rope = rotary.Rope(SMALL)
    with pytest.raises(ValueError, match="3 or 4 dimensions"):
        rope.rotate([[1.0] * 16], [0])
