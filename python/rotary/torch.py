"""PyTorch autograd for rotary: a differentiable, out-of-place rotation.

RoPE is linear in q and k: y = R x with R the block rotation scaled by the attention factor, so the
gradient is R^T g, which is the rotation by the negated angles (``Rope.rotate(..., inverse=True)``).
No PyTorch C++ extension is compiled: tensors reach the core through DLPack, without copies.
"""

import torch

from ._errors import invalid
from ._rope import Rope, _as_positions, _layout_and_tokens

__all__ = ["apply_rotary"]

_SUPPORTED = (torch.float32, torch.float16, torch.bfloat16)


def _check(x, name):
    if not isinstance(x, torch.Tensor):
        raise invalid(name, f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _SUPPORTED:
        raise invalid(
            name + ".dtype",
            f"expected float32, float16 or bfloat16, got {str(x.dtype).replace('torch.', '')} "
            "(rotary computes in float32 and stores f32/f16/bf16 only)",
        )


def _rotate_out_of_place(rope, q, k, positions, layout, inverse):
    q_out = torch.empty_like(q)
    k_out = None if k is None else torch.empty_like(k)
    rope.rotate(
        q.detach(),
        positions,
        None if k is None else k.detach(),
        q_out=q_out,
        k_out=k_out,
        inverse=inverse,
        layout=layout,
    )
    return q_out, k_out


class _Rotate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rope, positions, layout, q, k):
        ctx.rope, ctx.positions, ctx.layout = rope, positions, layout
        ctx.has_k = k is not None
        q_out, k_out = _rotate_out_of_place(rope, q, k, positions, layout, inverse=False)
        return (q_out, k_out) if ctx.has_k else q_out

    @staticmethod
    def backward(ctx, *grads):
        # Incoming gradients may be expanded views (stride 0); contiguous() makes them addressable.
        grad_q = grads[0].contiguous()
        grad_k = grads[1].contiguous() if ctx.has_k else None
        gq, gk = _rotate_out_of_place(ctx.rope, grad_q, grad_k, ctx.positions, ctx.layout, inverse=True)
        return None, None, None, gq, gk


def apply_rotary(q, k, positions, rope, *, layout=None):
    """Rotates q and k out of place, differentiably.

    Parameters
    ----------
    q : torch.Tensor, float32 / float16 / bfloat16, CPU
        Shape (seq, heads, head_dim) or (batch, seq, heads, head_dim), or as ``layout`` says;
        any strides with a contiguous head_dim.
    k : torch.Tensor or None
        Keys, same batch and seq sizes as q (the head count may differ).
    positions : torch.Tensor or array_like of int
        One position per token, shape (seq,) or (batch, seq) or broadcastable to it; for a
        multi-axis RoPE also one per token and axis, (num_axes, seq) or (num_axes, batch, seq).
    rope : rotary.Rope
    layout : {"shd", "hsd", "bshd", "bhsd"}, optional
        As in :meth:`rotary.Rope.rotate`; transformers' (batch, heads, seq, head_dim) is "bhsd".

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
    if not isinstance(rope, Rope):
        raise invalid("rope", f"expected a rotary.Rope, got {type(rope).__name__}")
    _check(q, "q")
    if k is not None:
        _check(k, "k")
    layout, token_shape = _layout_and_tokens(q, layout)
    # Converted once here, reused by the backward pass.
    flat, axes = _as_positions(positions, token_shape, rope.num_axes)
    positions = flat.reshape(((axes,) if axes > 1 else ()) + token_shape)
    return _Rotate.apply(rope, positions, layout, q, k)
