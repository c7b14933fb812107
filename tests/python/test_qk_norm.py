"""rotary.rms_norm_rotate against transformers: Qwen3, Gemma 3 and OLMo 2 attention layers built
offline from AutoConfig.for_model at small sizes, with random norm weights, in float32 and
bfloat16, GQA (4 query heads, 2 key heads).

Two references, both transformers' own modules:
- the unfused path: the layer's q_norm / k_norm module, then rotary.Rope.rotate. The only
  difference is the order in which the sum of squares is added (torch's reduction against rotary's
  fixed 8 partial sums), which can move the mean square by its last bit: bfloat16 results are equal
  bit for bit; float32 ones within a few ulps of the head's largest magnitude (the bound and the
  measured share where it applies are at the test).
- the whole transformers path: the norm module, the family's RotaryEmbedding (its own inv_freq and
  attention scaling given to the Rope) and its apply_rotary_pos_emb. float32: within 1e-6 of the
  largest magnitude, the rule of test_conformance.py for rotated q/k. bfloat16: transformers
  rounds cos/sin to bfloat16 and rounds after every operation, so only the sizes of its
  differences are bounded (a few bfloat16 ulps of the largest magnitude), as test_conformance
  only reports its 16-bit error.

About 15 s, most of it importing transformers.
"""

import numpy as np
import pytest

import rotary

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import AutoConfig  # noqa: E402

SEQ = 24
HEADS, KV_HEADS, HEAD_DIM = 4, 2, 32


def _modeling(name):
    import importlib

    return importlib.import_module(f"transformers.models.{name}.modeling_{name}")


# family -> (model_type, modeling module, attention class, layer type or None, norm over the
# whole projection)
FAMILIES = {
    "qwen3": ("qwen3", "qwen3", "Qwen3Attention", None, False),
    "gemma3": ("gemma3_text", "gemma3", "Gemma3Attention", "sliding_attention", False),
    "olmo2": ("olmo2", "olmo2", "Olmo2Attention", None, True),
}


class Layer:
    """One attention layer's norms and its family's RoPE, in `dtype`, with random norm weights."""

    def __init__(self, family, dtype, seed=0):
        model_type, module_name, attention, self.layer_type, self.whole = FAMILIES[family]
        config = AutoConfig.for_model(
            model_type,
            hidden_size=HEADS * HEAD_DIM,
            num_attention_heads=HEADS,
            num_key_value_heads=KV_HEADS,
            head_dim=HEAD_DIM,
            num_hidden_layers=1,
        )
        modeling = _modeling(module_name)
        generator = torch.Generator().manual_seed(seed)
        layer = getattr(modeling, attention)(config, 0)
        with torch.no_grad():
            for norm in (layer.q_norm, layer.k_norm):
                # Gemma's weight is an offset from 1; the others multiply directly.
                centre = 0.0 if family == "gemma3" else 1.0
                norm.weight.copy_(centre + 0.5 * torch.randn(norm.weight.shape, generator=generator))
        self.q_norm, self.k_norm = layer.q_norm.to(dtype), layer.k_norm.to(dtype)
        self.embedding = modeling.__dict__[type(layer).__name__.replace("Attention", "RotaryEmbedding")](config)
        self.apply = modeling.apply_rotary_pos_emb
        self.dtype = dtype
        prefix = f"{self.layer_type}_" if self.layer_type else ""
        inv_freq = getattr(self.embedding, prefix + "inv_freq")
        scaling = getattr(self.embedding, prefix + "attention_scaling")
        rope_config = rotary.config_from_dict(config.to_dict(), self.layer_type)
        self.rope = rotary.Rope(rope_config, inv_freq=inv_freq.numpy(), attention_factor=scaling)
        self.q = torch.randn(1, SEQ, HEADS, HEAD_DIM, generator=generator).to(dtype) * 3
        self.k = torch.randn(1, SEQ, KV_HEADS, HEAD_DIM, generator=generator).to(dtype) * 3
        self.positions = torch.arange(3, 3 + SEQ).view(1, SEQ)

    def normed(self, x, norm):
        """The norm module on x (batch, seq, heads, head_dim), as the family applies it."""
        with torch.no_grad():
            if self.whole:  # OLMo 2: over the projection, before the split into heads
                return norm(x.reshape(1, SEQ, -1)).view(x.shape)
            return norm(x)

    def fused(self):
        return rotary.rms_norm_rotate(
            self.rope, self.q.clone(), self.positions, self.k.clone(), q_norm=self.q_norm, k_norm=self.k_norm
        )

    def unfused(self):
        q, k = self.normed(self.q, self.q_norm), self.normed(self.k, self.k_norm)
        return self.rope.rotate(q.clone(), self.positions, k.clone())

    def transformers(self):
        q, k = self.normed(self.q, self.q_norm), self.normed(self.k, self.k_norm)
        with torch.no_grad():
            args = (self.layer_type,) if self.layer_type else ()
            cos, sin = self.embedding(q, self.positions, *args)
            q_t, k_t = self.apply(q.transpose(1, 2), k.transpose(1, 2), cos.to(self.dtype), sin.to(self.dtype))
        return q_t.transpose(1, 2), k_t.transpose(1, 2)


def _ulps(got, want, dtype):
    """max |got - want| in units of the storage type's ulp at the largest magnitude of the head:
    an output that cancels to near zero carries the absolute error of its head's inputs."""
    mantissa = {torch.float32: 23, torch.bfloat16: 7, torch.float16: 10}[dtype]
    want64, got64 = want.double(), got.double()
    scale = want64.abs().amax(-1, keepdim=True).clamp_min(2.0**-100)
    unit = torch.exp2(torch.floor(torch.log2(scale)) - mantissa)
    return ((got64 - want64).abs() / unit).max().item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_equals_the_norm_module_then_rope_rotate(family, dtype):
    layer = Layer(family, dtype)
    for got, want in zip(layer.fused(), layer.unfused(), strict=True):
        if dtype == torch.bfloat16:
            # The rounding to bfloat16 hides the mean square's last bit: measured equal bit for bit
            # in every element over 20 seeds of each family.
            assert torch.equal(got, want)
            continue
        # float32: torch sums the squares in its own (CPU-dependent) order, which moves the mean
        # square by one ulp in about a fifth of the heads (measured over 20 seeds: 17% of the
        # heads for head_dim 32, 25% for OLMo 2's token-wide sums). One ulp of r moves y = x * r * w
        # by up to about 2 ulps, and a rotated output by the sum of two such, so the bound is
        # 4 ulps of the head's largest magnitude (the measured worst), plus one for the roundings.
        assert _ulps(got, want, dtype) <= 5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_matches_the_transformers_layer(family, dtype):
    layer = Layer(family, dtype, seed=1)
    for got, want in zip(layer.fused(), layer.transformers(), strict=True):
        scale = want.abs().max().double().item()
        error = (got.double() - want.double()).abs().max().item()
        if dtype == torch.float32:
            assert error <= 1e-6 * scale
        else:
            assert error <= 4 * 2.0 ** (np.floor(np.log2(scale)) - 7)


def test_partial_rotation_and_interleaved_pairs_equal_the_unfused_path():
    # Qwen3's norm on a rope that rotates half of each head, in GPT-J's interleaved layout: the
    # pass-through channels are normalised too.
    layer = Layer("qwen3", torch.bfloat16, seed=2)
    config = rotary.config_from_dict(
        {"head_dim": HEAD_DIM, "partial_rotary_factor": 0.5, "rope_theta": 10000.0, "model_type": "gptj"}
    )
    rope = rotary.Rope(config)
    q, k = layer.normed(layer.q, layer.q_norm), layer.normed(layer.k, layer.k_norm)
    want = rope.rotate(q.clone(), layer.positions, k.clone())
    got = rotary.rms_norm_rotate(
        rope, layer.q.clone(), layer.positions, layer.k.clone(), q_norm=layer.q_norm, k_norm=layer.k_norm
    )
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)  # bfloat16: bit for bit, as in the families' test above


def test_out_of_place_numpy_and_explicit_norms():
    rng = np.random.default_rng(0)
    rope = rotary.Rope(rotary.config_from_dict({"head_dim": 16, "rope_theta": 10000.0}))
    q = rng.standard_normal((5, 3, 16), dtype=np.float32)
    weight = rng.uniform(0.5, 1.5, 16).astype(np.float32)
    norm = rotary.RmsNorm(weight, 1e-6)
    q_out = np.empty_like(q)
    before = q.copy()
    assert rotary.rms_norm_rotate(rope, q, np.arange(5), q_norm=norm, q_out=q_out) is q_out
    np.testing.assert_array_equal(q, before)
    # The formula in float64, then rotary's own rotation of it: float32 rounding apart, equal.
    r = 1 / np.sqrt((q.astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-6)
    expected = rope.rotate((q * r * weight).astype(np.float32), np.arange(5))
    np.testing.assert_allclose(q_out, expected, rtol=0, atol=2e-6)


def test_from_module_recognises_forms_and_refuses_others():
    qwen3 = _modeling("qwen3").Qwen3RMSNorm(8, eps=1e-5)
    norm = rotary.RmsNorm.from_module(qwen3)
    assert (norm.round_before_weight, norm.unit_offset, norm.scope, norm.eps) == (True, False, "auto", 1e-5)
    gemma = rotary.RmsNorm.from_module(_modeling("gemma3").Gemma3RMSNorm(8))
    assert (gemma.round_before_weight, gemma.unit_offset) == (False, True)
    # A family that copies a form is recognised by its code, not its name.
    moe = rotary.RmsNorm.from_module(_modeling("qwen3_moe").Qwen3MoeRMSNorm(8))
    assert moe.round_before_weight
    with pytest.raises(rotary.Error, match="LayerNorm is not an RMSNorm") as e:
        rotary.RmsNorm.from_module(torch.nn.LayerNorm(8))
    assert e.value.argument == "module"

    class ScaledNorm(torch.nn.Module):  # an RMSNorm-like module of another form
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(8))
            self.eps = 1e-6

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight * 2

    with pytest.raises(rotary.Error, match="ScaledNorm"):
        rotary.RmsNorm.from_module(ScaledNorm())


def test_errors_name_the_argument_and_write_nothing():
    rope = rotary.Rope(rotary.config_from_dict({"head_dim": 8, "rope_theta": 10000.0}))
    q = np.ones((2, 2, 8), np.float32)
    k = np.ones((2, 1, 8), np.float32)
    good = rotary.RmsNorm(np.ones(8, np.float32), 1e-6)

    def argument(call):
        before = (q.copy(), k.copy())
        with pytest.raises(rotary.Error) as e:
            call()
        np.testing.assert_array_equal(q, before[0])
        np.testing.assert_array_equal(k, before[1])
        return e.value.argument

    assert argument(lambda: rotary.RmsNorm(np.ones(8), 0.0)) == "eps"
    assert argument(lambda: rotary.RmsNorm(np.ones(8), float("nan"))) == "eps"
    assert argument(lambda: rotary.RmsNorm(np.ones(8), 1e-6, scope="group")) == "scope"
    assert argument(lambda: rotary.RmsNorm([0.1], 1e-6)) == "weight"  # 0.1 is no float32
    assert argument(lambda: rotary.RmsNorm(np.ones((2, 4)), 1e-6)) == "weight"
    short = rotary.RmsNorm(np.ones(7, np.float32), 1e-6)
    assert argument(lambda: rotary.rms_norm_rotate(rope, q, [0, 1], k, q_norm=short, k_norm=good)) == "q_norm.weight"
    token = rotary.RmsNorm(np.ones(8, np.float32), 1e-6, scope="token")  # 1 x 8 fits k, not q
    assert argument(lambda: rotary.rms_norm_rotate(rope, q, [0, 1], k, q_norm=good, k_norm=short)) == "k_norm.weight"
    assert argument(lambda: rotary.rms_norm_rotate(rope, q, [0, 1], k, q_norm=token, k_norm=token)) == "q_norm.weight"
    assert argument(lambda: rotary.rms_norm_rotate(rope, q, [0, 1], k, q_norm=good)) == "k_norm"
    assert argument(lambda: rotary.rms_norm_rotate(rope, q, [0, 1, 2], k, q_norm=good, k_norm=good)) == "positions"
    assert argument(lambda: rotary.rms_norm_rotate(rope, q, [0, 1], q, q_norm=good, k_norm=good)) == "q_out"
    read_only = q.copy()
    read_only.flags.writeable = False
    assert argument(lambda: rotary.rms_norm_rotate(rope, read_only, [0, 1], q_norm=good)) == "q"


def test_module_output_dtype_is_refused_when_it_would_differ():
    # Qwen3RMSNorm's weight * x.to(bf16) is float32 when the weight is float32: its output is not
    # bfloat16, so rotary's bfloat16 result would not be the module's.
    rope = rotary.Rope(rotary.config_from_dict({"head_dim": 8, "rope_theta": 10000.0}))
    q = torch.ones(2, 2, 8, dtype=torch.bfloat16)
    module = _modeling("qwen3").Qwen3RMSNorm(8)
    with pytest.raises(rotary.Error, match="cast the module") as e:
        rotary.rms_norm_rotate(rope, q, [0, 1], q_norm=module)
    assert e.value.argument == "q_norm"
    assert torch.equal(q, torch.ones(2, 2, 8, dtype=torch.bfloat16))
    rotary.rms_norm_rotate(rope, q, [0, 1], q_norm=module.to(torch.bfloat16))


def test_multi_axis_positions_rotate_as_rope_rotate():
    # Qwen3-VL pairs Qwen3's norms with M-RoPE: three position axes, each pair rotated by its axis.
    config = rotary.config_from_dict(
        {
            "model_type": "qwen2_vl",
            "head_dim": 16,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "rope_theta": 10000.0,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        }
    )
    rope = rotary.Rope(config)
    rng = np.random.default_rng(1)
    q = rng.standard_normal((6, 2, 16), dtype=np.float32)
    positions = np.stack([np.arange(6), np.arange(6) * 2, np.arange(6) * 3])
    got = rotary.rms_norm_rotate(rope, q.copy(), positions, q_norm=rotary.RmsNorm(np.ones(16, np.float32), 1e-6))
    r = 1 / np.sqrt((q.astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-6)
    want = rope.rotate((q * r).astype(np.float32), positions)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # The axes matter: the same ids on one axis rotate differently.
    assert not np.allclose(got, rope.rotate((q * r).astype(np.float32), positions[0]), atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_kv_cache_append_equals_rms_norm_rotate_then_store(dtype):
    layer = Layer("qwen3", dtype, seed=3)
    q, k = layer.q[0].clone(), layer.k[0].clone()  # (seq, heads, head_dim)
    v = torch.randn(k.shape, generator=torch.Generator().manual_seed(4)).to(dtype)
    positions = torch.arange(3, 3 + SEQ)
    want_q, want_k = rotary.rms_norm_rotate(
        layer.rope, q.clone(), positions, k.clone(), q_norm=layer.q_norm, k_norm=layer.k_norm
    )
    cache = rotary.KvCache.paged(8, 4, KV_HEADS, HEAD_DIM, str(dtype).replace("torch.", ""))
    sequence = rotary.BlockTable([7, 2, 5, 0, 1, 3])
    k_before = k.clone()
    rotary.rms_norm_rotate_append(
        cache, layer.rope, q, k, v, positions, sequence, q_norm=layer.q_norm, k_norm=layer.k_norm
    )
    assert sequence.length == SEQ
    assert torch.equal(q, want_q) and torch.equal(k, k_before)
    np.testing.assert_array_equal(cache.keys(sequence), want_k.float().numpy())
    np.testing.assert_array_equal(cache.values(sequence), v.float().numpy())


def test_kv_cache_append_errors_leave_everything():
    rope = rotary.Rope(rotary.config_from_dict({"head_dim": 8, "rope_theta": 10000.0}))
    q, k, v = np.ones((3, 2, 8), np.float32), np.ones((3, 1, 8), np.float32), np.ones((3, 1, 8), np.float32)
    norm = rotary.RmsNorm(np.ones(8, np.float32), 1e-6)
    cache = rotary.KvCache.contiguous(2, 1, 8, "float32")  # room for 2 tokens, not 3
    sequence = rotary.BlockTable([0])
    with pytest.raises(rotary.Error) as e:
        rotary.rms_norm_rotate_append(cache, rope, q, k, v, [0, 1, 2], sequence, q_norm=norm, k_norm=norm)
    assert e.value.argument == "sequence"
    assert sequence.length == 0 and np.all(q == 1)
    short = rotary.RmsNorm(np.ones(4, np.float32), 1e-6)
    with pytest.raises(rotary.Error) as e:
        rotary.rms_norm_rotate_append(cache, rope, q[:2], k[:2], v[:2], [0, 1], sequence, q_norm=short, k_norm=norm)
    assert e.value.argument == "q_norm.weight"
    with pytest.raises(rotary.Error) as e:
        rotary.rms_norm_rotate_append(cache, rope, q[:2], k[:2], v[:2], [0, 1], sequence, k_norm=norm)
    assert e.value.argument == "q_norm"
    assert sequence.length == 0 and np.all(q == 1)
