"""Property-based tests (hypothesis) of the Python API: rotation, aliasing between arguments, and
the KV cache, each checked against a float64 reference computed here from the published formulas.

Every property runs a fixed number of examples (EXAMPLES) from a derandomized, database-free
search, so a failure seen once is seen on every run. The examples follow from the test's code, the
pinned hypothesis version and one thing more: hypothesis mixes literals from local, non-test
source files into its draws, so rotary installed in site-packages (as scripts/test.sh installs it)
and rotary imported from a build directory draw different, equally fixed, examples. conftest.py
prints how many examples each property ran and how close rotary came to the bounds.

Tolerances. rotary's hf mode is transformers' formula: the angle float32(float32(p) * theta), its
cos and sin rounded to float32, times the attention factor in float32 (exact mode: cos(p * theta)
times the factor in float64, rounded once to float32). Each rotated channel is then two float32
products and one float32 sum (no fused multiply-add), rounded once more to the storage type for
float16 and bfloat16. The reference takes the same float32 cos and sin (the published values)
and does the rest in float64, so what separates the two is exactly those roundings, and the
bound allows each of them half an ulp at the magnitude it rounds:
  - float32 storage: the products t1, t2 and their sum: ulp(t1)/2 + ulp(t2)/2 + ulp(t1 + t2)/2,
    at most 1.5 float32 ulps at the pair's scale t1 + t2. One ulp would be too few: the three
    roundings are independent, and about one float32 output in 500 lands 1.0-1.25 ulps from the
    float64 value at the pair's scale (6 % are beyond one ulp of their own magnitude; measured).
  - float16 and bfloat16: the float32 bound above (about 2^-13 of a float16 ulp) plus half an ulp
    of the output's own magnitude, the one final rounding: well inside one storage ulp.
"""

import math
import re
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rotary
from reference_rotation import rotate_reference

try:
    import torch
except ImportError:  # bfloat16 needs torch; NumPy float32 and float16 are tested without it
    torch = None

# At least 2,000 examples per property; each costs a few milliseconds (tiny tensors).
EXAMPLES = {"rotation": 2000, "overlap": 2000, "kv_cache": 2000}

# What the properties saw, for the terminal summary (conftest.py).
RUNS = {name: {"passed": 0, "refused": 0, "interleaved": 0} for name in EXAMPLES}
WORST = {}  # (what, dtype) -> [worst |error| / bound, worst error in storage ulps at the pair's scale]


def _settings(name):
    return settings(
        max_examples=EXAMPLES[name],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def summary_lines():
    lines = []
    for name, run in RUNS.items():
        if run["passed"] or run["refused"]:
            refused = "bad appends" if name == "kv_cache" else "calls"
            lines.append(
                f"{name}: {run['passed'] + (0 if name == 'kv_cache' else run['refused'])} examples "
                f"(max_examples {EXAMPLES[name]}, derandomized, no database); {run['refused']} "
                f"{refused} refused with rotary.Error"
                + (
                    f"; {run['interleaved']} accepted calls had tensors whose address ranges interleave "
                    "without sharing an element"
                    if name == "overlap"
                    else ""
                )
            )
    for (name, dtype), (ratio, ulps) in sorted(WORST.items()):
        in_ulps = "" if ulps is None else f", {ulps:.3f} storage ulps at the pair's scale"
        lines.append(f"{name} {dtype}: worst error {ratio:.3f} of the bound{in_ulps}")
    return lines


# ---- floating point --------------------------------------------------------------------------------

_FORMATS = {"float32": (23, -126), "float16": (10, -14), "bfloat16": (7, -126)}  # mantissa bits, min exponent
U32 = 2.0**-24  # float32 unit roundoff


def ulp(x, dtype):
    """The spacing of `dtype` at |x| (at the smallest normal's for zeros and subnormals), in float64."""
    mantissa, emin = _FORMATS[dtype]
    _, e = np.frexp(np.abs(np.asarray(x, np.float64)))  # |x| = m * 2^e, m in [0.5, 1)
    return np.ldexp(1.0, np.maximum(e - 1, emin) - mantissa)


def gamma(n):
    """Higham's gamma_n: the relative error bound of n float32 roundings in a row."""
    return n * U32 / (1 - n * U32)


# ---- configurations ---------------------------------------------------------------------------------

HEAD_DIMS = {
    "default": (2, 4, 8, 16, 32),
    "interleaved": (2, 4, 8, 16, 32),
    "partial": (4, 8, 16, 32),
    "interleaved-partial": (8, 16, 32),
    "yarn": (4, 8, 16, 32),
    "llama3": (4, 8, 16, 32),
    "longrope": (4, 8, 16, 32),
    "dynamic": (4, 8, 16),
    "mrope": (8, 16, 32),
    "mrope-interleaved": (8, 16, 32),
}


def make_config(name, d):
    """A small model configuration of each kind (head_dim d), as a config.json dict."""
    half = d // 2
    if name == "default":
        return {"head_dim": d, "rope_theta": 10000.0}
    if name == "interleaved":
        return {"head_dim": d, "rope_theta": 10000.0, "model_type": "gptj", "rotary_dim": d}
    if name == "interleaved-partial":
        return {"head_dim": d, "rope_theta": 10000.0, "model_type": "gptj", "rotary_dim": d // 4 * 2 - 2}
    if name == "partial":
        return {"head_dim": d, "rope_theta": 10000.0, "partial_rotary_factor": 0.5}
    if name == "yarn":
        return {
            "head_dim": d,
            "max_position_embeddings": 8192,
            "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048},
        }
    if name == "llama3":
        return {
            "head_dim": d,
            "rope_theta": 500000.0,
            "max_position_embeddings": 131072,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
            },
        }
    if name == "longrope":  # switches to long_factor when a call's max position + 1 passes 4096
        return {
            "head_dim": d,
            "max_position_embeddings": 131072,
            "original_max_position_embeddings": 4096,
            "rope_scaling": {
                "type": "longrope",
                "short_factor": [1.0 + j / half for j in range(half)],
                "long_factor": [1.0 + 7.0 * j / half for j in range(half)],
            },
        }
    if name == "dynamic":
        return {"head_dim": d, "max_position_embeddings": 64, "rope_scaling": {"type": "dynamic", "factor": 2.0}}
    if name == "mrope":  # Qwen2.5-VL's scheme: consecutive temporal, height, width sections
        s = half * 3 // 8
        return {
            "head_dim": d,
            "rope_theta": 1e6,
            "model_type": "qwen2_5_vl",
            "rope_scaling": {"type": "mrope", "mrope_section": [half - 2 * s, s, s]},
        }
    if name == "mrope-interleaved":  # Qwen3-VL's: height and width take every third pair
        s = half // 4
        return {
            "head_dim": d,
            "rope_theta": 1e6,
            "model_type": "qwen3_vl",
            "rope_scaling": {"type": "mrope", "mrope_section": [half - 2 * s, s, s]},
        }
    raise AssertionError(name)


def pair_axes(config, half):
    """Which position component each pair rotates by, from mrope_section as the models define it."""
    section = config.get("rope_scaling", {}).get("mrope_section")
    if section is None:
        return np.zeros(half, np.int64)
    j = np.arange(half)
    if config["model_type"] == "qwen3_vl":
        return np.where((j % 3 == 1) & (j < 3 * section[1]), 1, np.where((j % 3 == 2) & (j < 3 * section[2]), 2, 0))
    return np.searchsorted(np.cumsum(section), j, side="right")


@cache
def make_rope(name, d, angle_mode, cache_positions):
    return rotary.Rope(make_config(name, d), angle_mode=angle_mode, cache_positions=cache_positions)


# ---- the reference -----------------------------------------------------------------------------------


def positions_per_axis(positions, token_shape, num_axes):
    """Positions as (num_axes, tokens) int64, tokens in row-major order of token_shape."""
    p = positions.numpy() if is_torch(positions) else np.asarray(positions)
    p = p.astype(np.int64)
    if num_axes > 1 and p.ndim == len(token_shape) + 1 and p.shape[0] == num_axes:
        return np.broadcast_to(p, (num_axes,) + token_shape).reshape(num_axes, -1)
    return np.repeat(np.broadcast_to(p, token_shape).reshape(1, -1), num_axes, axis=0)


def reference_cos_sin(rope, config, angle_mode, positions, per_axis, inverse):
    """cos and sin (tokens, rotary_dim / 2) as float32 values in float64, computed here.

    The frequencies are the call's own (`frequencies_for`: dynamic NTK and LongRoPE pick them from
    the call's largest position). hf: cos(float32(float32(p) * theta)) rounded to float32, times
    the attention factor in float32, as transformers computes them. exact: cos(p * theta) in
    float64 (p * theta is exact in float64 for |p| < 2^29, the range drawn for it), times the
    factor, rounded once to float32.
    """
    inv_freq, factor = rope.frequencies_for(positions)
    p = per_axis[pair_axes(config, rope.rotary_dim // 2), :].T  # (tokens, pairs)
    if angle_mode == "hf":
        angle = (p.astype(np.float32) * inv_freq).astype(np.float64)
        cos = np.cos(angle).astype(np.float32) * np.float32(factor)
        sin = np.sin(angle).astype(np.float32) * np.float32(factor)
    else:
        assert np.all(np.abs(p) < 2**29)
        angle = p.astype(np.float64) * inv_freq.astype(np.float64)
        cos, sin = (np.cos(angle) * factor).astype(np.float32), (np.sin(angle) * factor).astype(np.float32)
    cos, sin = cos.astype(np.float64), sin.astype(np.float64)
    return cos, (-sin if inverse else sin)


def pair_indices(rotary_dim, layout):
    half = rotary_dim // 2
    if layout == "interleaved":
        return np.arange(half) * 2, np.arange(half) * 2 + 1
    return np.arange(half), np.arange(half) + half


def rotation_bound(x, cos, sin, rotary_dim, layout, dtype, ref):
    """Per element: how far rotary may be from `ref` (see the module docstring), and the pair's
    scale |x_a cos| + |x_b sin| for reporting ulps. Pass-through channels: 0, they are copies."""
    i0, i1 = pair_indices(rotary_dim, layout)
    c, s = np.abs(cos)[:, None, :], np.abs(sin)[:, None, :]
    a, b = np.abs(x[..., i0]), np.abs(x[..., i1])
    bound, scale = np.zeros_like(x), np.zeros_like(x)
    for index, t1, t2 in ((i0, a * c, b * s), (i1, b * c, a * s)):
        t = 0.5 * (ulp(t1, "float32") + ulp(t2, "float32") + ulp((t1 + t2) * (1 + 2.0**-22), "float32"))
        if dtype != "float32":
            t = t + 0.5 * ulp(np.abs(ref[..., index]) + t, dtype)
        bound[..., index], scale[..., index] = t, t1 + t2
    return bound, scale


def check_close(name, got, ref, bound, scale, dtype, what):
    err = np.abs(got - ref)
    bad = err > bound
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: element {i} = {got[i]!r}, reference {ref[i]!r}, |error| {err[i]:.3e} "
            f"> bound {bound[i]:.3e} ({dtype})"
        )
    if err.size:
        nonzero = bound > 0
        ratio = float((err[nonzero] / bound[nonzero]).max()) if nonzero.any() else 0.0
        ulps = float((err / ulp(scale, dtype)).max())
        worst = WORST.setdefault((name, dtype), [0.0, 0.0])
        worst[0], worst[1] = max(worst[0], ratio), max(worst[1], ulps)


# ---- tensors: NumPy arrays and torch tensors alike -----------------------------------------------------


def is_torch(x):
    return torch is not None and isinstance(x, torch.Tensor)


def dtype_name(x):
    return str(x.dtype).replace("torch.", "")


def itemsize(x):
    return x.element_size() if is_torch(x) else x.itemsize


def element_addresses(x):
    """The address of every element of the view x (shape x.shape), from its pointer and strides."""
    if is_torch(x):
        address, strides = x.data_ptr(), [s * x.element_size() for s in x.stride()]
    else:
        address, strides = x.__array_interface__["data"][0], list(x.strides)
    out = np.full(tuple(x.shape), address, np.int64)
    for axis, (n, stride) in enumerate(zip(x.shape, strides, strict=True)):
        shape = [1] * x.ndim
        shape[axis] = n
        out = out + (np.arange(n, dtype=np.int64) * stride).reshape(shape)
    return out


def shared_bytes(x, y):
    """Whether views x and y reach a common byte: every byte of every element, enumerated."""
    if min(np.prod(x.shape), np.prod(y.shape)) == 0:
        return False
    bx = (element_addresses(x)[..., None] + np.arange(itemsize(x))).ravel()
    by = (element_addresses(y)[..., None] + np.arange(itemsize(y))).ravel()
    return np.intersect1d(bx, by).size > 0


def ranges_meet(x, y):
    """Whether the address ranges [first byte, last byte] of x and y intersect."""
    if min(np.prod(x.shape), np.prod(y.shape)) == 0:
        return False
    ax, ay = element_addresses(x), element_addresses(y)
    return ax.min() < ay.max() + itemsize(y) and ay.min() < ax.max() + itemsize(x)


def self_overlapping(x):
    a = element_addresses(x).ravel()
    return np.unique(a).size < a.size


def same_elements(x, y):
    """x is exactly y: the same pointer, shape and strides, a dimension of size 1 taking any stride."""
    if tuple(x.shape) != tuple(y.shape) or dtype_name(x) != dtype_name(y):
        return False
    if min(x.shape, default=1) == 0:
        return True
    return np.array_equal(element_addresses(x), element_addresses(y))


def strides_in_elements(x):
    return list(x.stride()) if is_torch(x) else [s // x.itemsize for s in x.strides]


def values(x):
    """x's elements as a float64 NumPy array (a copy)."""
    if is_torch(x):
        return x.detach().to(torch.float64).numpy().copy()
    return np.array(x, dtype=np.float64)


def canonical(x, layout):
    """A (tokens, heads, head_dim) float64 copy, tokens in the order positions are given."""
    v = values(x)
    if layout == "hsd":
        return v.transpose(1, 0, 2)
    if layout == "bhsd":
        v = v.transpose(0, 2, 1, 3)
    return v.reshape(-1, v.shape[-2], v.shape[-1]) if v.ndim == 4 else v


def buffer_bytes(base):
    """The whole underlying buffer, one row of bytes per element."""
    if is_torch(base):
        raw = base.detach().reshape(-1).view(torch.uint8).numpy().copy()
    else:
        raw = np.frombuffer(base.tobytes(), np.uint8).copy()
    return raw.reshape(-1, itemsize(base))


def assert_only_written(base, before, outputs):
    """Elements of `base` that changed all belong to one of `outputs` (views of it)."""
    after = buffer_bytes(base)
    changed = np.flatnonzero((after != before).any(axis=1))
    if changed.size:
        start = element_addresses(base.reshape(-1)[:1])[0]
        allowed = np.concatenate(
            [((element_addresses(o) - start) // itemsize(base)).ravel() for o in outputs] + [np.zeros(0, np.int64)]
        )
        stray = np.setdiff1d(changed, allowed)
        assert stray.size == 0, f"elements {stray[:8].tolist()} of a buffer written outside every output"


def random_buffer(lib, dtype, n, rng):
    """n finite values of magnitude 2^-3 .. 2^4, a tenth of them zero."""
    v = rng.standard_normal(n) * 2.0 ** rng.integers(-3, 4, n)
    v[rng.random(n) < 0.1] = 0.0
    if lib == "torch":
        return torch.from_numpy(v.astype(np.float32)).to(getattr(torch, dtype))
    return v.astype(dtype)


# ---- property 1: rotation ---------------------------------------------------------------------------------

LAYOUTS = ["bhsd", "bshd", "hsd", "shd"]
DTYPES = [("numpy", "float32"), ("numpy", "float16")] + (
    [("torch", "float32"), ("torch", "float16"), ("torch", "bfloat16")] if torch is not None else []
)


def strided_view(data, rng, lib, dtype, shape, *, faults=()):
    """A view of `shape` into a larger buffer, made the way tensors are: slicing a padded buffer
    with steps, transposing, sometimes broadcasting one dimension (stride 0). Returns (view, base)."""
    nd = len(shape)
    order = data.draw(st.permutations(range(nd - 1)))  # physical order, outermost first
    broadcast = data.draw(st.sampled_from([None] * 16 + list(range(nd - 1))))
    physical, slices = [], []
    for axis in order:
        n = 1 if axis == broadcast else shape[axis]
        step = data.draw(st.sampled_from([1, 1, 1, 2, 3]))
        pad = data.draw(st.integers(0, 2))
        start = data.draw(st.integers(0, pad))
        physical.append(max(n - 1, 0) * step + 1 + pad)
        slices.append(slice(start, start + max(n - 1, 0) * step + 1 if n else start, step))
    d = shape[-1]
    d_step = 2 if "head_dim_stride" in faults else 1
    d_pad = data.draw(st.sampled_from([0, 0, 0, 1, 2, 5]))
    d_start = data.draw(st.integers(0, d_pad))
    physical.append(d * d_step + d_pad)
    slices.append(slice(d_start, d_start + (d - 1) * d_step + 1, d_step))
    tail = data.draw(st.integers(0, 3))
    base = random_buffer(lib, "float64" if "float64" in faults else dtype, int(np.prod(physical)) + tail, rng)
    grid = base[: int(np.prod(physical))].reshape(physical)
    view = grid[tuple(slices)]
    back = [order.index(axis) for axis in range(nd - 1)] + [nd - 1]
    view = view.permute(*back) if lib == "torch" else view.transpose(back)
    if broadcast is not None:
        if lib == "torch":
            view = view.expand(*shape)
        elif data.draw(st.booleans()):
            view = np.broadcast_to(view, shape)  # read-only
        else:
            strides = list(view.strides)
            strides[broadcast] = 0
            view = np.lib.stride_tricks.as_strided(view, shape, strides)  # writable, stride 0
    if "negative_stride" in faults and lib == "numpy" and shape[0] > 1:
        view = view[::-1]
    if "read_only" in faults and lib == "numpy":
        view = view.view()
        view.flags.writeable = False
    return view, base


def tensor_problems(x, d):
    """Why rotary must refuse x as a q or k (or their outputs) of head_dim d, if it must."""
    strides = strides_in_elements(x)
    problems = []
    if dtype_name(x) not in ("float32", "float16", "bfloat16"):
        problems.append(f"dtype {dtype_name(x)}")
    if x.shape[-1] != d:
        problems.append(f"head_dim {x.shape[-1]}")
    if np.prod(x.shape) == 0:  # addresses nothing: its strides do not matter
        return problems
    if x.shape[-1] > 1 and strides[-1] != 1:
        problems.append("head_dim not contiguous")
    if min(strides) < 0:
        problems.append("negative stride")
    return problems


def broadcasts(shape, target):
    try:
        np.broadcast_shapes(tuple(shape), tuple(target))
    except ValueError:
        return False
    return len(shape) <= len(target) and np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)


def writable(x):
    return is_torch(x) or x.flags.writeable


@_settings("rotation")
@given(data=st.data())
def test_rotation_equals_the_reference_or_raises_leaving_every_byte(data):
    """Random shapes, strides, layouts, dtypes, positions, configurations, in place or not: a call
    either raises rotary.Error, and then no byte of any buffer changed, or its outputs equal the
    float64 reference and nothing else was written. It raises exactly when an argument is invalid."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    name = data.draw(st.sampled_from(sorted(HEAD_DIMS)))
    d = data.draw(st.sampled_from(HEAD_DIMS[name]))
    angle_mode = data.draw(st.sampled_from(["hf", "hf", "exact"]))
    rope = make_rope(name, d, angle_mode, data.draw(st.sampled_from([0, 16])))
    config = make_config(name, d)
    layout = data.draw(st.sampled_from(LAYOUTS))
    lib, dtype = data.draw(st.sampled_from(DTYPES))
    seq = data.draw(st.integers(0, 4))
    batch = data.draw(st.integers(1, 3)) if len(layout) == 4 else None
    heads_q, heads_k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    with_k = data.draw(st.booleans())
    k_dtype = data.draw(st.sampled_from([dtype] * 4 + [t for lib_t, t in DTYPES if lib_t == lib]))
    fault = data.draw(
        st.sampled_from(
            [None] * 30
            + [
                "head_dim",
                "k_tokens",
                "out_dtype",
                "head_dim_stride",
                "float64",
                "negative_stride",
                "read_only",
                "position_range",
                "position_count",
            ]
        )
    )

    def shape(heads, head_dim=d, tokens=seq):
        sizes = {"b": batch, "s": tokens, "h": heads, "d": head_dim}
        return tuple(sizes[axis] for axis in layout)

    def make(heads, which_dtype, role):
        own = (fault,) if fault and data.draw(st.booleans(), label=f"fault on {role}") else ()
        head_dim = d + 2 if "head_dim" in own else d
        tokens = seq + 1 if "k_tokens" in own and role.startswith("k") else seq
        return strided_view(data, rng, lib, which_dtype, shape(heads, head_dim, tokens), faults=own)

    q, q_base = make(heads_q, dtype, "q")
    buffers = [q_base]
    k = k_base = k_out = None
    if with_k:
        k, k_base = make(heads_k, k_dtype, "k")
        buffers.append(k_base)
    out_of_place_q = data.draw(st.booleans())
    q_out = None
    if out_of_place_q:
        q_out, base = make(
            heads_q, dtype if fault != "out_dtype" else "float16" if dtype != "float16" else "float32", "q_out"
        )
        buffers.append(base)
    if with_k and data.draw(st.booleans()):
        k_out, base = make(heads_k, k_dtype, "k_out")
        buffers.append(base)
    inverse = data.draw(st.booleans())

    token_shape = (seq,) if batch is None else (batch, seq)
    # exact mode: below 2^29, where p * theta stays exact in float64 for the reference. hf mode also
    # draws positions up to 2^50, whose float32 angles take rotary's exact reduction path.
    limits = [8, 4096, 70000, 2**20, 2**28] + ([2**40, 2**50] if angle_mode == "hf" else [])
    limit = data.draw(st.sampled_from(limits))
    per_axis_given = rope.num_axes > 1 and data.draw(st.booleans())
    p_shape = ((rope.num_axes,) if per_axis_given else ()) + token_shape
    if batch is not None and not per_axis_given and data.draw(st.booleans()):
        p_shape = (seq,)  # one row of positions for every batch entry
    positions = rng.integers(-limit, limit + 1, p_shape)
    if fault == "position_range" and positions.size:
        positions.reshape(-1)[rng.integers(positions.size)] = 2**60
    if fault == "position_count":
        positions = np.concatenate([positions, positions, positions[..., :1] + 1], axis=-1)
    kind = data.draw(
        st.sampled_from(["int64", "int32", "list", "torch"] if torch is not None else ["int64", "int32", "list"])
    )
    if kind == "int32" and np.abs(positions).max(initial=0) < 2**31:
        positions = positions.astype(np.int32)
    elif kind == "list" and positions.size:  # [] is float64 to NumPy (test_empty_position_list)
        positions = positions.tolist()
    elif kind == "torch":
        positions = torch.from_numpy(np.ascontiguousarray(positions))

    # Which calls are valid, decided from the arguments themselves.
    q_target, k_target = (q if q_out is None else q_out), (k if k_out is None else k_out)
    outputs = [t for t in (q_target, k_target) if t is not None]
    p_array = np.asarray(positions.numpy() if is_torch(positions) else positions)
    problems = [
        f"{role}: {what}"
        for role, t in (("q", q), ("k", k), ("q_out", q_out), ("k_out", k_out))
        if t is not None
        for what in tensor_problems(t, d)
    ]
    problems += [
        f"{role}: read-only" for role, t in (("q", q_target), ("k", k_target)) if t is not None and not writable(t)
    ]
    problems += [
        f"{role}: overlaps itself"
        for role, t in (("q", q_target), ("k", k_target))
        if t is not None and self_overlapping(t)
    ]
    if q_out is not None and (tuple(q_out.shape) != tuple(q.shape) or dtype_name(q_out) != dtype_name(q)):
        problems.append("q_out: not q's shape and dtype")
    if k is not None and tuple(k.shape[layout.index(a)] for a in "bs" if a in layout) != token_shape:
        problems.append("k: not q's tokens")
    if k_out is not None and (tuple(k_out.shape) != tuple(k.shape) or dtype_name(k_out) != dtype_name(k)):
        problems.append("k_out: not k's shape and dtype")
    if np.abs(p_array).max(initial=0) > 2**53:
        problems.append("positions: past 2^53")
    if not broadcasts(p_array.shape, token_shape) and not (
        rope.num_axes > 1
        and p_array.ndim == len(token_shape) + 1
        and p_array.shape[0] == rope.num_axes
        and broadcasts(p_array.shape[1:], token_shape)
    ):
        problems.append("positions: not one per token")
    valid = not problems

    before = [buffer_bytes(b) for b in buffers]
    inputs = [canonical(t, layout) if valid and t is not None else None for t in (q, k)]
    try:
        rope.rotate(q, positions, k=k, q_out=q_out, k_out=k_out, inverse=inverse, layout=layout)
    except rotary.Error as error:
        RUNS["rotation"]["refused"] += 1
        for b, snapshot in zip(buffers, before, strict=True):
            assert np.array_equal(buffer_bytes(b), snapshot), f"a buffer changed although rotate raised: {error}"
        assert not valid, f"rotate refused a valid call: {error}"
        return
    assert valid, f"rotate accepted an invalid call: {problems}"
    RUNS["rotation"]["passed"] += 1
    per_axis = positions_per_axis(positions, token_shape, rope.num_axes)
    cos, sin = reference_cos_sin(rope, config, angle_mode, positions, per_axis, inverse)
    for x, target in zip(inputs, (q_target, k_target), strict=True):
        if target is None:
            continue
        ref = rotate_reference(x, cos, sin, rope.rotary_dim, rope.layout)
        bound, scale = rotation_bound(x, cos, sin, rope.rotary_dim, rope.layout, dtype_name(target), ref)
        check_close(
            "rotation",
            canonical(target, layout),
            ref,
            bound,
            scale,
            dtype_name(target),
            f"{name} d={d} {angle_mode} {layout} inverse={inverse}",
        )
    for b, snapshot in zip(buffers, before, strict=True):
        assert_only_written(b, snapshot, outputs)


def test_empty_position_list():
    # np.asarray([]) is float64; an empty list of positions is still a valid (empty) call.
    rope = rotary.Rope({"head_dim": 8, "rope_theta": 10000.0})
    q = np.zeros((0, 1, 8), np.float32) if torch is None else torch.zeros(0, 1, 8)
    assert rope.rotate(q, []) is q
    with pytest.raises(rotary.Error, match="positions"):
        rope.rotate(np.zeros((2, 1, 8), np.float32), [])


def test_hf_cos_sin_at_large_angles():
    rope = rotary.Rope({"head_dim": 2, "rope_theta": 10000.0})  # theta_0 = 1: the angle is float32(p)
    positions = np.array([2**31 + 12345, 2**40 + 12345, 2**50 + 12345])
    cos, sin = rope.cos_sin(positions)
    angle = positions.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(cos[:, 0], np.array([math.cos(a) for a in angle], np.float32))
    np.testing.assert_array_equal(sin[:, 0], np.array([math.sin(a) for a in angle], np.float32))


# ---- property 2: aliasing between q, k, q_out and k_out --------------------------------------------------


def overlap_views(data, batch, seq, heads, d):
    """View parameters (offset, strides in elements, heads) for tensors in one buffer: slots of a
    packed QKV row (interleaving with each other), head-major blocks, both shifted a few elements."""
    slots = sum(heads)
    row = slots * d + data.draw(st.sampled_from([0, 0, 1, 2, d]))
    batch_gap = data.draw(st.sampled_from([0, 0, d, row]))
    packed_end = batch * (seq * row + batch_gap)
    head_major = packed_end + data.draw(st.integers(0, 3))
    head_pad = data.draw(st.sampled_from([0, 0, 1, d]))

    def new(h):
        shift = data.draw(st.sampled_from([0, 0, 0, 0, 1, 2, -1, -2, d // 2]))
        if data.draw(st.sampled_from(["packed"] * 3 + ["head-major"])) == "packed":
            offset = data.draw(st.integers(0, slots - 1)) * d + shift
            strides = (seq * row + batch_gap, row, d)
        else:
            head_stride = seq * d + head_pad
            offset = data.draw(
                st.sampled_from(
                    [
                        head_major,
                        head_major + shift,
                        head_major + max(heads) * head_stride,
                        data.draw(st.integers(0, head_major)),
                    ]
                )
            )
            strides = (max(heads) * head_stride * 2, d, head_stride)
        return max(offset, 0), strides, h

    return new


def as_view(base, lib, spec, layout, batch, seq, d):
    offset, (batch_stride, token_stride, head_stride), heads = spec
    sizes = {"b": batch, "s": seq, "h": heads, "d": d}
    strides = {"b": batch_stride, "s": token_stride, "h": head_stride, "d": 1}
    shape, elem_strides = [sizes[a] for a in layout], [strides[a] for a in layout]
    if lib == "torch":
        return torch.as_strided(base, shape, elem_strides, offset)
    return np.lib.stride_tricks.as_strided(base[offset:], shape, [s * base.itemsize for s in elem_strides])


def extent(spec, batch, seq, d):
    offset, (batch_stride, token_stride, head_stride), heads = spec
    return offset + (batch - 1) * batch_stride + (seq - 1) * token_stride + (heads - 1) * head_stride + d


def mentions(message, name):
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message) is not None


@_settings("overlap")
@given(data=st.data())
def test_outputs_are_their_own_input_or_share_no_element(data):
    """q, k, q_out and k_out as views of ONE buffer. Each output must be exactly its own input (in
    place) or share no element with any input or any other output. The truth is computed here by
    enumerating every byte of every view: overlapping calls raise rotary.Error naming both
    tensors and leave the buffer untouched; disjoint ones (packed QKV slices included) succeed and
    equal the reference."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    lib, dtype = data.draw(
        st.sampled_from(
            [("numpy", "float32"), ("numpy", "float16")]
            + ([("torch", "float32"), ("torch", "bfloat16")] if torch is not None else [])
        )
    )
    name = data.draw(st.sampled_from(["default", "interleaved", "partial"]))
    d = data.draw(st.sampled_from([4, 8]))
    rope, config = make_rope(name, d, "hf", 0), make_config(name, d)
    layout = data.draw(st.sampled_from(["shd", "hsd", "shd", "bshd", "bhsd"]))
    batch = data.draw(st.integers(1, 2)) if len(layout) == 4 else 1
    seq = data.draw(st.integers(1, 3))
    heads_q = data.draw(st.integers(1, 3))
    with_k = data.draw(st.sampled_from([True, True, True, False]))
    k_is_q = with_k and data.draw(st.sampled_from([False] * 5 + [True]))
    heads_k = heads_q if k_is_q else data.draw(st.integers(1, 3))
    new = overlap_views(data, batch, seq, (heads_q, heads_k, heads_k), d)

    def alias(spec):
        """The same elements through another view object; a size-1 dimension may change stride."""
        offset, strides, heads = spec
        strides = list(strides)
        for i, size in enumerate((batch, seq, heads)):
            if size == 1 and data.draw(st.booleans()):
                strides[i] = data.draw(st.sampled_from([0, 1, 3, 100]))
        return offset, tuple(strides), heads

    q_spec = new(heads_q)
    k_spec = q_spec if k_is_q else new(heads_k) if with_k else None
    q_out_choice = data.draw(st.sampled_from(["in place", "q itself", "alias of q", "new", "new", "alias of k"]))
    k_out_choice = data.draw(st.sampled_from(["in place", "k itself", "alias of k", "new", "new", "alias of q_out"]))
    if q_out_choice == "alias of k" and not (with_k and heads_k == heads_q):
        q_out_choice = "new"
    if k_out_choice == "alias of q_out" and not (q_out_choice != "in place" and heads_k == heads_q):
        k_out_choice = "new"
    q_out_spec = None
    if q_out_choice in ("q itself", "alias of q"):
        q_out_spec = q_spec if q_out_choice == "q itself" else alias(q_spec)
    elif q_out_choice == "alias of k":
        q_out_spec = alias(k_spec)
    elif q_out_choice == "new":
        q_out_spec = new(heads_q)
    k_out_spec = None
    if with_k and k_out_choice in ("k itself", "alias of k"):
        k_out_spec = k_spec if k_out_choice == "k itself" else alias(k_spec)
    elif with_k and k_out_choice == "alias of q_out":
        k_out_spec = alias(q_out_spec)
    elif with_k and k_out_choice == "new":
        k_out_spec = new(heads_k)

    specs = [s for s in (q_spec, k_spec, q_out_spec, k_out_spec) if s is not None]
    size = max(extent(s, batch, seq, d) for s in specs) + data.draw(st.integers(0, 2))
    base = random_buffer(lib, dtype, size, rng)
    q = as_view(base, lib, q_spec, layout, batch, seq, d)
    k = (q if k_is_q else as_view(base, lib, k_spec, layout, batch, seq, d)) if with_k else None
    q_out = None
    if q_out_choice == "q itself":
        q_out = q
    elif q_out_spec is not None:
        q_out = as_view(base, lib, q_out_spec, layout, batch, seq, d)
    k_out = None
    if with_k and k_out_choice == "k itself":
        k_out = k
    elif k_out_spec is not None:
        k_out = as_view(base, lib, k_out_spec, layout, batch, seq, d)
    positions = rng.integers(0, 4096, (batch, seq) if len(layout) == 4 else (seq,))

    # The truth: every pair the rule constrains, with the names the caller may see for each tensor
    # (an output rotated in place is its input, and may be reported as either).
    q_target, k_target = (q if q_out is None else q_out), (k if k_out is None else k_out)
    q_target_names = ("q", "q_out") if q_out is None or q_out is q else ("q_out",)
    k_target_names = ("k", "k_out") if k_out is None or k_out is k else ("k_out",)
    pairs = [(q_target, q, q_target_names, ("q",), True)]
    if with_k:
        pairs += [
            (k_target, k, k_target_names, ("k",), True),
            (q_target, k, q_target_names, ("k",), False),
            (k_target, q, k_target_names, ("q",), False),
            (k_target, q_target, k_target_names, q_target_names, False),
        ]
    clashes = [
        (names_o, names_i)
        for out, inp, names_o, names_i, own in pairs
        if not (own and same_elements(out, inp)) and shared_bytes(out, inp)
    ]

    before = buffer_bytes(base)
    inputs = [canonical(t, layout) for t in (q, k) if t is not None]
    try:
        rope.rotate(q, positions, k=k, q_out=q_out, k_out=k_out, layout=layout)
    except rotary.Error as error:
        RUNS["overlap"]["refused"] += 1
        assert np.array_equal(buffer_bytes(base), before), f"the buffer changed although rotate raised: {error}"
        assert clashes, f"rotate refused disjoint views: {error}"
        message = str(error)
        assert any(
            any(mentions(message, a) for a in names_o) and any(mentions(message, b) for b in names_i)
            for names_o, names_i in clashes
        ), f"error {message!r} names neither of the pairs {clashes}"
        return
    assert not clashes, f"rotate accepted overlapping views: {clashes}"
    RUNS["overlap"]["passed"] += 1
    tensors = [t for t in (q, k, q_out, k_out) if t is not None]
    if any(ranges_meet(a, b) and not same_elements(a, b) for i, a in enumerate(tensors) for b in tensors[:i]):
        RUNS["overlap"]["interleaved"] += 1
    token_shape = (batch, seq) if len(layout) == 4 else (seq,)
    per_axis = positions_per_axis(positions, token_shape, rope.num_axes)
    cos, sin = reference_cos_sin(rope, config, "hf", positions, per_axis, False)
    # inputs leaves out a missing k, whose target is None: zip stops after q then.
    for x, target in zip(inputs, (q_target, k_target), strict=False):
        ref = rotate_reference(x, cos, sin, rope.rotary_dim, rope.layout)
        bound, scale = rotation_bound(x, cos, sin, rope.rotary_dim, rope.layout, dtype, ref)
        check_close("overlap", canonical(target, layout), ref, bound, scale, dtype, f"{name} {layout}")
    assert_only_written(base, before, [t for t in (q_target, k_target) if t is not None])


# ---- property 3: the KV cache ------------------------------------------------------------------------------


def cache_tensor(lib, dtype, shape, rng):
    return random_buffer(lib, dtype, int(np.prod(shape)), rng).reshape(shape)


def storage(x):
    """x's elements as the cache returns them: float32/float16 as they are, bfloat16 widened to float32."""
    if is_torch(x):
        return x.detach().float().numpy() if x.dtype == torch.bfloat16 else x.detach().numpy()
    return x


def attention_reference(q, keys, vals, first, window, scale, group):
    """Causal (optionally windowed) softmax attention in float64: query i sits at cache index
    first + i and sees keys (first + i - window, first + i]; query head h reads KV head h // group."""
    n, length = q.shape[0], keys.shape[0]
    kv = np.repeat(keys, group, axis=1), np.repeat(vals, group, axis=1)  # (length, q_heads, d)
    scores = np.einsum("ihd,jhd->ihj", q, kv[0]) * scale
    index = first + np.arange(n)[:, None]
    j = np.arange(length)[None, :]
    visible = (j <= index) & ((window == 0) | (j > index - window))  # (n, length)
    scores = np.where(visible[:, None, :], scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return np.einsum("ihj,jhd->ihd", weights, kv[1]), visible


def attention_bound(q_hat, q_ref, keys_hat, keys_ref, vals, visible, scale, group):
    """How far rotary's float32 attention of the stored q and keys may be from the float64
    attention of the unrounded reference q and keys, per output element.

    A change of at most D in every score moves each softmax weight by a factor within
    [e^-2D, e^2D], so the output moves by at most (e^2D - 1) max|v|. D is the score change that
    the storage rounding of q and the keys causes, |q^.k^ - q.k| <= sum |q^ - q||k^| + |q||k^ - k|,
    plus float32 rounding of the scores (dot product: gamma_{d+2}, scale included; the subtraction
    of the running maximum: 2u max|s|). The float32 exp (within 1 ulp), the running rescaling and
    the sums of weights and weighted values add at most 2 gamma_{2n+6} max|v| for n keys.
    """
    d = q_hat.shape[-1]
    k_hat, k_ref = np.repeat(keys_hat, group, axis=1), np.repeat(keys_ref, group, axis=1)
    v = np.abs(np.repeat(vals, group, axis=1))
    storage_change = (
        np.einsum("ihd,jhd->ihj", np.abs(q_hat - q_ref), np.abs(k_hat))
        + np.einsum("ihd,jhd->ihj", np.abs(q_ref), np.abs(k_hat - k_ref))
    ) * scale
    magnitude = np.einsum("ihd,jhd->ihj", np.abs(q_hat), np.abs(k_hat)) * scale
    change = storage_change + gamma(d + 2) * magnitude + 2 * U32 * magnitude.max(axis=-1, keepdims=True)
    mask = visible[:, None, :]
    delta = np.where(mask, change, 0).max(axis=-1)  # (n, q_heads)
    v_max = np.where(mask[..., None], v.transpose(1, 0, 2)[None], 0).max(axis=(2, 3))  # (n, q_heads)
    keys_seen = visible.sum(axis=-1)[:, None]
    bound = (np.expm1(2 * delta) + 2 * gamma(2 * keys_seen + 6)) * v_max
    return np.broadcast_to(bound[..., None], q_hat.shape)


def pool_snapshot(cache):
    everything = rotary.BlockTable(list(range(cache.num_blocks)), cache.num_blocks * cache.block_size)
    return cache.keys(everything).tobytes(), cache.values(everything).tobytes()


@_settings("kv_cache")
@given(data=st.data())
def test_kv_cache_equals_the_dense_reference(data):
    """Prefill then decode steps into a contiguous or paged cache (random distinct blocks of a
    pool), with bad appends mixed in. The cached keys equal the float64 reference rotation at
    their positions rounded to the dtype, the values are bit-equal, attention equals a float64
    causal softmax over the reference keys and values, and every bad append raises rotary.Error
    leaving the whole pool, sequence.length and q unchanged."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    name = data.draw(
        st.sampled_from(["default", "interleaved", "partial", "yarn", "llama3", "longrope", "dynamic", "mrope"])
    )
    d = data.draw(st.sampled_from([h for h in (4, 8, 16) if h in HEAD_DIMS[name]]))
    angle_mode = data.draw(st.sampled_from(["hf", "hf", "exact"]))
    rope, config = make_rope(name, d, angle_mode, 0), make_config(name, d)
    lib, dtype = data.draw(
        st.sampled_from(
            [("numpy", "float32"), ("numpy", "float16")] + ([("torch", "bfloat16")] if torch is not None else [])
        )
    )
    kv_heads, group = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    steps = [data.draw(st.integers(1, 6))] + data.draw(st.lists(st.integers(1, 2), max_size=4))
    total = sum(steps)
    paged = data.draw(st.booleans())
    if paged:
        block_size = data.draw(st.integers(1, 4))
        needed = -(-total // block_size)
        spare = data.draw(st.integers(0, 3))
        num_blocks = needed + spare
        blocks = [int(b) for b in rng.permutation(num_blocks)]
        cache = rotary.KvCache.paged(num_blocks, block_size, kv_heads, d, dtype)
        sequence = rotary.BlockTable(blocks[:needed])
        neighbour = rotary.BlockTable(blocks[needed:]) if spare else None
    else:
        cache = rotary.KvCache.contiguous(total + data.draw(st.integers(0, 2)), kv_heads, d, dtype)
        sequence, neighbour = rotary.BlockTable([0]), None
    faults = ["too many tokens", "q is k", "k dtype", "v heads"] + (
        ["repeated block", "block outside the pool"] if paged else []
    )
    bad_step = data.draw(st.sampled_from([None, None] + list(range(len(steps) + 1))))
    bad_kind = data.draw(st.sampled_from(faults))
    start = data.draw(st.sampled_from([0, 0, 7, 3000, 70000]))
    window = data.draw(st.sampled_from([0, 0, 1, 2, 5]))
    scale = 1.0 / math.sqrt(d)

    def tokens(n):
        return cache_tensor(lib, dtype, (n, kv_heads, d), rng)

    def positions_for(first, n):
        p = start + first + np.arange(n)
        if rope.num_axes > 1 and data.draw(st.booleans()):
            p = np.stack([p, p + rng.integers(0, 3, n), p + rng.integers(0, 3, n)])
        return p

    if neighbour is not None:
        n = min(3, cache.capacity(neighbour))
        cache.append(rope, None, tokens(n), tokens(n), np.arange(n), neighbour)
        neighbour_before = cache.keys(neighbour).tobytes(), cache.values(neighbour).tobytes()

    def bad_append():
        """One invalid append; it must change nothing."""
        n = 1
        table = sequence
        q = cache_tensor(lib, dtype, (n, kv_heads * group, d), rng)
        k, v = tokens(n), tokens(n)
        if bad_kind == "too many tokens":
            n = cache.capacity(sequence) - sequence.length + 1
            q, k, v = cache_tensor(lib, dtype, (n, kv_heads * group, d), rng), tokens(n), tokens(n)
        elif bad_kind == "q is k":
            q = k
        elif bad_kind == "k dtype":
            k = k.float() if is_torch(k) else k.astype(np.float16 if dtype == "float32" else np.float32)
        elif bad_kind == "v heads":
            v = cache_tensor(lib, dtype, (n, kv_heads + 1, d), rng)
        else:
            listed = list(sequence.blocks)
            written = sequence.length // cache.block_size  # the block the next token goes to
            if written == len(listed):
                listed.append(listed[-1])
            if bad_kind == "repeated block":
                listed[written] = listed[max(written - 1, 0)] if written else listed[-1]
                if len(set(listed)) == len(listed):
                    listed.append(listed[0])
            else:
                listed[written] = data.draw(st.sampled_from([cache.num_blocks, cache.num_blocks + 5, -1]))
            table = rotary.BlockTable(listed, sequence.length)
        pool, length = pool_snapshot(cache), table.length
        q_before = q.clone() if is_torch(q) else q.copy()
        k_before = k.clone() if is_torch(k) else k.copy()
        with pytest.raises(rotary.Error):
            cache.append(rope, q, k, v, positions_for(sequence.length, n), table)
        RUNS["kv_cache"]["refused"] += 1
        assert pool_snapshot(cache) == pool, f"{bad_kind}: the cache changed"
        assert table.length == length and sequence.length == length, f"{bad_kind}: the length changed"
        assert torch.equal(q, q_before) if is_torch(q) else np.array_equal(q, q_before), f"{bad_kind}: q changed"
        assert torch.equal(k, k_before) if is_torch(k) else np.array_equal(k, k_before), f"{bad_kind}: k changed"

    keys_ref, keys_bound, keys_scale, all_values = [], [], [], []
    for step, n in enumerate(steps):
        if step == bad_step:
            bad_append()
        first = sequence.length
        with_q = data.draw(st.sampled_from([True, True, True, False]))
        q = cache_tensor(lib, dtype, (n, kv_heads * group, d), rng) if with_q else None
        k, v = tokens(n), tokens(n)
        positions = positions_for(first, n)
        q_in, k_in = values(q) if with_q else None, values(k)
        cache.append(rope, q, k, v, positions, sequence)
        assert sequence.length == first + n
        per_axis = positions_per_axis(positions, (n,), rope.num_axes)
        cos, sin = reference_cos_sin(rope, config, angle_mode, positions, per_axis, False)
        k_ref = rotate_reference(k_in, cos, sin, rope.rotary_dim, rope.layout)
        bound, pair_scale = rotation_bound(k_in, cos, sin, rope.rotary_dim, rope.layout, dtype, k_ref)
        keys_ref.append(k_ref)
        keys_bound.append(bound)
        keys_scale.append(pair_scale)
        all_values.append(storage(v))
        if with_q:
            q_ref = rotate_reference(q_in, cos, sin, rope.rotary_dim, rope.layout)
            q_bound, q_scale = rotation_bound(q_in, cos, sin, rope.rotary_dim, rope.layout, dtype, q_ref)
            q_hat = values(q)
            check_close("kv_cache q", q_hat, q_ref, q_bound, q_scale, dtype, f"{name} {angle_mode} rotated q")
            keys_hat = cache.keys(sequence).astype(np.float64)
            keys_so_far = np.concatenate(keys_ref)
            out = rotary.attention(q, cache, sequence, first, sliding_window=window)
            ref, visible = attention_reference(
                q_ref, keys_so_far, np.concatenate(all_values).astype(np.float64), first, window, scale, group
            )
            allowed = attention_bound(
                q_hat,
                q_ref,
                keys_hat,
                keys_so_far,
                np.concatenate(all_values).astype(np.float64),
                visible,
                scale,
                group,
            )
            err = np.abs(out - ref)
            assert np.all(err <= allowed), (
                f"attention: |error| {err.max():.3e} > bound {allowed.reshape(-1)[err.argmax()]:.3e} ({dtype}, {name})"
            )
            worst = WORST.setdefault(("kv_cache attention", dtype), [0.0, None])
            worst[0] = max(worst[0], float((err / np.maximum(allowed, 1e-300)).max()))
    if bad_step == len(steps):
        bad_append()

    RUNS["kv_cache"]["passed"] += 1
    keys = cache.keys(sequence).astype(np.float64)
    check_close(
        "kv_cache keys",
        keys,
        np.concatenate(keys_ref),
        np.concatenate(keys_bound),
        np.concatenate(keys_scale),
        dtype,
        f"{name} {angle_mode} cached keys",
    )
    assert cache.values(sequence).tobytes() == np.concatenate(all_values).tobytes(), "values not bit-equal"
    if neighbour is not None:
        assert (cache.keys(neighbour).tobytes(), cache.values(neighbour).tobytes()) == neighbour_before, (
            "another sequence's blocks changed"
        )
