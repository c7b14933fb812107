"""The drop-in shims: rotary.compat.hf against transformers' own functions, rotary.compat.meta
against Meta's published reference formulas (written out below from their definition), on random
inputs. Tables rotary produced take rotary's kernels; any other table takes the general path; both
must give the original's results.
"""

import json
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import rotary  # noqa: E402
from rotary.compat import _tables, hf, meta  # noqa: E402

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "data" / "configs"


def config(name):
    return json.loads((CONFIGS / f"{name}.json").read_text())


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


# ---- transformers ------------------------------------------------------------------------------------


def test_hf_general_path_equals_transformers_for_any_tables():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as llama_apply

    g = generator()
    q, k = torch.randn(2, 4, 16, 64, generator=g), torch.randn(2, 2, 16, 64, generator=g)
    cos, sin = torch.randn(2, 16, 64, generator=g), torch.randn(2, 16, 64, generator=g)  # not cos/sin at all
    for got, want in zip(hf.apply_rotary_pos_emb(q, k, cos, sin), llama_apply(q, k, cos, sin), strict=True):
        assert torch.equal(got, want)
    # (batch, seq, heads, head_dim) with unsqueeze_dim=2
    qt, kt = q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous()
    for got, want in zip(
        hf.apply_rotary_pos_emb(qt, kt, cos, sin, unsqueeze_dim=2),
        llama_apply(qt, kt, cos, sin, unsqueeze_dim=2),
        strict=True,
    ):
        assert torch.equal(got, want)


def test_hf_partial_tables_follow_gpt_neox():
    from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb as neox_apply

    g = generator(1)
    q, k = torch.randn(1, 4, 8, 96, generator=g), torch.randn(1, 4, 8, 96, generator=g)
    cos, sin = torch.randn(1, 8, 24, generator=g), torch.randn(1, 8, 24, generator=g)
    for got, want in zip(hf.apply_rotary_pos_emb(q, k, cos, sin), neox_apply(q, k, cos, sin), strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("name", ["llama-3.1-8b", "qwen2.5-7b-instruct-yarn", "gpt-neox-20b"])
def test_hf_rotary_embedding_and_fast_path_against_transformers(name):
    from hf_reference import hf_rope, load_records

    record = dict(load_records())[f"{name}.json"]
    reference = hf_rope(f"{name}.json", record, None)
    module = reference.new_module()
    head_dim = rotary.Rope(config(name)).head_dim
    g = generator(2)
    q, k = torch.randn(2, 8, 12, head_dim, generator=g), torch.randn(2, 2, 12, head_dim, generator=g)
    positions = torch.stack([torch.arange(12), torch.arange(300, 312)])
    ours = hf.RotaryEmbedding(config(name))
    cos, sin = ours(q, positions)
    hf_cos, hf_sin = module(q, positions)
    # The same tables up to float32 rounding of theta (PyTorch's pow is within 1 ulp).
    torch.testing.assert_close(cos, hf_cos, rtol=0, atol=2e-6)
    torch.testing.assert_close(sin, hf_sin, rtol=0, atol=2e-6)
    fast = hf.apply_rotary_pos_emb(q, k, cos, sin)
    # rotary's kernels on its own tables give transformers' formula on the same tables, bit for bit.
    formula = reference.modeling.apply_rotary_pos_emb(q, k, cos, sin)
    for got, want in zip(fast, formula, strict=True):
        assert torch.equal(got, want)
    # ... and stay within float32 rounding of transformers' whole pipeline.
    for got, want in zip(fast, reference.modeling.apply_rotary_pos_emb(q, k, hf_cos, hf_sin), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=2e-5)


def test_hf_fast_path_is_taken_and_modified_tables_are_not_trusted(monkeypatch):
    calls = []
    real = hf.apply_rotary

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hf, "apply_rotary", spy)
    emb = hf.RotaryEmbedding(config("llama-3-8b"))
    q, k = torch.randn(1, 4, 5, 128), torch.randn(1, 4, 5, 128)
    cos, sin = emb(q, torch.arange(5)[None])
    hf.apply_rotary_pos_emb(q, k, cos, sin)
    assert calls == [1]
    sin.mul_(2)  # modified in place: the general path, which sees the new values
    got = hf.apply_rotary_pos_emb(q, k, cos, sin)
    assert calls == [1]
    assert torch.equal(got[0], q * cos[:, None] + hf.rotate_half(q) * sin[:, None])


def test_hf_fast_path_autograd():
    emb = hf.RotaryEmbedding(config("llama-3-8b"))
    q = torch.randn(1, 2, 4, 128, requires_grad=True)
    k = torch.randn(1, 2, 4, 128, requires_grad=True)
    cos, sin = emb(q, torch.arange(4)[None])
    (hf.apply_rotary_pos_emb(q, k, cos, sin)[0] * 3).sum().backward()
    q2 = q.detach().clone().requires_grad_()
    (hf.apply_rotary_pos_emb(q2, k.detach(), cos.clone(), sin.clone())[0] * 3).sum().backward()
    torch.testing.assert_close(q.grad, q2.grad, rtol=0, atol=1e-6)


# ---- Meta ------------------------------------------------------------------------------------------------
# Meta's reference, from its definition: theta_j = base^(-2j/dim) in float32, angle = float32(p) * theta_j,
# freqs_cis = exp(i angle); apply multiplies the interleaved pairs, as complex numbers, in float32.


def meta_theta(dim, base):
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32)[: dim // 2] / dim))


def meta_freqs_cis(dim, end, base, theta=None):
    theta = meta_theta(dim, base) if theta is None else theta
    angle = torch.outer(torch.arange(end, dtype=torch.float32), theta)
    return torch.polar(torch.ones_like(angle), angle)


def meta_apply(xq, xk, freqs_cis):
    def one(x):
        pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(pairs * freqs_cis[None, :, None, :]).flatten(3).type_as(x)

    return one(xq), one(xk)


def meta_llama31_theta(dim, base, factor=8.0, low=1.0, high=4.0, original=8192):
    # Meta's apply_scaling: per frequency, in float32 tensor arithmetic.
    theta = meta_theta(dim, base)
    out = []
    for f in theta:
        wavelength = 2 * np.pi / f
        if wavelength < original / high:
            out.append(f)
        elif wavelength > original / low:
            out.append(f / factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out, dtype=torch.float32)


@pytest.mark.parametrize("use_scaled", [False, True])
def test_meta_table_equals_the_reference(use_scaled):
    dim, end, base = 128, 64, 500000.0
    ours = meta.precompute_freqs_cis(dim, end, base, use_scaled=use_scaled)
    theta = meta_llama31_theta(dim, base) if use_scaled else None
    reference = meta_freqs_cis(dim, end, base, theta)
    assert ours.dtype == torch.complex64 and ours.shape == (end, dim // 2)
    # Within float32 rounding: theta may differ by an ulp (pow), cos/sin by an ulp (libm).
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_meta_apply_on_its_own_table_uses_rotary_and_equals_the_reference(dtype):
    table = meta.precompute_freqs_cis(128, 4096, 500000.0)
    rows = table[100:116]  # as Meta's model slices it: freqs_cis[start_pos : start_pos + seqlen]
    assert _tables.lookup_rows(rows) is not None
    g = generator(3)
    xq, xk = torch.randn(2, 16, 8, 128, generator=g).to(dtype), torch.randn(2, 16, 2, 128, generator=g).to(dtype)
    got = meta.apply_rotary_emb(xq, xk, rows)
    want = meta_apply(xq, xk, rows)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == dtype
        # Both compute in float32 and round once to the output dtype.
        torch.testing.assert_close(a.float(), b.float(), rtol=0, atol=2e-6 if dtype == torch.float32 else 0.02)


def test_meta_apply_on_a_users_own_table_is_the_reference_formula():
    g = generator(4)
    xq, xk = torch.randn(1, 6, 4, 32, generator=g), torch.randn(1, 6, 4, 32, generator=g)
    table = torch.complex(torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g))  # any values
    assert _tables.lookup_rows(table) is None
    for a, b in zip(meta.apply_rotary_emb(xq, xk, table), meta_apply(xq, xk, table), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_meta_shim_verifies_as_interleaved_llama():
    table = meta.precompute_freqs_cis(128, 8192, 500000.0)
    report = rotary.verify(rotary.adapt_meta(meta.apply_rotary_emb, table), head_dim=128, max_position=8191)
    assert report.matches and report.layout == "interleaved" and report.fit.params["base"] == 500000


def test_shim_errors():
    with pytest.raises(rotary.Error, match="freqs_cis"):
        meta.apply_rotary_emb(torch.randn(1, 4, 2, 8), torch.randn(1, 4, 2, 8), torch.randn(4, 4))
    with pytest.raises(rotary.Error, match="freqs_cis"):
        meta.apply_rotary_emb(torch.randn(1, 4, 2, 8), torch.randn(1, 4, 2, 8), torch.ones(3, 4, dtype=torch.complex64))
    with pytest.raises(rotary.Error, match="dim"):
        meta.precompute_freqs_cis(7, 10)
    with pytest.raises(rotary.Error, match="cos"):
        hf.apply_rotary_pos_emb(
            torch.randn(1, 1, 2, 8), torch.randn(1, 1, 2, 8), torch.randn(1, 2, 16), torch.randn(1, 2, 16)
        )
