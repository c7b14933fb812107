"""Meta's Llama reference RoPE (``precompute_freqs_cis`` / ``apply_rotary_emb``), backed by rotary.

Same signatures and results as the reference code: ``freqs_cis`` is a complex64 table of shape
(end, dim / 2) whose row p holds exp(i p theta_j), and ``apply_rotary_emb`` multiplies the
interleaved pairs (2j, 2j + 1) of q and k, seen as complex numbers, by the rows of a table in
float32, returning q and k in their own dtype.

``precompute_freqs_cis`` builds its table with rotary (theta_j in float32 as PyTorch computes it,
float32 angle p * theta_j, correctly rounded cos/sin). ``apply_rotary_emb`` given rows of that table
rotates through rotary's kernels (differentiably); given any other complex table it computes the
reference formula itself.
"""

import numpy as np
import torch

from .._errors import invalid
from .._limits import MAX_TABLE_POSITIONS, check_size, integer
from .._rope import Rope
from ..torch import apply_rotary
from . import _tables

__all__ = ["apply_rotary_emb", "precompute_freqs_cis"]

# Llama 3.1's frequency smoothing as Meta's reference code fixes it (apply_scaling): factor 8,
# low_freq_factor 1, high_freq_factor 4, original context 8192.
_LLAMA31_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


def precompute_freqs_cis(dim, end, theta=10000.0, use_scaled=False, *, scale_factor=None):
    """The complex table exp(i p theta_j) for positions p < end, as Meta's reference code builds it.

    Parameters
    ----------
    dim : int
        The rotated size (head_dim); even.
    end : int
        The number of positions (rows).
    theta : float
        The base: theta_j = theta^(-2j / dim).
    use_scaled : bool
        Llama 3.1's frequency smoothing (factor 8, bands 1 and 4, original context 8192).
    scale_factor : float, optional
        With use_scaled: another factor than 8 (Llama 3.2's small models use 32).

    Returns
    -------
    torch.Tensor, complex64, shape (end, dim // 2)
    """
    dim, end = integer(dim, "dim"), integer(end, "end")
    if dim <= 0 or dim % 2:
        raise invalid("dim", f"expected a positive even size, got {dim}")
    if end < 0:
        raise invalid("end", f"expected >= 0, got {end}")
    # Before np.arange(end): the table's rows are bounded like every cos/sin table's.
    check_size(
        "end",
        f"{end} positions",
        end * (dim // 2) * 8,
        f"a complex64 table ({dim // 2} pairs x 8 bytes each)",
        end,
        (MAX_TABLE_POSITIONS, "positions", "kMaxTablePositions"),
    )
    config = {
        "head_dim": dim,
        "rope_theta": float(theta),
        "rope_interleave": True,
        "max_position_embeddings": max(end, 1),
    }
    if use_scaled:
        config["rope_scaling"] = dict(_LLAMA31_SCALING, factor=float(scale_factor or 8.0))
    rope = Rope(config)
    cos, sin = rope.cos_sin(np.arange(end, dtype=np.int64))
    table = torch.complex(torch.from_numpy(cos), torch.from_numpy(sin))
    _tables.remember_storage(table, rope)
    return table


def _reference(x, freqs_cis):
    # (a + ib)(c + is) on the interleaved pairs, in float32, as the reference code computes it.
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    c, s = freqs_cis.real, freqs_cis.imag
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2).type_as(x)


def _broadcast_table(freqs_cis, x):
    # Meta's reshape_for_broadcast: (seq, dim / 2) against (batch, seq, heads, dim); a table with a
    # leading batch dimension (batch, seq, dim / 2), as transformers' Llama 4 passes, also works.
    if freqs_cis.ndim == 2:
        if tuple(freqs_cis.shape) != (x.shape[1], x.shape[-1] // 2):
            raise invalid(
                "freqs_cis",
                f"expected shape {(x.shape[1], x.shape[-1] // 2)} (seq, head_dim / 2), got {tuple(freqs_cis.shape)}",
            )
        return freqs_cis[None, :, None, :]
    if freqs_cis.ndim == 3:
        return freqs_cis[:, :, None, :]
    raise invalid("freqs_cis", f"expected 2 or 3 dimensions, got {freqs_cis.ndim}")


def apply_rotary_emb(xq, xk, freqs_cis):
    """Rotates q and k by a ``freqs_cis`` table, as Meta's reference ``apply_rotary_emb``.

    Parameters
    ----------
    xq, xk : torch.Tensor, shape (batch, seq, heads, head_dim)
        Queries and keys (the head counts may differ).
    freqs_cis : torch.Tensor, complex, shape (seq, head_dim / 2) or (batch, seq, head_dim / 2)
        Rows of :func:`precompute_freqs_cis` (rotary's kernels), or any complex table (the reference
        formula, computed here).

    Returns
    -------
    xq_out, xk_out : torch.Tensor
        In xq's and xk's dtypes; computed in float32.
    """
    for name, x in (("xq", xq), ("xk", xk)):
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise invalid(name, "expected a 4-d torch.Tensor (batch, seq, heads, head_dim)")
    if not torch.is_complex(freqs_cis):
        raise invalid("freqs_cis", f"expected a complex tensor, got {freqs_cis.dtype}")
    found = _tables.lookup_rows(freqs_cis) if freqs_cis.ndim == 2 else None
    fast_dtypes = (torch.float32, torch.float16, torch.bfloat16)
    if (
        found is not None
        and xq.dtype in fast_dtypes
        and xk.dtype in fast_dtypes
        and xq.device.type == "cpu"
        and xq.shape[1] == freqs_cis.shape[0]
        and xq.shape[-1] == found[0].head_dim
        and xk.shape[-1] == found[0].head_dim
    ):
        rope, positions = found
        return apply_rotary(xq, xk, positions, rope, layout="bshd")
    table = _broadcast_table(freqs_cis, xq)
    return _reference(xq, table), _reference(xk, table)
