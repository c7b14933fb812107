"""rotary for PyTorch: the ``torch.ops.rotary`` operators and functions that call them.

:func:`apply_rotary` rotates out of place, differentiably (the backward pass is the transposed
rotation: RoPE is linear, y = R x, so the gradient is R^T g, the rotation by the negated angles,
attention factor included). :func:`apply_rotary_` rotates in place and :func:`rotate_and_cache`
writes rotated keys and values into cache tensors. All three are ``torch.library`` operators with
fake implementations, so ``torch.compile(fullgraph=True)`` traces them without a graph break and
``torch.export`` records them (``torch.ops.rotary.rotate``, ``rotate_inplace``,
``rotate_and_cache``; schemas in ``rotary._torch_ops``). No PyTorch C++ extension is compiled:
tensors reach the core through DLPack, without copies.

The layout is never guessed here: a (batch, heads, seq, head_dim) tensor read as (batch, seq,
heads, head_dim) would be rotated by the wrong positions without any error, so every call names
its ``layout``.
"""

import numpy as np
import torch

from ._errors import invalid
from ._rope import _LAYOUTS, Rope
from ._torch_ops import check_float, rope_key

__all__ = ["apply_rotary", "apply_rotary_", "rotate_and_cache", "rope_key"]

_LAYOUT_WORDS = {
    "shd": "(seq, heads, head_dim)",
    "hsd": "(heads, seq, head_dim)",
    "bshd": "(batch, seq, heads, head_dim)",
    "bhsd": "(batch, heads, seq, head_dim), transformers' order",
}


def _check(x, name):
    if not isinstance(x, torch.Tensor):
        raise invalid(name, f"expected a torch.Tensor, got {type(x).__name__}")
    check_float(x, name)


def _check_layout(q, layout):
    if layout is not None:
        return layout
    choices = _LAYOUTS.get(q.dim())
    if choices is None:
        raise invalid("q", f"expected 3 or 4 dimensions (see layout), got {q.dim()}")
    named = " or ".join(f"{c!r} {_LAYOUT_WORDS[c]}" for c in choices)
    raise invalid(
        "layout",
        f"required for a {q.dim()}-d q of shape {tuple(q.shape)}: give layout={named}. "
        "rotary.torch does not guess: read in the wrong order, heads would be rotated as positions "
        "without any error",
    )


def _positions_tensor(positions):
    """positions as an int32/int64 tensor (array_like of integers accepted)."""
    if isinstance(positions, np.ndarray):
        positions = _numpy_positions(positions)
    elif not isinstance(positions, torch.Tensor):
        positions = torch.as_tensor(positions)  # a list: traced by torch.compile, unlike NumPy
        if positions.numel() == 0:
            positions = positions.long()  # an empty list has no element to make it integral
    if positions.dtype in (torch.int32, torch.int64):
        return positions
    if positions.dtype.is_floating_point or positions.dtype.is_complex or positions.dtype == torch.bool:
        raise invalid(
            "positions", f"expected integers (int32 or int64), got {str(positions.dtype).replace('torch.', '')}"
        )
    return positions.to(torch.int64)


def _numpy_positions(array):
    if array.dtype.kind not in "iu":
        raise invalid("positions", f"expected integers (int32 or int64), got {array.dtype}")
    if array.size and array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise invalid("positions", "values past the int64 range")
    dtype = array.dtype if array.dtype in (np.int32, np.int64) else np.int64
    return torch.from_numpy(np.array(array, dtype=dtype))  # a copy: the array may be read-only


def _operands(q, k, positions, rope, layout):
    if not isinstance(rope, Rope):
        raise invalid("rope", f"expected a rotary.Rope, got {type(rope).__name__}")
    _check(q, "q")
    if k is not None:
        _check(k, "k")
    return _positions_tensor(positions), rope_key(rope), _check_layout(q, layout)


def apply_rotary(q, k, positions, rope, *, layout=None):
    """Rotates q and k out of place, differentiably: ``torch.ops.rotary.rotate``.

    Parameters
    ----------
    q : torch.Tensor, float32 / float16 / bfloat16, CPU (or CUDA with rotary's CUDA backend)
        Shape as ``layout`` says; any strides with a contiguous head_dim.
    k : torch.Tensor or None
        Keys, same batch and seq sizes as q (the head count may differ).
    positions : torch.Tensor or array_like of int
        One position per token, shape (seq,) or (batch, seq) or broadcastable to it; for a
        multi-axis RoPE also one per token and axis, (num_axes, seq) or (num_axes, batch, seq).
    rope : rotary.Rope
    layout : {"shd", "hsd", "bshd", "bhsd"}
        Required: the order of q's dimensions (b: batch, s: sequence, h: heads, d: head_dim).
        transformers' (batch, heads, seq, head_dim) is "bhsd". Without it :class:`rotary.Error`
        says which two orders a tensor of that many dimensions may have.

    Returns
    -------
    q_out : torch.Tensor
        The rotated q (new memory), or ``(q_out, k_out)`` when k is given.

    Notes
    -----
    The backward pass rotates the incoming gradient by the negated angles (the transpose of the
    forward map, attention factor included). rotary computes in float32, so float64 tensors are
    refused rather than silently rounded.
    """
    positions, key, layout = _operands(q, k, positions, rope, layout)
    q_out, k_out = torch.ops.rotary.rotate(q, k, positions, key, layout)
    return q_out if k is None else (q_out, k_out)


def apply_rotary_(q, k, positions, rope, *, layout=None):
    """Rotates q and k in place: ``torch.ops.rotary.rotate_inplace``. Not differentiable (use
    :func:`apply_rotary`); arguments as there. Returns None."""
    positions, key, layout = _operands(q, k, positions, rope, layout)
    torch.ops.rotary.rotate_inplace(q, k, positions, key, layout)


def rotate_and_cache(k, v, positions, slots, key_cache, value_cache, rope):
    """Rotates k by its positions into ``key_cache`` and copies v into ``value_cache``:
    ``torch.ops.rotary.rotate_and_cache``.

    Parameters
    ----------
    k, v : torch.Tensor (tokens, kv_heads, head_dim)
        The new tokens' keys and values, in the caches' dtypes.
    positions : torch.Tensor or array_like of int, (tokens,) (or (num_axes, tokens) for M-RoPE)
    slots : torch.Tensor of int32 / int64, (tokens,)
        The cache row of each token, distinct: in a paged cache (num_blocks, block_size, kv_heads,
        head_dim), ``block * block_size + offset``; in a contiguous one (capacity, kv_heads,
        head_dim), the token's index.
    key_cache, value_cache : torch.Tensor (..., kv_heads, head_dim), contiguous, one shape
        Written at the slots' rows, nowhere else.
    rope : rotary.Rope
    """
    if not isinstance(rope, Rope):
        raise invalid("rope", f"expected a rotary.Rope, got {type(rope).__name__}")
    for x, name in ((k, "k"), (v, "v"), (key_cache, "key_cache"), (value_cache, "value_cache")):
        _check(x, name)
    if not isinstance(slots, torch.Tensor):
        raise invalid("slots", f"expected a torch.Tensor of int32 or int64, got {type(slots).__name__}")
    positions = _positions_tensor(positions)
    torch.ops.rotary.rotate_and_cache(k, v, positions, slots, key_cache, value_cache, rope_key(rope))
