"""rope_type "ntk": vLLM's fixed NTK scaling, against vLLM's own recipe written out here in torch.

vLLM (vllm/model_executor/layers/rotary_embedding/ntk_scaling_rope.py, NTKScalingRotaryEmbedding,
and base.py's RotaryEmbedding._compute_inv_freq, commit 03587f553db4139402cc19f424c488c8e2fe25d1)
computes the default frequencies of the base rope_theta * factor in float32, then divides each by
factor ** (2 / rotary_dim), a Python float. rotary's frequencies must be those float32 values: bit
for bit where the power is correctly rounded, and within 2 ulps of torch's own tensor, whose
vectorised pow is not correctly rounded (its one-ulp slips can grow to two through the reciprocal
and the division); its rotation must be the rotation by them.
"""

import numpy as np
import pytest
import torch

import rotary
from reference_rotation import rotate_reference


def vllm_ntk_inv_freq(base, factor, rotary_dim):
    """NTKScalingRotaryEmbedding._compute_inv_freq with mixed_b None, as vLLM writes it."""
    base = base * factor
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float) / rotary_dim))
    return inv_freq / factor ** (2 / rotary_dim)


def ntk_inv_freq_rounded_once(base, factor, rotary_dim):
    """The same recipe in float32 NumPy steps, with base ** exponent correctly rounded."""
    exponent = np.arange(0, rotary_dim, 2, dtype=np.float32) / np.float32(rotary_dim)
    power = (np.float64(np.float32(base * factor)) ** exponent.astype(np.float64)).astype(np.float32)
    return (np.float32(1.0) / power) / np.float32(factor ** (2 / rotary_dim))


def ntk_config(base, factor, head_dim=128, rotary_dim=None, **scaling):
    config = {
        "head_dim": head_dim,
        "rope_theta": base,
        "max_position_embeddings": 4096,
        "rope_scaling": {"rope_type": "ntk", "factor": factor, **scaling},
    }
    if rotary_dim is not None:
        config["rotary_dim"] = rotary_dim
    return config


@pytest.mark.parametrize(
    "base, factor, rotary_dim",
    [(10000.0, 2.0, 128), (10000.0, 4.0, 64), (500000.0, 8.0, 128), (1000000.0, 3.5, 96), (10000.0, 1.0, 32)],
)
def test_frequencies_are_vllms(base, factor, rotary_dim):
    rope = rotary.Rope(ntk_config(base, factor, rotary_dim=rotary_dim))
    assert rope.config.rope_type == "ntk"
    assert rope.inv_freq.dtype == np.float32
    np.testing.assert_array_equal(rope.inv_freq, ntk_inv_freq_rounded_once(base, factor, rotary_dim))
    torch_values = vllm_ntk_inv_freq(base, factor, rotary_dim).numpy()
    np.testing.assert_array_max_ulp(rope.inv_freq, torch_values, maxulp=2)
    assert np.count_nonzero(rope.inv_freq == torch_values) >= 0.9 * torch_values.size
    assert rope.attention_factor == 1.0


def test_the_formula_holds_within_float32_rounding():
    # Su's NTK-RoPE as vLLM scales it: theta_i = base^(-2i/d) * factor^(-(2i + 2)/d).
    base, factor, d = 10000.0, 4.0, 128
    i = np.arange(d // 2)
    exact = base ** (-2.0 * i / d) * factor ** (-(2.0 * i + 2) / d)
    rope = rotary.Rope(ntk_config(base, factor))
    np.testing.assert_allclose(rope.inv_freq, exact, rtol=4 * 2.0**-24)
    # The slowest pair is interpolated by the whole factor; none keeps its default frequency.
    default = rotary.Rope({"head_dim": 128, "rope_theta": base}).inv_freq
    assert rope.inv_freq[-1] / default[-1] == pytest.approx(1 / factor, rel=1e-6)
    assert np.all(rope.inv_freq < default)


def test_rotation_is_the_float64_rotation_by_those_frequencies():
    rope = rotary.Rope(ntk_config(10000.0, 4.0))
    rng = np.random.default_rng(0)
    q = rng.standard_normal((32, 2, 128)).astype(np.float32)
    # transformers' (hf) angles: the float32 product position * theta, then cos and sin.
    angle = (np.arange(32, dtype=np.float32)[:, None] * rope.inv_freq[None, :]).astype(np.float64)
    expected = rotate_reference(q.astype(np.float64), np.cos(angle), np.sin(angle), 128, "half_split")
    np.testing.assert_allclose(rope.rotate(q, np.arange(32)), expected, atol=2e-6)


@pytest.mark.parametrize(
    "scaling, field, words",
    [
        ({}, "factor", "required for rope_type 'ntk'"),
        ({"factor": 0.5}, "factor", "expected a finite number >= 1"),
        ({"factor": 4.0, "mixed_b": 0.625}, "mixed_b", ""),
    ],
)
def test_refusals_name_the_field(scaling, field, words):
    config = ntk_config(10000.0, 1.0)
    config["rope_scaling"] = {"rope_type": "ntk", **scaling}
    with pytest.raises(rotary.Error) as refused:
        rotary.Rope(config)
    assert field in str(refused.value) and words in str(refused.value)


def test_verify_names_the_scheme_of_an_ntk_rotation():
    rope = rotary.Rope(ntk_config(10000.0, 4.0))

    def fn(q, k, positions):  # (seq, heads, head_dim) NumPy arrays
        return rope.rotate(q, positions, k)

    report = rotary.verify(fn, 128, framework="numpy", layout="shd", max_position=4095)
    assert report.is_rotation and report.fit.rope_type == "ntk", str(report)
    assert report.fit.params["base"] == 10000 and report.fit.params["factor"] == 4
    assert rotary.Rope(report.fit.config).config.rope_type == "ntk"
    assert rotary.verify(fn, framework="numpy", layout="shd", expected=rope).matches
