"""The torch.ops.rotary operators: torch.library.opcheck on each, torch.compile(fullgraph=True)
without graph breaks, torch.export of an attention block, gradients through a compiled graph, and
the string that carries a Rope into an operator.

Expected values come from RoPE written out here in float64 torch (theta_i = base^(-2i/d), pairs
(j, j + d/2)), never from rotary. Compiling uses the "aot_eager" backend (the same aten kernels as
eager, so results are bit-identical) except in one test, which uses the default inductor backend
(on the CPU it compiles C++, about 15 s) and compares to a tolerance.
"""

import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import rotary
import rotary._torch_ops as ops
import rotary.torch as rtorch

HEAD_DIM, BASE = 8, 10000.0
LLAMA = {"head_dim": HEAD_DIM, "max_position_embeddings": 64}  # half-split, rope_theta 10000
YARN = {
    "head_dim": HEAD_DIM,
    "max_position_embeddings": 8192,  # attention factor 1.1386...
    "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048},
}
CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# torch's own internals (opcheck, export) call the deprecated torch.jit.script_method; not rotary's.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def rope_formula(x, positions, layout):
    """float64 RoPE of x (any of rotary's layouts) as published, half-split pairs, base 10000."""
    d = x.shape[-1]
    inv_freq = BASE ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.double()[..., None] * inv_freq  # token dims + (d/2,)
    heads = layout.index("h")  # angles' dims are the token dims in layout order: add the heads one
    cos, sin = angles.cos().unsqueeze(heads), angles.sin().unsqueeze(heads)
    a, b = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)


def shaped(layout, batch, seq, heads, dtype=torch.float32, generator=None):
    sizes = {"b": batch, "s": seq, "h": heads, "d": HEAD_DIM}
    return torch.randn([sizes[a] for a in layout], generator=generator).to(dtype)


def positions_for(layout, batch, seq):
    return torch.arange(batch * seq).reshape(batch, seq) * 3 if "b" in layout else torch.arange(seq) * 3


# --- opcheck: schema, fake tensors, autograd registration, AOT dispatch -----------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["bhsd", "shd"])
def test_opcheck_rotations(dtype, layout):
    key = rtorch.rope_key(rotary.Rope(YARN))
    g = torch.Generator().manual_seed(1)
    q, k = shaped(layout, 2, 5, 4, dtype, g), shaped(layout, 2, 5, 2, dtype, g)
    if layout == "bhsd":  # as attention modules make them: (batch, seq, heads, d) memory, transposed
        q, k = (x.transpose(1, 2).contiguous().transpose(1, 2) for x in (q, k))
    positions = positions_for(layout, 2, 5)
    for keys in (k, None):
        q_grad = q.clone().requires_grad_()
        k_grad = None if keys is None else keys.clone().requires_grad_()
        torch.library.opcheck(torch.ops.rotary.rotate.default, (q_grad, k_grad, positions, key, layout))
        torch.library.opcheck(torch.ops.rotary.rotate.default, (q, keys, positions, key, layout, True))
        args = (q.clone(), None if keys is None else keys.clone(), positions, key, layout)
        torch.library.opcheck(torch.ops.rotary.rotate_inplace.default, args)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cache_shape", [(3, 4, 2, HEAD_DIM), (12, 2, HEAD_DIM)], ids=["paged", "contiguous"])
def test_opcheck_rotate_and_cache(dtype, cache_shape):
    key = rtorch.rope_key(rotary.Rope(LLAMA))
    k, v = torch.randn(3, 2, HEAD_DIM).to(dtype), torch.randn(3, 2, HEAD_DIM).to(dtype)
    args = (k, v, torch.tensor([7, 8, 9]), torch.tensor([5, 6, 11]))
    caches = (torch.zeros(cache_shape, dtype=dtype), torch.zeros(cache_shape, dtype=dtype))
    torch.library.opcheck(torch.ops.rotary.rotate_and_cache.default, args + caches + (key,))


# --- what the operators compute ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["bhsd", "bshd", "shd", "hsd"])
def test_rotations_match_the_formula(dtype, layout):
    rope = rotary.Rope(LLAMA)
    q, k = shaped(layout, 2, 6, 3, dtype), shaped(layout, 2, 6, 1, dtype)
    positions = positions_for(layout, 2, 6)
    got_q, got_k = rtorch.apply_rotary(q, k, positions, rope, layout=layout)
    eps = torch.finfo(dtype).eps  # one rounding to dtype, plus float32 angles (about 1e-6)
    for got, x in ((got_q, q), (got_k, k)):
        assert got.dtype == dtype and got.shape == x.shape
        want = rope_formula(x.double(), positions, layout)
        torch.testing.assert_close(got.double(), want, rtol=eps, atol=eps + 1e-5)
    in_place_q, in_place_k = q.clone(), k.clone()
    assert rtorch.apply_rotary_(in_place_q, in_place_k, positions, rope, layout=layout) is None
    assert torch.equal(in_place_q, got_q) and torch.equal(in_place_k, got_k)


def test_rotate_and_cache_writes_rotated_keys_at_the_slots_only():
    rope = rotary.Rope(LLAMA)
    key_cache, value_cache = torch.full((3, 4, 2, HEAD_DIM), 7.0), torch.full((3, 4, 2, HEAD_DIM), 7.0)
    k, v = torch.randn(3, 2, HEAD_DIM), torch.randn(3, 2, HEAD_DIM)
    positions, slots = torch.tensor([4, 5, 6]), torch.tensor([9, 10, 0])  # block 2 offsets 1, 2; block 0 offset 0
    rtorch.rotate_and_cache(k, v, positions, slots, key_cache, value_cache, rope)
    rows_k, rows_v = key_cache.view(12, 2, HEAD_DIM), value_cache.view(12, 2, HEAD_DIM)
    want = rope_formula(k.double(), positions, "shd")
    torch.testing.assert_close(rows_k[slots].double(), want, rtol=1e-6, atol=1e-5)
    assert torch.equal(rows_v[slots], v)
    untouched = torch.ones(12, dtype=torch.bool)
    untouched[slots] = False
    assert (rows_k[untouched] == 7).all() and (rows_v[untouched] == 7).all()


def test_rotate_and_cache_refuses_repeated_or_outside_slots():
    rope = rotary.Rope(LLAMA)
    caches = (torch.zeros(4, 1, HEAD_DIM), torch.zeros(4, 1, HEAD_DIM))
    k = torch.randn(2, 1, HEAD_DIM)
    for slots, words in ((torch.tensor([1, 1]), "distinct"), (torch.tensor([1, 4]), r"\[0, 4\)")):
        with pytest.raises(rotary.Error, match=words) as info:
            rtorch.rotate_and_cache(k, k, [0, 1], slots, *caches, rope)
        assert info.value.argument == "slots"
        assert not caches[0].any() and not caches[1].any()
    with pytest.raises(rotary.Error, match="dtype of k") as info:
        rtorch.rotate_and_cache(k.half(), k.half(), [0, 1], torch.tensor([0, 1]), *caches, rope)
    assert info.value.argument == "key_cache"


@pytest.mark.parametrize("shape", [(2, 4, 6, HEAD_DIM), (4, 6, HEAD_DIM)])
def test_layout_must_be_named(shape):
    """A 4-d (batch, heads, seq, head_dim) tensor read as (batch, seq, heads, head_dim) would be
    rotated by the wrong positions without an error: the torch API refuses to guess."""
    q = torch.randn(shape)
    with pytest.raises(rotary.Error, match="layout=") as info:
        rtorch.apply_rotary(q, None, torch.arange(6), rotary.Rope(LLAMA))
    assert info.value.argument == "layout"
    assert ("'bhsd'" in str(info.value)) == (len(shape) == 4)


def test_fake_implementation_checks_shapes_without_data():
    key = rtorch.rope_key(rotary.Rope(LLAMA))
    with torch._subclasses.fake_tensor.FakeTensorMode():
        q = torch.empty(2, 4, 6, HEAD_DIM).transpose(1, 2)  # bshd storage read as bhsd
        out, none = torch.ops.rotary.rotate(q, None, torch.zeros(2, 6, dtype=torch.long), key, "bshd")
        assert none is None and out.shape == q.shape and out.stride() == q.stride()
        with pytest.raises(rotary.Error, match=r"expected shape \(2, 4\)") as info:
            torch.ops.rotary.rotate(q, None, torch.zeros(2, 6, dtype=torch.long), key, "bhsd")
        assert info.value.argument == "positions"
        with pytest.raises(rotary.Error, match="head_dim 8"):
            torch.ops.rotary.rotate(torch.empty(6, 2, 16), None, torch.zeros(6, dtype=torch.long), key, "shd")


# --- torch.compile and torch.export of an attention block --------------------------------------


class AttentionBlock(torch.nn.Module):
    """q/k/v projections, rotary on (batch, heads, seq, head_dim) views, grouped-query SDPA."""

    def __init__(self, rope, dim=16, heads=4, kv_heads=2):
        super().__init__()
        self.rope, self.heads, self.kv_heads = rope, heads, kv_heads
        generator = torch.Generator().manual_seed(0)
        self.q = torch.nn.Parameter(torch.randn(heads * HEAD_DIM, dim, generator=generator) / dim**0.5)
        self.k = torch.nn.Parameter(torch.randn(kv_heads * HEAD_DIM, dim, generator=generator) / dim**0.5)
        self.v = torch.nn.Parameter(torch.randn(kv_heads * HEAD_DIM, dim, generator=generator) / dim**0.5)

    def project(self, x, weight, heads):
        batch, seq, _ = x.shape
        return F.linear(x, weight).view(batch, seq, heads, HEAD_DIM).transpose(1, 2)  # a strided view

    def forward(self, x, positions, rotate=None):
        q, k = self.project(x, self.q, self.heads), self.project(x, self.k, self.kv_heads)
        v = self.project(x, self.v, self.kv_heads)
        if rotate is None:
            q, k = rtorch.apply_rotary(q, k, positions, self.rope, layout="bhsd")
        else:
            q, k = rotate(q, positions, "bhsd"), rotate(k, positions, "bhsd")
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return out.transpose(1, 2).flatten(2)


def block_inputs(batch=2, seq=6, dim=16):
    x = torch.randn(batch, seq, dim, generator=torch.Generator().manual_seed(2))
    return x, torch.arange(seq).expand(batch, seq) + torch.tensor([[0], [5]])


def test_compile_fullgraph_has_no_graph_break_and_equals_eager():
    block, (x, positions) = AttentionBlock(rotary.Rope(YARN)), block_inputs()
    explanation = torch._dynamo.explain(block)(x, positions)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x, positions), block(x, positions))
    # The graph holds the Rope's string as a constant, guarded on the Rope: another Rope recompiles.
    block.rope = rotary.Rope(LLAMA)
    assert torch.equal(compiled(x, positions), block(x, positions))
    assert not torch.equal(block(x, positions), AttentionBlock(rotary.Rope(YARN))(x, positions))


def test_compile_with_inductor_equals_eager():
    block, (x, positions) = AttentionBlock(rotary.Rope(YARN)), block_inputs()
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True)
    torch.testing.assert_close(compiled(x, positions), block(x, positions), rtol=1e-5, atol=1e-6)


def test_compiled_gradients_equal_eager_and_the_float64_formula():
    block, (x, positions) = AttentionBlock(rotary.Rope(LLAMA)), block_inputs()
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    weights = torch.linspace(-1, 1, 2 * 6 * 32).reshape(2, 6, 32)

    def gradients(forward, x, dtype=torch.float32):
        block.zero_grad()
        x = x.detach().to(dtype, copy=True).requires_grad_()
        (forward(x) * weights.to(dtype)).sum().backward()
        return [x.grad] + [p.grad.clone() for p in (block.q, block.k, block.v)]

    eager = gradients(lambda t: block(t, positions), x)
    for got, want in zip(gradients(lambda t: compiled(t, positions), x), eager, strict=True):
        assert torch.equal(got, want)
    block.double()
    formula = gradients(lambda t: block(t, positions, rotate=rope_formula), x, torch.float64)
    for got, want in zip(eager, formula, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


def test_compiled_decode_step_mutates_like_eager():
    """The in-place rotation and the cache write under torch.compile (functionalized, then written
    back), with dynamic shapes: two token counts, one graph."""
    rope = rotary.Rope(LLAMA)

    def step(q, k, v, positions, slots, key_cache, value_cache):
        rtorch.apply_rotary_(q, None, positions, rope, layout="shd")
        rtorch.rotate_and_cache(k, v, positions, slots, key_cache, value_cache, rope)
        return q * 2

    def run(fn, tokens):
        g = torch.Generator().manual_seed(tokens)
        q, k, v = (torch.randn(tokens, 2, HEAD_DIM, generator=g) for _ in range(3))
        caches = torch.zeros(2, 4, 2, HEAD_DIM), torch.zeros(2, 4, 2, HEAD_DIM)
        positions, slots = torch.arange(tokens) + 3, torch.randperm(8, generator=g)[:tokens]
        return (fn(q, k, v, positions, slots, *caches), q) + caches

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager", dynamic=True)
    for tokens in (3, 5):
        for got, want in zip(run(compiled, tokens), run(step, tokens), strict=True):
            assert torch.equal(got, want)


def test_export_attention_block_equals_eager_and_reloads():
    block, (x, positions) = AttentionBlock(rotary.Rope(YARN)), block_inputs()
    program = torch.export.export(block, (x, positions))
    targets = [node.target for node in program.graph.nodes if node.op == "call_function"]
    assert torch.ops.rotary.rotate.default in targets
    assert torch.equal(program.module()(x, positions), block(x, positions))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    ops._ROPES.clear()  # as in a fresh process: the Rope is rebuilt from the string in the graph
    buffer.seek(0)
    assert torch.equal(torch.export.load(buffer).module()(x, positions), block(x, positions))


# --- the string that names a Rope ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: rotary.Rope(YARN, angle_mode="exact", max_threads=1),
        lambda: rotary.Rope(dict(LLAMA, rope_scaling={"rope_type": "dynamic", "factor": 2.0})),  # follows the length
        lambda: rotary.Rope(CONFIGS / "phi-3.5-mini-instruct.json"),  # LongRoPE
        lambda: rotary.Rope(CONFIGS / "gpt-j-6b.json"),  # interleaved, partial
        lambda: rotary.Rope(CONFIGS / "qwen2.5-vl-7b-instruct.json"),  # M-RoPE
        lambda: rotary.Rope(LLAMA, inv_freq=torch.full((4,), 0.5), attention_factor=2.0),
    ],
    ids=["yarn-exact", "dynamic", "longrope", "gptj", "mrope", "own-frequencies"],
)
def test_rope_rebuilt_from_its_string_rotates_identically(make):
    rope = make()
    key = rtorch.rope_key(rope)
    assert "process_local" not in json.loads(key)
    ops._ROPES.clear()
    rebuilt = ops.rope_for(key)
    assert rebuilt is not rope and rtorch.rope_key(rebuilt) == key
    q = torch.randn(2, 40, 3, rope.head_dim)
    positions = torch.arange(80).reshape(2, 40) * 97  # past the original context: NTK / LongRoPE switch
    assert torch.equal(
        rtorch.apply_rotary(q, None, positions, rope, layout="bshd"),
        rtorch.apply_rotary(q, None, positions, rebuilt, layout="bshd"),
    )


def test_rope_without_a_config_json_works_in_its_process_only():
    rope = rotary.Rope(CONFIGS / "qwen2.5-vl-7b-instruct.json", vision=True)  # axial 2D RoPE
    key = rtorch.rope_key(rope)
    assert "process_local" in json.loads(key)
    q = torch.randn(4, 2, rope.head_dim)
    assert rtorch.apply_rotary(q, None, torch.arange(4), rope, layout="shd").shape == q.shape
    del ops._ROPES[key]
    with pytest.raises(rotary.Error, match="another process") as info:
        torch.ops.rotary.rotate(q, None, torch.arange(4), key, "shd")
    assert info.value.argument == "rope"
    with pytest.raises(rotary.Error, match="rope_key"):
        torch.ops.rotary.rotate(q, None, torch.arange(4), "not a rope", "shd")


# --- rotary::rms_norm_rotate_inplace -----------------------------------------------------------


def rms_norm_formula(x, weight, eps):
    """float64 RMSNorm over the last dimension, times the weight (no intermediate rounding)."""
    x = x.double()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight.double()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["bhsd", "shd"])
def test_opcheck_rms_norm_rotate_inplace(dtype, layout):
    key = rtorch.rope_key(rotary.Rope(LLAMA))
    g = torch.Generator().manual_seed(7)
    q, k = shaped(layout, 2, 5, 4, dtype, g), shaped(layout, 2, 5, 2, dtype, g)
    weight = torch.rand(HEAD_DIM, generator=g).to(dtype) + 0.5
    positions = positions_for(layout, 2, 5)
    for keys in (k, None):
        args = (q.clone(), None if keys is None else keys.clone(), positions, weight, weight, key, layout, 1e-6)
        torch.library.opcheck(torch.ops.rotary.rms_norm_rotate_inplace.default, args)
        kwargs = {"unit_offset": True, "scope": "head", "round_before_weight": True}
        torch.library.opcheck(torch.ops.rotary.rms_norm_rotate_inplace.default, args, kwargs)


class NormRotateBlock(torch.nn.Module):
    """Projections, the norms and the rotation in place through the operator."""

    def __init__(self, rope):
        super().__init__()
        torch.manual_seed(3)
        self.q_proj = torch.nn.Linear(16, 2 * HEAD_DIM, bias=False)
        self.k_proj = torch.nn.Linear(16, HEAD_DIM, bias=False)
        self.q_weight = torch.nn.Parameter(torch.rand(HEAD_DIM) + 0.5, requires_grad=False)
        self.k_weight = torch.nn.Parameter(torch.rand(HEAD_DIM) + 0.5, requires_grad=False)
        self.key = rtorch.rope_key(rope)

    def forward(self, x, positions):
        q = self.q_proj(x).view(*x.shape[:-1], 2, HEAD_DIM)
        k = self.k_proj(x).view(*x.shape[:-1], 1, HEAD_DIM)
        torch.ops.rotary.rms_norm_rotate_inplace(
            q, k, positions, self.q_weight, self.k_weight, self.key, "bshd", 1e-6, round_before_weight=True
        )
        return q.sum(-2) + k.sum(-2)


def test_rms_norm_rotate_compiles_fullgraph_and_equals_eager_and_the_formula():
    rope = rotary.Rope(LLAMA)
    block = NormRotateBlock(rope)
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(4))
    positions = torch.arange(6).expand(2, 6)
    with torch.no_grad():
        explanation = torch._dynamo.explain(block)(x, positions)
        assert explanation.graph_break_count == 0 and explanation.graph_count == 1
        torch._dynamo.reset()
        compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
        assert torch.equal(compiled(x, positions), block(x, positions))
        q = block.q_proj(x).view(2, 6, 2, HEAD_DIM)
        k = block.k_proj(x).view(2, 6, 1, HEAD_DIM)
    want = rope_formula(rms_norm_formula(q, block.q_weight, 1e-6), positions, "bshd").sum(-2)
    want = want + rope_formula(rms_norm_formula(k, block.k_weight, 1e-6), positions, "bshd").sum(-2)
    torch.testing.assert_close(compiled(x, positions).double(), want, rtol=0, atol=1e-5)


def test_rms_norm_rotate_inplace_fake_refuses_by_name():
    key = rtorch.rope_key(rotary.Rope(LLAMA))
    q, k = torch.ones(5, 4, HEAD_DIM), torch.ones(5, 2, HEAD_DIM)
    weight, positions = torch.ones(HEAD_DIM), torch.arange(5)
    op = torch.ops.rotary.rms_norm_rotate_inplace
    with pytest.raises(rotary.Error) as e:
        op(q, k, positions, weight, None, key, "shd", 1e-6)
    assert e.value.argument == "k_weight"
    with pytest.raises(rotary.Error) as e:
        op(q, k, positions, weight, weight, key, "shd", 1e-6, scope="group")
    assert e.value.argument == "scope"
    with pytest.raises(rotary.Error) as e:
        op(q, k, positions, weight[:3], weight, key, "shd", 1e-6)
    assert e.value.argument == "q_norm.weight"
    assert torch.equal(q, torch.ones(5, 4, HEAD_DIM))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_opcheck_rms_norm_rotate(dtype):
    key = rtorch.rope_key(rotary.Rope(LLAMA))
    g = torch.Generator().manual_seed(8)
    q, k = shaped("bshd", 2, 5, 4, dtype, g), shaped("bshd", 2, 5, 2, dtype, g)
    weight = (torch.rand(HEAD_DIM, generator=g) + 0.5).to(dtype)
    positions = positions_for("bshd", 2, 5)
    grads = [x.clone().requires_grad_() for x in (q, k, weight, weight)]
    args = (grads[0], grads[1], positions, grads[2], grads[3], key, "bshd", 1e-6)
    torch.library.opcheck(torch.ops.rotary.rms_norm_rotate.default, args)
    torch.library.opcheck(
        torch.ops.rotary.rms_norm_rotate.default, (q, None, positions, weight, None, key, "bshd", 1e-6)
    )


@pytest.mark.parametrize("scope", ["head", "token"])
def test_rms_norm_rotate_gradients_equal_the_float64_formula(scope):
    key = rtorch.rope_key(rotary.Rope(LLAMA))
    g = torch.Generator().manual_seed(9)
    q, k = shaped("bshd", 2, 5, 4, torch.float32, g), shaped("bshd", 2, 5, 2, torch.float32, g)
    positions = positions_for("bshd", 2, 5)
    sizes = (HEAD_DIM, HEAD_DIM) if scope == "head" else (4 * HEAD_DIM, 2 * HEAD_DIM)
    weights = [torch.rand(n, generator=g) + 0.5 for n in sizes]
    upstream = [torch.randn(x.shape, generator=g) for x in (q, k)]

    def formula(x, weight):  # float64: the norm (unit offset) over the group, then RoPE
        x64 = x.double()
        dims = (-1,) if scope == "head" else (-2, -1)
        normed = x64 * torch.rsqrt(x64.pow(2).mean(dims, keepdim=True) + 1e-6)
        return rope_formula(normed * (1 + weight.double()).view(-1, HEAD_DIM)[-x.shape[-2] :], positions, "bshd")

    ours = [t.clone().requires_grad_() for t in (q, k, *weights)]
    out_q, out_k = torch.ops.rotary.rms_norm_rotate(
        ours[0], ours[1], positions, ours[2], ours[3], key, "bshd", 1e-6, unit_offset=True, scope=scope
    )
    ((out_q * upstream[0]).sum() + (out_k * upstream[1]).sum()).backward()
    ref = [t.clone().double().requires_grad_() for t in (q, k, *weights)]
    ((formula(ref[0], ref[2]) * upstream[0]).sum() + (formula(ref[1], ref[3]) * upstream[1]).sum()).backward()
    for got, want in zip(ours, ref, strict=True):
        torch.testing.assert_close(got.grad.double(), want.grad, rtol=1e-4, atol=1e-4)
