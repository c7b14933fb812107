"""rotary's PyTorch operators: ``torch.ops.rotary.*``, registered with ``torch.library``.

Five operators, each with a fake (meta) implementation so that ``torch.compile`` and
``torch.export`` trace through them without running rotary, and one kernel registered for the CPU
and CUDA dispatch keys alike: it calls :meth:`rotary.Rope.rotate`, which sends CUDA tensors to the
CUDA backend (when the extension was built with it) and everything else to the CPU core, so both
devices share one code path::

    rotary::rotate(Tensor q, Tensor? k, Tensor positions, str rope, str layout, bool inverse=False)
        -> (Tensor, Tensor?)
    rotary::rotate_inplace(Tensor(a!) q, Tensor(b!)? k, Tensor positions, str rope, str layout,
        bool inverse=False) -> ()
    rotary::rotate_and_cache(Tensor k, Tensor v, Tensor positions, Tensor slots,
        Tensor(a!) key_cache, Tensor(b!) value_cache, str rope) -> ()
    rotary::rms_norm_rotate_inplace(Tensor(a!) q, Tensor(b!)? k, Tensor positions, Tensor q_weight,
        Tensor? k_weight, str rope, str layout, float eps, bool unit_offset=False,
        str scope='head', bool round_before_weight=False) -> ()
    rotary::rms_norm_rotate(Tensor q, Tensor? k, Tensor positions, Tensor q_weight, Tensor? k_weight,
        str rope, str layout, float eps, ...) -> (Tensor, Tensor?)

``rms_norm_rotate_inplace`` and ``rms_norm_rotate`` are :func:`rotary.rms_norm_rotate` (CPU only):
q and k normalised with the weights and the norm form given (see :class:`rotary.RmsNorm`; one eps
for both), then rotated, in place or into new tensors. ``rms_norm_rotate`` is differentiable in q,
k and the weights: the rotation's transpose, then the RMSNorm gradient in float32 (the roundings
to the storage dtype pass gradients through, as torch's own 16-bit norms do).

``rotate`` is differentiable: its backward pass is ``rotate`` with ``inverse`` flipped (the
transposed rotation, attention factor included).

No operator for the reference attention: :func:`rotary.attention` reads a :class:`rotary.KvCache`,
whose memory the C++ core owns and which no operator schema can carry; over cache tensors,
``torch.nn.functional.scaled_dot_product_attention`` already compiles and exports natively.
"""

import itertools
import json
import weakref

import numpy as np
import torch

from . import _rotary
from ._errors import invalid
from ._rope import Rope, _layout_and_tokens

if not hasattr(torch.library, "register_autograd"):
    raise ImportError(
        f"rotary.torch needs torch 2.4 or later (torch.library.register_fake and register_autograd); "
        f"this is torch {torch.__version__}"
    )

# Why the rotation travels as a string: an operator's arguments can only be tensors, numbers,
# strings and lists of them, and an exported program must carry everything that decides its
# values. The string is a JSON object with the config's canonical JSON (rotary._rotary.config_to_json,
# which config_from_json reads back to the same fields) and the Rope's options; a Rope built with
# its own frequencies (inv_freq=) carries them too. Each distinct string maps to one Rope, built
# once: the caller's own Rope when it is seen first, else rebuilt from the string (a program loaded
# from a file). Those Ropes live as long as the process.
# A config that config_to_json cannot write (a vision tower's axial RoPE, ...) gets a string that
# only names it within this process: such a program cannot be run elsewhere, and says so.
_KEYS = weakref.WeakKeyDictionary()  # Rope -> its string
_ROPES = {}  # string -> Rope
_LOCAL_IDS = itertools.count()

_FLOATS = (torch.float32, torch.float16, torch.bfloat16)
_POSITION_DTYPES = (torch.int32, torch.int64)


@torch.compiler.assume_constant_result
def rope_key(rope):
    """The string that names ``rope`` to the ``torch.ops.rotary`` operators.

    Parameters
    ----------
    rope : rotary.Rope

    Returns
    -------
    str
        A JSON object: the config's canonical JSON and the Rope's options. The same string always
        means the same rotation. Under ``torch.compile`` it is a constant of the graph, guarded on
        the Rope object.
    """
    if not isinstance(rope, Rope):
        raise invalid("rope", f"expected a rotary.Rope, got {type(rope).__name__}")
    key = _KEYS.get(rope)
    if key is None:
        key = _describe(rope)
        _KEYS[rope] = key
        _ROPES.setdefault(key, rope)
    return key


def rope_for(key):
    """The Rope a string from :func:`rope_key` names: built once per distinct string."""
    rope = _ROPES.get(key)
    if rope is None:
        fields = _parse_key(key)
        if "process_local" in fields:
            raise invalid(
                "rope",
                f"{key!r} names a Rope of another process: its config cannot be written as a "
                "config.json (rotary._rotary.config_to_json), so a program traced with it only runs "
                "in the process that traced it",
            )
        rope = _ROPES.setdefault(key, _build(fields))
    return rope


def _describe(rope):
    inner = rope._rope
    fields = {"angle_mode": rope.angle_mode, "cache_positions": inner.cache_positions, "max_threads": inner.max_threads}
    if inner.fixed_frequencies:
        # Exact: each float32 frequency is a Python float, which JSON writes back and forth unchanged.
        fields["inv_freq"] = [float(f) for f in rope.inv_freq]
        fields["attention_factor"] = rope.attention_factor
    try:
        fields["config"] = json.loads(_rotary.config_to_json(rope.config))
    except _rotary.Error as error:
        return _local_key(rope, str(error))
    if not _same_rotation(_build(dict(fields, cache_positions=0)), rope):
        return _local_key(rope, "its config.json reads back to other frequencies")
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _local_key(rope, reason):
    return json.dumps({"process_local": next(_LOCAL_IDS), "config": repr(rope.config), "reason": reason})


def _parse_key(key):
    try:
        fields = json.loads(key)
    except ValueError:
        fields = None
    if not isinstance(fields, dict) or not ("config" in fields and "angle_mode" in fields or "process_local" in fields):
        raise invalid("rope", f"expected a string from rotary.torch.rope_key(rope), got {key!r}")
    return fields


def _build(fields):
    inv_freq = fields.get("inv_freq")
    return Rope(
        _rotary.config_from_json(json.dumps(fields["config"])),
        angle_mode=fields["angle_mode"],
        cache_positions=fields.get("cache_positions", 0),
        inv_freq=None if inv_freq is None else np.array(inv_freq, dtype=np.float32),
        attention_factor=fields.get("attention_factor"),
        max_threads=fields.get("max_threads", 0),
    )


def _same_rotation(a, b):
    """Whether two Ropes compute the same values, as far as their frequencies and config show."""
    same = (
        repr(a.config) == repr(b.config)
        and a.angle_mode == b.angle_mode
        and a.attention_factor == b.attention_factor
        and a._rope.length_dependent == b._rope.length_dependent
    )
    return same and np.array_equal(a.inv_freq, b.inv_freq)


# --- shape checks for the fake implementations (the real kernels check everything themselves) ---


def check_float(x, name):
    """x's dtype is one rotary stores (float32, float16, bfloat16)."""
    if x.dtype not in _FLOATS:
        raise invalid(
            name + ".dtype",
            f"expected float32, float16 or bfloat16, got {str(x.dtype).replace('torch.', '')} "
            "(rotary computes in float32 and stores f32/f16/bf16 only)",
        )


def _token_shape(x, layout, name):
    # The operators always pass a layout, so rotary.Rope.rotate's default never applies here.
    return _layout_and_tokens(x, layout, name)[1]


def _check_head_dim(x, rope, name):
    if x.shape[-1] != rope.head_dim:
        raise invalid(name, f"expected head_dim {rope.head_dim} (the last dimension), got {x.shape[-1]}")


def _check_positions(positions, token_shape, num_axes):
    """As rotary.Rope.rotate reads positions: one per token, or one per token and axis, broadcast."""
    if positions.dtype not in _POSITION_DTYPES:
        raise invalid("positions", f"expected int32 or int64, got {str(positions.dtype).replace('torch.', '')}")
    shape, target = tuple(positions.shape), tuple(token_shape)
    if num_axes > 1 and len(shape) == len(target) + 1 and shape[0] == num_axes:
        target = (num_axes,) + target
    # Right-aligned, each size 1 or the token dimension's, as numpy broadcasting reads it.
    fits = len(shape) <= len(target) and all(shape[-i] in (1, target[-i]) for i in range(1, len(shape) + 1))
    if not fits:
        raise invalid("positions", f"expected shape {target} or one that broadcasts to it, got {shape}")


def _check_rotate(q, k, positions, key, layout):
    rope = rope_for(key)
    check_float(q, "q")
    tokens = _token_shape(q, layout, "q")
    _check_head_dim(q, rope, "q")
    if k is not None:
        check_float(k, "k")
        if k.dim() != q.dim() or _token_shape(k, layout, "k") != tokens:
            raise invalid("k", f"expected the batch and seq sizes of q, {tokens}, in layout {layout!r}")
        _check_head_dim(k, rope, "k")
    _check_positions(positions, tokens, rope.num_axes)


# --- rotary::rotate ---

torch.library.define(
    "rotary::rotate",
    "(Tensor q, Tensor? k, Tensor positions, str rope, str layout, bool inverse=False) -> (Tensor, Tensor?)",
    tags=(torch.Tag.pt2_compliant_tag,),
)


@torch.library.impl("rotary::rotate", ("cpu", "cuda"))
def _rotate(q, k, positions, rope, layout, inverse=False):
    q_out = torch.empty_like(q)
    k_out = None if k is None else torch.empty_like(k)
    rope_for(rope).rotate(q, positions, k, q_out=q_out, k_out=k_out, inverse=inverse, layout=layout)
    return q_out, k_out


@torch.library.register_fake("rotary::rotate")
def _rotate_fake(q, k, positions, rope, layout, inverse=False):
    _check_rotate(q, k, positions, rope, layout)
    return torch.empty_like(q), None if k is None else torch.empty_like(k)


def _rotate_setup(ctx, inputs, output):
    _, k, positions, rope, layout, inverse = inputs
    ctx.save_for_backward(positions)
    ctx.rope, ctx.layout, ctx.inverse, ctx.has_k = rope, layout, inverse, k is not None


def _rotate_backward(ctx, grad_q, grad_k):
    # y = R x is linear, so the gradient is R^T g: the rotation by the negated angles, attention
    # factor included. Incoming gradients may be expanded views (stride 0): contiguous() makes
    # them addressable.
    (positions,) = ctx.saved_tensors
    grad_k = grad_k if ctx.has_k else None
    gq, gk = torch.ops.rotary.rotate(
        grad_q.contiguous(),
        None if grad_k is None else grad_k.contiguous(),
        positions,
        ctx.rope,
        ctx.layout,
        not ctx.inverse,
    )
    return gq, gk, None, None, None, None


torch.library.register_autograd("rotary::rotate", _rotate_backward, setup_context=_rotate_setup)


# --- rotary::rotate_inplace ---

torch.library.define(
    "rotary::rotate_inplace",
    "(Tensor(a!) q, Tensor(b!)? k, Tensor positions, str rope, str layout, bool inverse=False) -> ()",
    tags=(torch.Tag.pt2_compliant_tag,),
)


@torch.library.impl("rotary::rotate_inplace", ("cpu", "cuda"))
def _rotate_inplace(q, k, positions, rope, layout, inverse=False):
    rope_for(rope).rotate(q, positions, k, inverse=inverse, layout=layout)


@torch.library.register_fake("rotary::rotate_inplace")
def _rotate_inplace_fake(q, k, positions, rope, layout, inverse=False):
    _check_rotate(q, k, positions, rope, layout)


# --- rotary::rotate_and_cache ---

torch.library.define(
    "rotary::rotate_and_cache",
    "(Tensor k, Tensor v, Tensor positions, Tensor slots, Tensor(a!) key_cache, Tensor(b!) value_cache, "
    "str rope) -> ()",
    tags=(torch.Tag.pt2_compliant_tag,),
)


def _check_cache_operands(k, v, positions, slots, key_cache, value_cache, key):
    rope = rope_for(key)
    for x, name in ((k, "k"), (v, "v"), (key_cache, "key_cache"), (value_cache, "value_cache")):
        check_float(x, name)
    if k.dim() != 3 or v.shape != k.shape:
        raise invalid(
            "k",
            f"expected k and v of one shape (tokens, kv_heads, head_dim), got {tuple(k.shape)} and {tuple(v.shape)}",
        )
    _check_head_dim(k, rope, "k")
    if value_cache.shape != key_cache.shape:
        raise invalid(
            "value_cache", f"expected the shape of key_cache, {tuple(key_cache.shape)}, got {tuple(value_cache.shape)}"
        )
    for cache, name, source in ((key_cache, "key_cache", k), (value_cache, "value_cache", v)):
        if cache.dim() < 3 or cache.shape[-2:] != k.shape[1:]:
            raise invalid(
                name,
                f"expected (..., kv_heads, head_dim) = (..., {k.shape[1]}, {k.shape[2]}), got {tuple(cache.shape)}",
            )
        if cache.dtype != source.dtype:
            raise invalid(
                name, f"expected the dtype of {'k' if source is k else 'v'}, {source.dtype}, got {cache.dtype}"
            )
        if not cache.is_contiguous():
            raise invalid(name, "expected a contiguous tensor (slots index its rows)")
    if slots.dim() != 1 or slots.shape[0] != k.shape[0] or slots.dtype not in _POSITION_DTYPES:
        raise invalid(
            "slots",
            f"expected int32 or int64 of shape ({k.shape[0]},), one row per token, "
            f"got {slots.dtype} {tuple(slots.shape)}",
        )
    _check_positions(positions, (k.shape[0],), rope.num_axes)


def _check_slots(slots, rows):
    """Every slot a distinct row of the cache: a repeated slot would keep one token of several,
    whichever is written last. On the CPU a rotary.Error; on CUDA an asynchronous device assert
    (reading the slots back would synchronise every call)."""
    ordered = torch.sort(slots).values
    in_range = (ordered[:1] >= 0).all() & (ordered[-1:] < rows).all()
    distinct = (ordered[1:] != ordered[:-1]).all()
    if slots.device.type != "cpu":
        torch._assert_async(in_range & distinct, "rotate_and_cache: slots must be distinct rows of the cache")
    elif not bool(in_range):
        raise invalid(
            "slots", f"expected rows in [0, {rows}) of the cache, got {slots.min().item()}..{slots.max().item()}"
        )
    elif not bool(distinct):
        raise invalid("slots", "expected distinct rows: a repeated slot would keep only one of its tokens")


@torch.library.impl("rotary::rotate_and_cache", ("cpu", "cuda"))
def _rotate_and_cache(k, v, positions, slots, key_cache, value_cache, rope):
    _check_cache_operands(k, v, positions, slots, key_cache, value_cache, rope)
    rows = key_cache.view(-1, *k.shape[1:])
    _check_slots(slots, rows.shape[0])
    rotated = torch.empty_like(k)
    rope_for(rope).rotate(k, positions, q_out=rotated, layout="shd")
    index = slots.long()
    rows.index_copy_(0, index, rotated)
    value_cache.view(-1, *v.shape[1:]).index_copy_(0, index, v)


@torch.library.register_fake("rotary::rotate_and_cache")
def _rotate_and_cache_fake(k, v, positions, slots, key_cache, value_cache, rope):
    _check_cache_operands(k, v, positions, slots, key_cache, value_cache, rope)


# --- rotary::rms_norm_rotate_inplace ---

torch.library.define(
    "rotary::rms_norm_rotate_inplace",
    "(Tensor(a!) q, Tensor(b!)? k, Tensor positions, Tensor q_weight, Tensor? k_weight, str rope, str layout, "
    "float eps, bool unit_offset=False, str scope='head', bool round_before_weight=False) -> ()",
    tags=(torch.Tag.pt2_compliant_tag,),
)


def _check_norm_weight(weight, x, name):
    if weight.dim() != 1 or not weight.is_floating_point():
        raise invalid(name, f"expected a 1-d floating-point tensor, got {weight.dtype} {tuple(weight.shape)}")
    if weight.shape[0] == 0:
        raise invalid(name, "expected at least one value")


def _check_rms_norm_rotate(q, k, positions, q_weight, k_weight, rope, layout, scope):
    _check_rotate(q, k, positions, rope, layout)
    _check_norm_weight(q_weight, q, "q_weight")
    if k is not None:
        if k_weight is None:
            raise invalid("k_weight", "required when k is given")
        _check_norm_weight(k_weight, k, "k_weight")
    if scope not in ("head", "token", "auto"):
        raise invalid("scope", f"expected 'head', 'token' or 'auto', got {scope!r}")


@torch.library.impl("rotary::rms_norm_rotate_inplace", "cpu")
def _rms_norm_rotate_inplace(
    q, k, positions, q_weight, k_weight, rope, layout, eps, unit_offset=False, scope="head", round_before_weight=False
):
    from ._qk_norm import RmsNorm, rms_norm_rotate

    _check_rms_norm_rotate(q, k, positions, q_weight, k_weight, rope, layout, scope)
    form = {"unit_offset": unit_offset, "scope": scope, "round_before_weight": round_before_weight}
    q_norm = RmsNorm(q_weight, eps, **form)
    k_norm = None if k is None else RmsNorm(k_weight, eps, **form)
    rms_norm_rotate(rope_for(rope), q, positions, k, q_norm=q_norm, k_norm=k_norm, layout=layout)


@torch.library.register_fake("rotary::rms_norm_rotate_inplace")
def _rms_norm_rotate_inplace_fake(
    q, k, positions, q_weight, k_weight, rope, layout, eps, unit_offset=False, scope="head", round_before_weight=False
):
    _check_rms_norm_rotate(q, k, positions, q_weight, k_weight, rope, layout, scope)


# --- rotary::rms_norm_rotate ---

torch.library.define(
    "rotary::rms_norm_rotate",
    "(Tensor q, Tensor? k, Tensor positions, Tensor q_weight, Tensor? k_weight, str rope, str layout, "
    "float eps, bool unit_offset=False, str scope='head', bool round_before_weight=False) -> (Tensor, Tensor?)",
    tags=(torch.Tag.pt2_compliant_tag,),
)


@torch.library.impl("rotary::rms_norm_rotate", "cpu")
def _rms_norm_rotate(
    q, k, positions, q_weight, k_weight, rope, layout, eps, unit_offset=False, scope="head", round_before_weight=False
):
    from ._qk_norm import RmsNorm, rms_norm_rotate

    _check_rms_norm_rotate(q, k, positions, q_weight, k_weight, rope, layout, scope)
    form = {"unit_offset": unit_offset, "scope": scope, "round_before_weight": round_before_weight}
    q_out = torch.empty_like(q)
    k_out = None if k is None else torch.empty_like(k)
    rms_norm_rotate(
        rope_for(rope),
        q,
        positions,
        k,
        q_norm=RmsNorm(q_weight, eps, **form),
        k_norm=None if k is None else RmsNorm(k_weight, eps, **form),
        q_out=q_out,
        k_out=k_out,
        layout=layout,
    )
    return q_out, k_out


@torch.library.register_fake("rotary::rms_norm_rotate")
def _rms_norm_rotate_fake(
    q, k, positions, q_weight, k_weight, rope, layout, eps, unit_offset=False, scope="head", round_before_weight=False
):
    _check_rms_norm_rotate(q, k, positions, q_weight, k_weight, rope, layout, scope)
    return torch.empty_like(q), None if k is None else torch.empty_like(k)


def _rms_norm_rotate_setup(ctx, inputs, output):
    q, k, positions, q_weight, k_weight, rope, layout, eps, unit_offset, scope, _ = _with_defaults(inputs)
    ctx.save_for_backward(q, k, positions, q_weight, k_weight)
    ctx.rope, ctx.layout, ctx.eps, ctx.unit_offset, ctx.scope = rope, layout, eps, unit_offset, scope


def _with_defaults(inputs):
    defaults = (False, "head", False)  # unit_offset, scope, round_before_weight
    return tuple(inputs) + defaults[len(inputs) - 8 :]


def _rms_norm_backward(x, weight, grad_y, ctx):
    """Gradients of y = m * x * r (m = weight or 1 + weight, r = rsqrt(mean(x^2) + eps) over each
    group) from the gradient of y, in float32; the roundings to x's dtype pass gradients through."""
    head_dim = x.shape[-1]
    scope = ctx.scope if ctx.scope != "auto" else ("head" if weight.numel() == head_dim else "token")
    shape = [1] * x.dim()
    shape[-1] = head_dim
    dims = (-1,)
    if scope == "token":
        heads = ctx.layout.index("h")
        shape[heads], dims = x.shape[heads], (heads, -1)
    x32, g = x.float(), grad_y.float()
    m = weight.float().view(shape) + (1.0 if ctx.unit_offset else 0.0)
    r = torch.rsqrt(x32.pow(2).mean(dims, keepdim=True) + ctx.eps)
    u = g * m
    grad_x = r * u - x32 * r.pow(3) * (u * x32).mean(dims, keepdim=True)
    kept = [d % x.dim() for d in dims]
    grad_m = (g * x32 * r).sum([d for d in range(x.dim()) if d not in kept], keepdim=True)
    return grad_x.to(x.dtype), grad_m.reshape(-1).to(weight.dtype)


def _rms_norm_rotate_backward(ctx, grad_q, grad_k):
    # out = R(norm(x)): the rotation's transpose first (rotate with inverse flipped), then the norm's
    # gradient.
    q, k, positions, q_weight, k_weight = ctx.saved_tensors
    grad_q = torch.zeros_like(q) if grad_q is None else grad_q
    if k is None:
        grad_k = None
    elif grad_k is None:
        grad_k = torch.zeros_like(k)
    gq, gk = torch.ops.rotary.rotate(
        grad_q.contiguous(),
        None if grad_k is None else grad_k.contiguous(),
        positions,
        ctx.rope,
        ctx.layout,
        True,
    )
    dq, dq_weight = _rms_norm_backward(q, q_weight, gq, ctx)
    dk = dk_weight = None
    if k is not None:
        dk, dk_weight = _rms_norm_backward(k, k_weight, gk, ctx)
    return dq, dk, None, dq_weight, dk_weight, None, None, None, None, None, None


torch.library.register_autograd(
    "rotary::rms_norm_rotate", _rms_norm_rotate_backward, setup_context=_rms_norm_rotate_setup
)
