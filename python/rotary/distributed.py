"""Positions for sequences split across processes: packed variable-length batches (THD, described
by ``cu_seqlens``) and context parallelism (each of ``cp_size`` ranks holding a shard of the
sequence).

RoPE rotates a token by its position in its own sequence, so a rank must rotate its shard by the
tokens' *global* positions, not by their order in the shard. These helpers give, for one rank,
which tokens of the global sequence it holds (``indices``) and their positions, laid out the way
the attention schedule expects them:

``contiguous``
    the sequence cut into ``cp_size`` equal chunks, rank r holding chunk r;
``zigzag``
    the sequence cut into ``2 * cp_size`` equal chunks, rank r holding chunks r and
    ``2 * cp_size - 1 - r`` in that order, so that every rank has the same share of causal
    attention work (the load-balanced layout of TransformerEngine's and Megatron's context
    parallelism).

For packed sequences each sequence is cut on its own, and a rank's shard is its part of every
sequence, in sequence order. Positions start at each sequence's offset (0 unless given: a prefix
already in the KV cache, a chunked prefill).

Example::

    import numpy as np, rotary, rotary.distributed as rd
    cu_seqlens = np.array([0, 8, 20])                       # two sequences of 8 and 12 tokens
    shard = rd.packed_shard(cu_seqlens, cp_size=2, cp_rank=1, scheme="zigzag")
    rope.rotate(q_local, shard.positions, k_local)          # q_local = q_global[shard.indices]
"""

from dataclasses import dataclass

import numpy as np

from . import _rotary
from ._errors import invalid
from ._limits import allocating, check_size, integer

SCHEMES = ("contiguous", "zigzag")

# The layouts and every check of cu_seqlens, offsets, cp_size and cp_rank are the C++ library's
# (include/rotary/packing.h), which inference engines share; this module coerces the arguments and
# bounds the sizes before the core allocates.


@dataclass(frozen=True)
class Shard:
    """One rank's tokens: ``indices`` into the global (packed) token axis, in the rank's order, their
    RoPE ``positions``, and ``cu_seqlens`` of the rank's own packed shard (sequence boundaries in
    ``indices``)."""

    indices: np.ndarray
    positions: np.ndarray
    cu_seqlens: np.ndarray


def _int_array(value, name, ndim=1):
    array = np.asarray(value)
    if array.ndim != ndim or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise invalid(name, f"expected a {ndim}-d array of integers, got shape {array.shape} of {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _check_cp(cp_size, cp_rank, scheme):
    """The Python side of the checks: integers and a known scheme (the ranges are the core's)."""
    cp_size, cp_rank = integer(cp_size, "cp_size"), integer(cp_rank, "cp_rank")
    if scheme not in SCHEMES:
        raise invalid("scheme", f"expected one of {SCHEMES}, got {scheme!r}")
    return cp_size, cp_rank


def shard_indices(length, cp_size, cp_rank, scheme="zigzag", *, name="length"):
    """Indices in [0, length) of the tokens rank ``cp_rank`` holds, in its order.

    ``length`` must divide into ``cp_size`` (contiguous) or ``2 * cp_size`` (zigzag) equal chunks;
    otherwise :class:`rotary.Error` says so (pad the sequence, as the attention kernels require).
    """
    cp_size, cp_rank = _check_cp(cp_size, cp_rank, scheme)
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise invalid(name, f"expected an integer >= 0, got {length!r}")
    try:
        return packed_shard([0, length], cp_size, cp_rank, scheme).indices
    except _rotary.Error as error:
        if error.argument != "cu_seqlens":
            raise
        # The one sequence of cu_seqlens = [0, length] is the caller's `name`.
        message = str(error).removeprefix("cu_seqlens: ").removeprefix("sequence 0: ")
        raise invalid(name, message) from None


def shard(length, cp_size, cp_rank, scheme="zigzag", *, offset=0):
    """One sequence of ``length`` tokens split over ``cp_size`` ranks: rank ``cp_rank``'s
    :class:`Shard` (positions ``offset + index``)."""
    return packed_shard([0, length], cp_size, cp_rank, scheme, offsets=[offset])


def packed_positions(cu_seqlens, offsets=None):
    """Positions of a packed (THD) batch: token t of sequence s (``cu_seqlens[s] <= t <
    cu_seqlens[s + 1]``) gets ``offsets[s] + t - cu_seqlens[s]``.

    ``cu_seqlens``: the cumulative sequence lengths, starting at 0, non-decreasing (flash-attention's
    and TransformerEngine's convention). ``offsets``: each sequence's first position (default 0),
    e.g. the tokens of a prefix already cached.
    """
    cu, offsets = _packed_arrays(cu_seqlens, offsets)
    tokens = _rotary.packed_tokens(cu, offsets)
    # Bounded before allocating: cu_seqlens is the caller's number, not memory that exists.
    need = check_size("cu_seqlens", f"{tokens} tokens", tokens * 8, "positions (int64)")
    return allocating("cu_seqlens", need, lambda: _rotary.packed_positions(cu, offsets))


def packed_shard(cu_seqlens, cp_size, cp_rank, scheme="zigzag", *, offsets=None):
    """Rank ``cp_rank``'s :class:`Shard` of a packed batch: every sequence cut into ``cp_size``
    (contiguous) or ``2 * cp_size`` (zigzag) chunks on its own, the rank's part of each in sequence
    order. Each sequence's length must divide into the chunks."""
    cp_size, cp_rank = _check_cp(cp_size, cp_rank, scheme)
    cu, offsets = _packed_arrays(cu_seqlens, offsets)
    size = _rotary.packed_shard_size(cu, cp_size, scheme)
    need = check_size("cu_seqlens", f"{size} tokens per rank", size * 8 * 2, "indices and positions (int64)")
    indices, positions, local = allocating(
        "cu_seqlens", need, lambda: _rotary.packed_shard(cu, offsets, cp_size, cp_rank, scheme)
    )
    return Shard(indices=indices, positions=positions, cu_seqlens=local)


def shard_mrope_positions(position_ids, indices):
    """Multi-axis (M-RoPE) position ids, shape ``(num_axes, tokens)``, for a shard's ``indices``:
    every axis sharded the same way, ``(num_axes, len(indices))``."""
    ids = _int_array(position_ids, "position_ids", ndim=2)
    idx = _int_array(indices, "indices")
    if idx.size and (idx.min() < 0 or idx.max() >= ids.shape[1]):
        raise invalid("indices", f"expected indices in [0, {ids.shape[1]}) (the tokens of position_ids)")
    return ids[:, idx]


def _packed_arrays(cu_seqlens, offsets):
    """cu_seqlens and offsets (none: an empty array, every sequence from 0) as int64 arrays for the
    core, which checks their values."""
    cu = _int_array(cu_seqlens, "cu_seqlens")
    if offsets is None:
        return cu, np.zeros(0, dtype=np.int64)
    offsets = _int_array(offsets, "offsets")
    sequences = cu.size - 1
    if offsets.size == 0 and sequences > 0:
        # The core reads no offsets as all zero; offsets given empty for sequences is a mistake.
        raise invalid("offsets", f"expected one offset per sequence ({sequences}), got 0")
    return cu, offsets
