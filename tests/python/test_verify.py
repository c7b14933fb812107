"""rotary.verify against implementations nobody here wrote, and against known-wrong variants.

Real implementations: transformers' own RotaryEmbedding modules and apply functions, run offline
from the stored model configs. Each is probed without being told what it is, and what verify
identifies (pairing, rotary_dim, base, scaling type and parameters, attention factor) is compared
with the published config's fields and with transformers' own module buffers, never with numbers
verify printed before. Then each is probed against its expected config and must match.

Known-wrong variants are small functions written here, each with one real-world bug; each must be
diagnosed with the message that names it.

Tolerances used below: theta and attention factors are compared with transformers' float32
values to 1e-6 relative (a few float32 ulps); identified parameters (base, factor, band edges,
ramp) are compared with the config's exactly or to 1e-6 relative, as they are rounded to the
fewest digits that reproduce every theta within verify's per-pair tolerance (reported in the
report as theta_tolerance: about 5 ulps plus the measurement noise over positions <= 1000).
"""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import rotary  # noqa: E402
from hf_reference import hf_rope, load_records  # noqa: E402

RECORDS = dict(load_records())


def hf_model(name, layer_type=None):
    return hf_rope(f"{name}.json", RECORDS[f"{name}.json"], layer_type)


def config_fields(name):
    return RECORDS[f"{name}.json"]["config"]


def hf_fn(name, layer_type=None):
    """transformers' RotaryEmbedding module and the family's apply_rotary_pos_emb, through the HF adapter."""
    hf = hf_model(name, layer_type)
    module = hf.new_module()
    producer = module if layer_type is None else (lambda x, pos: module(x, pos, layer_type))
    rotary_dim = hf.rotary_dim if hf.family in ("phi", "stablelm") else None
    return hf, rotary.adapt_hf(hf.modeling.apply_rotary_pos_emb, producer, rotary_dim=rotary_dim)


def messages(report):
    return "\n".join(report.mismatches())


def assert_close(value, expected, rel=1e-6, what=""):
    assert value == pytest.approx(expected, rel=rel), f"{what}: {value} vs {expected}"


# ---- real implementations, identified blind ------------------------------------------------------


def test_llama31_identified_as_llama3_with_its_published_bands():
    hf, fn = hf_fn("llama-3.1-8b")
    report = rotary.verify(fn, head_dim=128)
    scaling = config_fields("llama-3.1-8b")["rope_scaling"]
    assert report.is_rotation and report.matches, str(report)
    assert report.layout == "half_split" and report.rotary_dim == 128 and report.pass_through == []
    assert report.pairs[:2] == [(0, 64), (1, 65)]
    fit = report.fit
    assert fit.rope_type == "llama3"
    assert fit.params["base"] == config_fields("llama-3.1-8b")["rope_theta"]
    assert fit.params["factor"] == scaling["factor"]
    # Only the band edges are identifiable: original context / low_freq_factor and / high_freq_factor.
    original = scaling["original_max_position_embeddings"]
    assert fit.params["low_wavelength"] == original / scaling["low_freq_factor"]
    assert fit.params["high_wavelength"] == original / scaling["high_freq_factor"]
    np.testing.assert_allclose(report.theta, hf.initial_frequencies()[0].numpy(), rtol=1e-6)
    assert report.attention_factor == pytest.approx(1.0, abs=1e-6)
    assert report.k_status == "rotated like Q"


def test_llama2_default_base():
    hf, fn = hf_fn("llama-2-7b")
    report = rotary.verify(fn, head_dim=128)
    assert report.matches and report.fit.rope_type == "default"
    assert report.fit.params["base"] == 10000  # the file has no rope_theta: transformers' default
    assert report.layout == "half_split" and report.rotary_dim == 128


def test_gpt_neox_partial_rotary():
    hf, fn = hf_fn("gpt-neox-20b")
    fields = config_fields("gpt-neox-20b")
    head_dim = fields["hidden_size"] // fields["num_attention_heads"]
    report = rotary.verify(fn, head_dim=head_dim)
    rotary_dim = int(head_dim * fields["rotary_pct"])
    assert report.matches, str(report)
    assert report.layout == "half_split" and report.rotary_dim == rotary_dim
    assert report.pass_through == list(range(rotary_dim, head_dim))
    assert report.pairs[0] == (0, rotary_dim // 2)
    assert report.fit.rope_type == "default" and report.fit.params["base"] == fields["rotary_emb_base"]


def gptj_fn():
    """GPT-J's attention module does this around its apply function: (batch, seq, heads, head_dim),
    sin/cos from the module's table, only the first rotary_dim channels rotate."""
    hf = hf_model("gpt-j-6b")
    m = hf.modeling
    module = m.GPTJRotaryEmbedding(hf.config)
    d = hf.config.rotary_dim

    def fn(q, k, positions):  # layout bshd
        sin, cos = module(q, positions)
        q_rot = m.apply_rotary_pos_emb(q[..., :d], sin, cos)
        k_rot = m.apply_rotary_pos_emb(k[..., :d], sin, cos)
        return torch.cat([q_rot, q[..., d:]], dim=-1), torch.cat([k_rot, k[..., d:]], dim=-1)

    return hf, fn


def test_gptj_interleaved_and_its_table_limit():
    hf, fn = gptj_fn()
    fields = config_fields("gpt-j-6b")
    head_dim = fields["n_embd"] // fields["n_head"]
    report = rotary.verify(fn, head_dim=head_dim, layout="bshd")
    assert report.layout == "interleaved" and report.rotary_dim == fields["rotary_dim"]
    assert report.pairs[:2] == [(0, 1), (2, 3)]
    assert len(report.pass_through) == head_dim - fields["rotary_dim"]
    assert report.fit.rope_type == "default" and report.fit.params["base"] == 10000
    # GPT-J's sin/cos table has n_positions rows: probing past it fails, which is reported, not fatal.
    assert report.matches
    failed = [row for row in report.precision if row.status.startswith("fn failed")]
    assert failed and failed[0].first <= fields["n_positions"] <= failed[0].last
    assert any("could not be probed" in f.message for f in report.findings)


def test_yarn_qwen2_factor_ramp_and_attention_factor():
    hf, fn = hf_fn("qwen2.5-7b-instruct-yarn")
    fields = config_fields("qwen2.5-7b-instruct-yarn")
    scaling = fields["rope_scaling"]
    report = rotary.verify(fn, head_dim=fields["hidden_size"] // fields["num_attention_heads"])
    assert report.matches, str(report)
    fit = report.fit
    assert fit.rope_type == "yarn"
    assert fit.params["base"] == fields["rope_theta"] and fit.params["factor"] == scaling["factor"]
    # YaRN's correction range from its definition: d ln(L / (2 pi beta)) / (2 ln base), floored
    # (beta_fast 32) and ceiled (beta_slow 1), transformers' defaults.
    d, base, original = 128, fields["rope_theta"], scaling["original_max_position_embeddings"]

    def pair(beta):
        return d * math.log(original / (beta * 2 * math.pi)) / (2 * math.log(base))

    assert fit.params["ramp_low"] == math.floor(pair(32)) and fit.params["ramp_high"] == math.ceil(pair(1))
    module_factor = hf.initial_frequencies()[1]
    assert_close(report.attention_factor, module_factor, what="attention factor")
    assert_close(report.attention_factor, 0.1 * math.log(scaling["factor"]) + 1, what="0.1 ln(s) + 1")


def test_longrope_phi35_short_factors_and_the_long_switch():
    hf, fn = hf_fn("phi-3.5-mini-instruct")
    fields = config_fields("phi-3.5-mini-instruct")
    scaling = fields["rope_scaling"]
    report = rotary.verify(fn, head_dim=fields["hidden_size"] // fields["num_attention_heads"])
    assert report.fit.rope_type == "longrope"
    # The base and per-pair factors trade off; relative to the config's base they are short_factor.
    theta_default = 1.0 / (fields["rope_theta"] ** (np.arange(0, 96, 2) / 96.0))
    np.testing.assert_allclose(theta_default / report.theta, scaling["short_factor"], rtol=2e-6)
    assert_close(report.attention_factor, hf.initial_frequencies()[1], what="attention factor")
    # Past original_max_position_embeddings a call switches to long_factor: verify notices.
    assert any(f.topic == "length" for f in report.findings), str(report)
    matched = rotary.verify(fn, expected="phi-3.5-mini-instruct")
    assert matched.matches, str(matched)
    factors = np.array(matched.fit.params["factors"])
    np.testing.assert_allclose(factors, scaling["short_factor"], rtol=2e-6)


def test_meta_style_llama4_complex_apply():
    from transformers import Llama4TextConfig
    from transformers.models.llama4 import modeling_llama4 as m4

    scaling = {
        "rope_type": "llama3",
        "factor": 16.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    config = Llama4TextConfig(
        head_dim=128,
        hidden_size=5120,
        num_attention_heads=40,
        rope_theta=500000.0,
        rope_scaling=scaling,
        max_position_embeddings=131072,
    )
    module = m4.Llama4TextRotaryEmbedding(config)
    fn = rotary.adapt_meta(m4.apply_rotary_emb, lambda positions: module(torch.zeros(1), positions))
    report = rotary.verify(fn, head_dim=128)
    assert report.matches and report.layout == "interleaved" and report.rotary_dim == 128
    assert report.fit.rope_type == "llama3" and report.fit.params["factor"] == 16
    assert report.fit.params["low_wavelength"] == 8192 and report.fit.params["high_wavelength"] == 2048
    np.testing.assert_allclose(report.theta, module.inv_freq.numpy(), rtol=1e-6)


def test_deepseek_v3_permuted_output_is_reported_and_undone():
    hf = hf_model("deepseek-v3")

    def fn(q, k, positions):
        cos, sin, _, _ = hf.call(positions)
        return hf.modeling.apply_rotary_pos_emb_interleave(q, k, cos, sin)

    report = rotary.verify(fn, expected="deepseek-v3")
    assert report.matches, str(report)
    assert any(f.topic == "permutation" and f.severity == "warning" for f in report.findings)
    assert report.layout == "interleaved" and report.fit.rope_type == "yarn"
    assert report.fit.params["factor"] == config_fields("deepseek-v3")["rope_scaling"]["factor"]


def test_proportional_rope_of_transformers():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    parameters = {"rope_type": "proportional", "rope_theta": 1000000.0, "partial_rotary_factor": 0.25}
    config = LlamaConfig(head_dim=256, hidden_size=2048, num_attention_heads=8, rope_parameters=parameters)
    module = LlamaRotaryEmbedding(config)
    report = rotary.verify(rotary.adapt_hf(apply_rotary_pos_emb, module), head_dim=256)
    rotated = int(0.25 * 256 // 2)
    assert report.matches, str(report)
    # Half-split over the whole head, only the first pairs rotate; the exponent divides by head_dim.
    assert report.layout == "half_split" and report.rotary_dim == 256
    assert report.pairs == [(j, j + 128) for j in range(rotated)]
    assert report.fit.rope_type == "proportional" and report.fit.params["rotated_pairs"] == rotated
    assert report.fit.params["base"] == parameters["rope_theta"]
    expected = dict(head_dim=256, rope_parameters=parameters)
    assert rotary.verify(rotary.adapt_hf(apply_rotary_pos_emb, module), expected=expected).matches


@pytest.mark.parametrize(
    "name,layer_type",
    [
        ("llama-3.1-8b", None),
        ("gpt-neox-20b", None),
        ("phi-2", None),
        ("qwen2.5-7b-instruct-yarn", None),
        ("gemma-3-12b-it", "full_attention"),
        ("gemma-3-12b-it", "sliding_attention"),
        ("internlm2.5-7b-dynamic", None),
        ("exaone-4.0-32b", None),
        ("gpt-oss-20b", None),
    ],
)
def test_real_implementations_match_their_configs(name, layer_type):
    _, fn = hf_fn(name, layer_type)
    report = rotary.verify(fn, expected=name, layer_type=layer_type)
    assert report.matches, str(report)
    json.loads(report.to_json())  # the machine form is plain JSON


# ---- known-wrong variants ----------------------------------------------------------------------

D = 128


def inv_freq(base=500000.0, dim=D):
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))


def half_tables(positions, theta):
    freqs = positions[..., None].float() * theta
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def llama_rope(q, k, positions, theta=None):
    cos, sin = half_tables(positions, inv_freq() if theta is None else theta)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def test_correct_reference_variant_matches():
    report = rotary.verify(llama_rope, expected="llama-3-8b")
    assert report.matches, str(report)


def test_additive_cosine_table_is_not_a_rotation():
    def additive_rope(q, k, positions):  # a tutorial's "RoPE": adds the cosine table
        cos, _ = half_tables(positions, inv_freq())
        return q + cos, k + cos

    report = rotary.verify(additive_rope, expected="llama-3-8b")
    assert not report.is_rotation and not report.matches
    text = messages(report)
    assert "not a rotation: an additive term is present" in text
    assert "position 0 is not the identity: an additive term is present" in text


def test_tutorial_fixed_matrix_is_not_pairwise():
    generator = torch.Generator().manual_seed(1)
    mix = torch.linalg.qr(torch.randn(D, D, generator=generator))[0]

    def matrix_rope(q, k, positions):  # cos table added, then a fixed (orthogonal) matrix
        cos, _ = half_tables(positions, inv_freq())
        return (q + cos) @ mix, (k + cos) @ mix

    report = rotary.verify(matrix_rope, head_dim=D)
    assert not report.is_rotation
    text = messages(report)
    assert "additive term" in text and "not pairwise" in text


def test_wrong_pairing():
    def interleaved_rope(q, k, positions):  # GPT-J's pairing applied to a Llama checkpoint
        freqs = positions[..., None].float() * inv_freq()
        cos = freqs.cos().repeat_interleave(2, -1)[:, None]
        sin = freqs.sin().repeat_interleave(2, -1)[:, None]

        def every_two(x):
            return torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)

        return q * cos + every_two(q) * sin, k * cos + every_two(k) * sin

    report = rotary.verify(interleaved_rope, expected="llama-3-8b")
    assert report.is_rotation and report.layout == "interleaved"
    assert "pairs are (2i, 2i+1) but the config's model family uses (i, i+64)" in messages(report)


def test_wrong_base():
    def old_base(q, k, positions):
        return llama_rope(q, k, positions, inv_freq(10000.0))

    report = rotary.verify(old_base, expected="llama-3-8b")
    assert "θ matches base 10000, config says 500000" in messages(report)


def test_ntk_scaled_base_is_named():
    grown = 10000.0 * 4 ** (D / (D - 2))  # NTK-aware scaling by 4: base x factor^(d/(d-2))

    def ntk(q, k, positions):
        return llama_rope(q, k, positions, inv_freq(grown))

    report = rotary.verify(ntk, expected="llama-2-7b")
    assert "NTK-aware scaling of base 10000 by factor 4" in messages(report)


def test_positions_off_by_one():
    def shifted(q, k, positions):
        return llama_rope(q, k, positions + 1)

    report = rotary.verify(shifted, expected="llama-3-8b")
    assert report.position_offset == 1
    assert "positions are off by +1" in messages(report)
    assert "position 0 is not the identity" in messages(report)


def test_attention_factor_missing():
    hf = hf_model("qwen2.5-7b-instruct-yarn")
    theta = hf.initial_frequencies()[0]

    def yarn_without_scaling(q, k, positions):  # YaRN's theta, but cos/sin never scaled
        return llama_rope(q, k, positions, theta)

    report = rotary.verify(yarn_without_scaling, expected="qwen2.5-7b-instruct-yarn")
    text = messages(report)
    assert "attention factor missing" in text and f"{hf.initial_frequencies()[1]:.7g}" in text
    assert report.fit.rope_type == "yarn"  # theta themselves are right
    assert not any(f.topic == "theta" for f in report.findings)


def test_fp16_cos_sin_table():
    def fp16_table(q, k, positions):  # the table is built once in half precision (gpt-neox #1003)
        cos, sin = half_tables(positions, inv_freq())
        cos, sin = cos.half(), sin.half()
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    report = rotary.verify(fp16_table, expected="llama-3-8b")
    assert report.is_rotation
    assert "cos/sin are float16 values" in messages(report)
    first = report.precision[0]
    assert first.status == "exceeds" and 1e-4 < first.worst_error < 1e-3
    # Accepting float16 precision turns it into a match.
    assert rotary.verify(fp16_table, expected="llama-3-8b", precision="float16").matches


def test_rotary_dim_too_large():
    fields = config_fields("gpt-neox-20b")
    head_dim = fields["hidden_size"] // fields["num_attention_heads"]

    def whole_head(q, k, positions):  # rotates all 96 channels; GPT-NeoX rotates the first 24
        return llama_rope(q, k, positions, inv_freq(10000.0, head_dim))

    report = rotary.verify(whole_head, expected="gpt-neox-20b")
    text = messages(report)
    assert f"{head_dim} channels rotate" in text and f"the config rotates {int(head_dim * 0.25)} of {head_dim}" in text


def test_backwards_rotation():
    def backwards(q, k, positions):  # sin with the wrong sign: the transpose of the rotation
        cos, sin = half_tables(positions, inv_freq())
        return q * cos - rotate_half(q) * sin, k * cos - rotate_half(k) * sin

    report = rotary.verify(backwards, expected="llama-3-8b")
    assert "rotates backwards: every pair turns by -p*θ" in messages(report)


def test_k_not_rotated():
    def q_only(q, k, positions):
        q_out, _ = llama_rope(q, k, positions)
        return q_out, k

    report = rotary.verify(q_only, expected="llama-3-8b")
    assert report.k_status.startswith("NOT rotated")
    assert "K is not rotated" in messages(report)


def test_length_dependent_scheme_not_applied():
    # InternLM2.5's dynamic NTK grows the base past 32768 positions; this implementation never does.
    fields = config_fields("internlm2.5-7b-dynamic")

    def static(q, k, positions):
        return llama_rope(q, k, positions, inv_freq(fields["rope_theta"]))

    report = rotary.verify(static, expected="internlm2.5-7b-dynamic", max_position=99_999)
    assert any(
        f.severity == "mismatch" and f.topic == "length" and "dynamic NTK" in f.message for f in report.findings
    ), str(report)


# ---- interface -------------------------------------------------------------------------------------


def test_numpy_function_and_3d_layout():
    theta = inv_freq().numpy().astype(np.float64)

    def numpy_rope(q, k, positions):  # (seq, heads, head_dim) NumPy arrays
        angle = positions[:, None].astype(np.float64) * theta
        cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]

        def apply(x):
            a, b = x[..., :64], x[..., 64:]
            return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1).astype(x.dtype)

        return apply(q), apply(k)

    report = rotary.verify(numpy_rope, head_dim=D, framework="numpy", layout="shd")
    assert report.matches and report.fit.params["base"] == 500000
    # float64 angles: far below the float32 bound at every decade.
    assert all(row.worst_error < 1e-5 for row in report.precision if row.worst_error is not None)


def test_report_forms():
    report = rotary.verify(llama_rope, expected="llama-3-8b")
    data = json.loads(report.to_json())
    assert data["matches"] is True and data["layout"] == "half_split" and len(data["theta"]) == 64
    assert data["expected"]["rope_theta"] == 500000
    text = str(report)
    assert "What it computes" in text and "Against llama-3-8b" in text and "MATCH" in text


def test_argument_errors():
    with pytest.raises(rotary.Error, match="head_dim"):
        rotary.verify(llama_rope)
    with pytest.raises(rotary.Error, match="layout"):
        rotary.verify(llama_rope, head_dim=D, layout="sdh")
    with pytest.raises(rotary.Error, match="expected"):
        rotary.verify(llama_rope, expected="no-such-model")
    with pytest.raises(rotary.Error, match="fn: returned shape"):
        rotary.verify(lambda q, k, p: (q[..., :64], k), head_dim=D)
