"""rotary.torch.apply_rotary: a differentiable rotation whose backward pass is the transposed
rotation.

rotary computes in float32 (float64 tensors are refused), so torch.autograd.gradcheck cannot run in
double precision. Two checks stand in for it:

1. The Jacobian, in float64-equivalent precision. RoPE is linear, y = R x, so the Jacobian is R.
   Reverse mode through apply_rotary yields R one row at a time (the backward pass R^T g with g a
   unit vector), and each entry is a single float32 value: a * cos or a * sin, times 1 or 0, summed
   with zeros, so no rounding beyond that of cos/sin. It is compared with the Jacobian torch's
   float64 autograd computes for a float64 reference rotation built from rotary's own float32
   cos/sin, to 1e-7 absolute (the entries are at most 1.14, so a wrong sign, pairing or factor is
   off by order 1). Then R is checked to be the map the forward pass computes (y = R x, to 1e-6),
   and R^T R = a^2 I.
2. torch.autograd.gradcheck itself, on float32 inputs, with eps = 1e-3 and atol = rtol = 1e-3:
   for a linear map central differences have no truncation error, only float32 rounding of the
   outputs, about ulp(|y|) / eps ~ 1e-4 |y|; so 1e-3 is tight enough to catch any wrong sign,
   pairing or scale (errors of order 1) and loose enough never to flake.
"""

import warnings

import numpy as np
import pytest
import torch

import rotary
import rotary.torch as rtorch
from reference_rotation import rotate_reference

CONFIGS = {
    "default": {"head_dim": 8, "max_position_embeddings": 64},
    "yarn": {
        "head_dim": 8,
        "max_position_embeddings": 8192,  # attention factor 1.1386...
        "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048},
    },
    "interleaved-partial": {"model_type": "gptj", "n_embd": 16, "n_head": 2, "rotary_dim": 4, "n_positions": 64},
}


def reference_rotation(x, positions, rope):
    """float64 torch rotation of x (tokens, heads, head_dim) with rotary's float32 cos/sin."""
    cos, sin = (torch.from_numpy(t).double() for t in rope.cos_sin(positions))
    return rotate_reference(x, cos, sin, rope.rotary_dim, rope.layout)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_jacobian_is_the_rotation(name):
    rope = rotary.Rope(CONFIGS[name])
    positions = torch.tensor([0, 3, 1000])
    x = torch.randn(3, 2, rope.head_dim)
    ours = torch.autograd.functional.jacobian(lambda t: rtorch.apply_rotary(t, None, positions, rope, layout="shd"), x)
    expected = torch.autograd.functional.jacobian(lambda t: reference_rotation(t, positions, rope), x.double())
    torch.testing.assert_close(ours.double(), expected, atol=1e-7, rtol=0)
    # ... and that Jacobian is the map the forward pass computes.
    y = rtorch.apply_rotary(x, None, positions, rope, layout="shd")
    flat = ours.reshape(x.numel(), x.numel()).double()
    torch.testing.assert_close(y.double().reshape(-1), flat @ x.double().reshape(-1), atol=1e-6, rtol=1e-6)
    # R^T R = a^2 I: the backward pass (R^T) undoes the forward up to the attention factor squared.
    a2 = rope.attention_factor**2
    torch.testing.assert_close(flat.T @ flat, a2 * torch.eye(x.numel(), dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_gradcheck_float32(name):
    rope = rotary.Rope(CONFIGS[name])
    positions = torch.tensor([[0, 5], [7, 100]])  # (batch, seq)
    q = torch.randn(2, 2, 3, rope.head_dim, requires_grad=True)  # (batch, seq, heads, head_dim)
    k = torch.randn(2, 2, 1, rope.head_dim, requires_grad=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*double precision.*")
        assert torch.autograd.gradcheck(
            lambda a, b: rtorch.apply_rotary(a, b, positions, rope, layout="bshd"),
            (q, k),
            eps=1e-3,
            atol=1e-3,
            rtol=1e-3,
        )


def test_gradients_flow_through_layouts_and_views():
    """A transposed (batch, heads, seq, head_dim) input inside a graph: gradients reach the leaf and
    match torch autograd through the float64 reference."""
    rope = rotary.Rope(CONFIGS["yarn"])
    positions = torch.arange(8).reshape(2, 4)
    w = torch.randn(8, 8, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 3, 4, 8, dtype=torch.float64)
    q = (x @ w).float()  # (batch, heads, seq, head_dim), not a leaf
    out = rtorch.apply_rotary(q, None, positions, rope, layout="bhsd")
    (out.double() * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)).sum().backward()
    ours = w.grad.clone()
    w.grad = None
    q64 = x @ w
    ref = torch.stack(
        [reference_rotation(q64[b].transpose(0, 1), positions[b], rope).transpose(0, 1) for b in range(2)]
    )
    (ref * torch.linspace(-1, 1, ref.numel(), dtype=torch.float64).reshape(ref.shape)).sum().backward()
    torch.testing.assert_close(ours, w.grad, atol=1e-5, rtol=1e-5)


def test_expanded_gradients_and_q_only():
    rope = rotary.Rope(CONFIGS["default"])
    q = torch.randn(4, 2, 8, requires_grad=True)
    rtorch.apply_rotary(q, None, torch.arange(4), rope, layout="shd").sum().backward()  # grad of sum(): stride-0 ones
    expected = reference_rotation(torch.ones(4, 2, 8, dtype=torch.float64), np.arange(4), rope)
    # The gradient of sum(R q) is R^T 1: the inverse rotation of ones.
    inverse = rope.rotate(torch.ones(4, 2, 8), torch.arange(4), inverse=True, q_out=torch.empty(4, 2, 8))
    torch.testing.assert_close(q.grad, inverse, rtol=0, atol=0)
    assert not torch.allclose(q.grad.double(), expected)  # R^T differs from R


def test_forward_is_out_of_place_and_matches_rotate():
    rope = rotary.Rope(CONFIGS["yarn"])
    q, k = torch.randn(2, 5, 4, 8), torch.randn(2, 5, 2, 8)
    q0, k0 = q.clone(), k.clone()
    got_q, got_k = rtorch.apply_rotary(q, k, torch.arange(10).reshape(2, 5), rope, layout="bshd")
    assert torch.equal(q, q0) and torch.equal(k, k0)
    want_q, want_k = rope.rotate(q0, torch.arange(10).reshape(2, 5), k=k0)
    assert torch.equal(got_q, want_q) and torch.equal(got_k, want_k)


def published_rope(x, positions, base, d):
    """RoPE as published (theta_i = base^(-2i/d)) and as transformers' Llama writes it (rotate_half,
    cos/sin of the concatenated angles), eager float64 torch: nothing of rotary's."""
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.double()[:, None] * inv_freq
    emb = torch.cat((angles, angles), dim=-1)[:, None, :]  # (tokens, 1, d)
    rotate_half = torch.cat((-x[..., d // 2 :], x[..., : d // 2]), dim=-1)
    return x * emb.cos() + rotate_half * emb.sin()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sixteen_bit_gradients(dtype):
    """The gradient through 16-bit tensors is torch.autograd's gradient of the published float64
    RoPE (the transposed rotation of the upstream gradient), rounded once to the 16-bit type:
    within half a 16-bit ulp of it, plus float32 arithmetic (rotary's float32 angles and cos/sin,
    about 1e-7 relative, allowed 2e-6 of the largest upstream value)."""
    rope = rotary.Rope(CONFIGS["default"])  # head_dim 8, half-split, base 10000 (rope_theta's default)
    d, base = 8, 10000.0
    assert rope.head_dim == d and rope.layout == "half_split" and rope.attention_factor == 1.0
    positions = torch.tensor([0, 1, 2, 5, 17, 63])
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(6, 3, d, generator=generator).to(dtype).requires_grad_()
    upstream = torch.randn(6, 3, d, generator=generator).to(dtype)
    rtorch.apply_rotary(q, None, positions, rope, layout="shd").backward(upstream)
    assert q.grad.dtype == dtype
    x = q.detach().double().requires_grad_()
    published_rope(x, positions, base, d).backward(upstream.double())
    ours = q.grad.double()
    tiny = torch.finfo(dtype).tiny
    ulp = torch.finfo(dtype).eps * torch.exp2(torch.floor(torch.log2(ours.abs().clamp_min(tiny))))
    allowed = 0.5 * ulp + 2e-6 * float(upstream.abs().max())
    error = (ours - x.grad).abs()
    worst, bad = int(torch.argmax(error - allowed)), int((error > allowed).sum())
    assert bad == 0, (
        f"{dtype}: {bad} of {error.numel()} out of tolerance; worst at flat index {worst}: "
        f"{float(ours.flatten()[worst])!r}, reference "
        f"{float(x.grad.flatten()[worst])!r}, allowed {float(allowed.flatten()[worst]):.2e}"
    )


def test_float64_is_refused():
    rope = rotary.Rope(CONFIGS["default"])
    with pytest.raises(rotary.Error, match="float64") as info:
        rtorch.apply_rotary(torch.zeros(2, 1, 8, dtype=torch.float64, requires_grad=True), None, [0, 1], rope)
    assert info.value.argument == "q.dtype"
    with pytest.raises(rotary.Error, match="rotary.Rope"):
        rtorch.apply_rotary(torch.zeros(2, 1, 8), None, [0, 1], CONFIGS["default"])
