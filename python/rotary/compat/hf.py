"""transformers' RoPE (``apply_rotary_pos_emb`` and a ``RotaryEmbedding`` module), backed by rotary.

``apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1)`` computes exactly
transformers' formula ``q * cos + rotate_half(q) * sin`` for any cos/sin it is given (half-split
pairs (j, j + width/2) within the first ``width`` channels, where width is cos's last dimension;
channels past it pass through, as GPT-NeoX's and Phi's versions do).

``RotaryEmbedding(config)`` is the cos/sin producer: ``module(x, position_ids)`` returns
transformers' duplicated tables ``cat(c, c)`` (attention factor included) in x's dtype, with
rotary's frequencies for the call (dynamic NTK and LongRoPE per call). Given its own tables,
``apply_rotary_pos_emb`` rotates through rotary's kernels (differentiably). In float32 the result is
bit-identical to transformers' formula on those tables; in float16/bfloat16 rotary rounds once from
float32, where transformers rounds cos/sin and every product.
"""

import numpy as np
import torch

from .._errors import invalid
from .._rope import Rope, _as_positions
from ..torch import apply_rotary
from . import _tables

__all__ = ["RotaryEmbedding", "apply_rotary_pos_emb", "rotate_half"]


def rotate_half(x):
    """cat(-x2, x1) for the halves x1, x2 of the last dimension (transformers' rotate_half)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RotaryEmbedding(torch.nn.Module):
    """cos/sin tables from rotary, shaped as transformers' RotaryEmbedding modules return them.

    Parameters
    ----------
    config : dict, transformers config, str, RopeConfig or rotary.Rope
        Anything :class:`rotary.Rope` accepts (a model's config.json, dict or path).
    layer_type : str, optional
        For configs with a RoPE per layer type.
    """

    def __init__(self, config, layer_type=None):
        super().__init__()
        self.rope = config if isinstance(config, Rope) else Rope(config, layer_type=layer_type)

    def forward(self, x, position_ids):
        """(cos, sin), each (batch, seq, rotary_dim) in x's dtype, for position_ids (batch, seq)."""
        positions = (
            position_ids.detach().cpu().numpy() if isinstance(position_ids, torch.Tensor) else np.asarray(position_ids)
        )
        cos, sin = self.rope.cos_sin(positions)
        cos = torch.from_numpy(np.concatenate([cos, cos], axis=-1)).to(dtype=x.dtype, device=x.device)
        sin = torch.from_numpy(np.concatenate([sin, sin], axis=-1)).to(dtype=x.dtype, device=x.device)
        payload = (self.rope, positions, x.dtype)
        _tables.remember_object(cos, payload)
        _tables.remember_object(sin, payload)
        return cos, sin


def _fast(q, k, cos, sin, unsqueeze_dim):
    found_cos, found_sin = _tables.lookup_object(cos), _tables.lookup_object(sin)
    if found_cos is None or found_cos is not found_sin:
        return None
    rope, positions, dtype = found_cos
    ok_dtypes = (torch.float32, torch.float16, torch.bfloat16)
    # rotary uses its float32 cos/sin: the same values as the tables only when they stayed float32.
    if not (
        q.dtype in ok_dtypes
        and k.dtype in ok_dtypes
        and q.ndim == 4
        and k.ndim == 4
        and q.device.type == "cpu"
        and k.device.type == "cpu"
        and q.shape[-1] == rope.head_dim
        and k.shape[-1] == rope.head_dim
    ):
        return None
    if dtype == torch.float32 and q.dtype != torch.float32:
        return None  # float32 tables on 16-bit q: transformers promotes to float32; keep its formula
    layout = "bhsd" if unsqueeze_dim == 1 else "bshd"
    batch, seq = q.shape[0], q.shape[2 if unsqueeze_dim == 1 else 1]
    if positions.shape != (batch, seq) and positions.shape != (1, seq):
        return None
    return apply_rotary(q, k, _as_positions(positions, (batch, seq))[0].reshape(batch, seq), rope, layout=layout)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):
    """transformers' ``apply_rotary_pos_emb``: ``q * cos + rotate_half(q) * sin`` (and k).

    Parameters
    ----------
    q, k : torch.Tensor
        (batch, heads, seq, head_dim) with ``unsqueeze_dim=1``, (batch, seq, heads, head_dim) with 2.
    cos, sin : torch.Tensor, (batch, seq, width)
        Any values. When ``width < head_dim`` only the first width channels rotate (GPT-NeoX/Phi
        partial rotary). Tables from :class:`RotaryEmbedding` go through rotary's kernels.
    position_ids : ignored
        Kept for the signature of older transformers versions.
    unsqueeze_dim : int
        The dimension of q/k that cos/sin are broadcast over (the heads).

    Returns
    -------
    q_embed, k_embed : torch.Tensor
    """
    del position_ids  # transformers ignores it too
    fast = _fast(q, k, cos, sin, unsqueeze_dim)
    if fast is not None:
        return fast
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    width = cos.shape[-1]
    if width > q.shape[-1]:
        raise invalid("cos", f"has {width} columns, more than head_dim {q.shape[-1]}")
    if width == q.shape[-1]:
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    q_rot, q_pass = q[..., :width], q[..., width:]
    k_rot, k_pass = k[..., :width], k[..., width:]
    q_embed = q_rot * cos + rotate_half(q_rot) * sin
    k_embed = k_rot * cos + rotate_half(k_rot) * sin
    return torch.cat([q_embed, q_pass], dim=-1), torch.cat([k_embed, k_pass], dim=-1)
