"""Adapters from the two common RoPE calling conventions to the ``fn(q, k, positions)`` that
:func:`rotary.verify` probes.

- Hugging Face: a cos/sin producer (a ``RotaryEmbedding`` module called as ``module(x,
  position_ids)``, or precomputed ``(cos_table, sin_table)`` indexed by position) and an apply
  function ``apply_rotary_pos_emb(q, k, cos, sin)``.
- Meta (the original Llama code): a complex table ``freqs_cis`` from ``precompute_freqs_cis`` (or a
  producer of it) and ``apply_rotary_emb(xq, xk, freqs_cis)`` on ``(batch, seq, heads, head_dim)``.

Both adapters take q and k as (batch, heads, seq, head_dim) torch tensors, the layout verify uses by
default, and positions of shape (batch, seq).
"""

from ._errors import invalid

__all__ = ["adapt_hf", "adapt_meta"]


def _label(fn):
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return f"{module}.{name}" if module else name


def adapt_hf(apply_rotary_pos_emb, cos_sin, *, unsqueeze_dim=1, rotary_dim=None):
    """``fn(q, k, positions)`` from a Hugging Face style cos/sin producer and apply function.

    Parameters
    ----------
    apply_rotary_pos_emb : callable
        ``apply_rotary_pos_emb(q, k, cos, sin) -> (q, k)``, e.g. transformers'
        ``models.llama.modeling_llama.apply_rotary_pos_emb``.
    cos_sin : callable or tuple of two tensors
        A producer called as ``cos_sin(x, position_ids) -> (cos, sin)`` (a transformers
        ``RotaryEmbedding`` module; ``x`` is q, for its dtype and device), or precomputed tables
        ``(cos_table, sin_table)`` of shape (positions, width) whose rows are gathered by position.
    unsqueeze_dim : {1, 2}
        transformers' argument: 1 when the apply function takes (batch, heads, seq, head_dim), 2 for
        (batch, seq, heads, head_dim) (q and k are transposed for it).
    rotary_dim : int, optional
        Apply to the first ``rotary_dim`` channels only and pass the rest through, as the attention
        modules of Phi, StableLM and GPT-J do around their apply function.

    Returns
    -------
    callable
        ``fn(q, k, positions) -> (q', k')`` for :func:`rotary.verify`.
    """
    if not callable(apply_rotary_pos_emb):
        raise invalid("apply_rotary_pos_emb", f"expected a callable, got {type(apply_rotary_pos_emb).__name__}")
    if unsqueeze_dim not in (1, 2):
        raise invalid("unsqueeze_dim", f"expected 1 or 2, got {unsqueeze_dim!r}")
    if not callable(cos_sin) and not (isinstance(cos_sin, (tuple, list)) and len(cos_sin) == 2):
        raise invalid("cos_sin", "expected a producer cos_sin(x, position_ids) or a (cos_table, sin_table) pair")

    def fn(q, k, positions):
        import torch

        if callable(cos_sin):
            cos, sin = cos_sin(q, positions)
        else:
            cos, sin = cos_sin[0][positions], cos_sin[1][positions]
        if unsqueeze_dim == 2:
            q, k = q.transpose(1, 2), k.transpose(1, 2)
        if rotary_dim is None:
            q_out, k_out = apply_rotary_pos_emb(q, k, cos, sin)
        else:
            q_rot, k_rot = apply_rotary_pos_emb(q[..., :rotary_dim], k[..., :rotary_dim], cos, sin)
            q_out = torch.cat([q_rot, q[..., rotary_dim:]], dim=-1)
            k_out = torch.cat([k_rot, k[..., rotary_dim:]], dim=-1)
        if unsqueeze_dim == 2:
            q_out, k_out = q_out.transpose(1, 2), k_out.transpose(1, 2)
        return q_out, k_out

    fn.__name__ = _label(apply_rotary_pos_emb)
    return fn


def adapt_meta(apply_rotary_emb, freqs_cis):
    """``fn(q, k, positions)`` from Meta's ``apply_rotary_emb`` and a ``freqs_cis`` table.

    Parameters
    ----------
    apply_rotary_emb : callable
        ``apply_rotary_emb(xq, xk, freqs_cis) -> (xq, xk)`` on (batch, seq, heads, head_dim).
    freqs_cis : complex tensor or callable
        The complex table of ``precompute_freqs_cis(dim, end)``, shape (end, head_dim / 2): the
        rows of the probed positions are passed, shape (seq, head_dim / 2), as Meta's model slices
        it. Or a producer ``freqs_cis(position_ids) -> table`` whose result is passed as is (for
        variants such as transformers' Llama 4, whose table has a batch dimension).

    Returns
    -------
    callable
        ``fn(q, k, positions) -> (q', k')`` for :func:`rotary.verify`.
    """
    if not callable(apply_rotary_emb):
        raise invalid("apply_rotary_emb", f"expected a callable, got {type(apply_rotary_emb).__name__}")

    def fn(q, k, positions):
        if callable(freqs_cis):
            table = freqs_cis(positions)
        else:
            if positions.ndim == 2 and positions.shape[0] != 1 and not (positions == positions[:1]).all():
                raise invalid("positions", "a freqs_cis table serves one position row for the whole batch")
            table = freqs_cis[positions.reshape(-1, positions.shape[-1])[0]]
        xq, xk = q.transpose(1, 2), k.transpose(1, 2)
        q_out, k_out = apply_rotary_emb(xq, xk, table)
        return q_out.transpose(1, 2), k_out.transpose(1, 2)

    fn.__name__ = _label(apply_rotary_emb)
    return fn
