"""KV cache and reference attention: rotated keys stored contiguously or in blocks (paged), filled
by a fused rotate-and-append, and a causal grouped-query attention that reads them."""

import numpy as np

from . import _rotary
from ._errors import invalid
from ._limits import allocating, check_size, format_bytes, integer
from ._rope import Rope, _as_positions, _mark_modified, _readable, _writable

BlockTable = _rotary.BlockTable
BlockTable.__doc__ = """One sequence's place in a cache: ``blocks`` (its physical blocks in order) and ``length``
(tokens held). A contiguous cache uses ``BlockTable([0])``."""

_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def _dtype_name(dtype):
    name = str(dtype).replace("torch.", "")
    if name not in _DTYPES:
        raise invalid("dtype", f"expected float32, float16 or bfloat16, got {dtype!r}")
    return name


def _as_float(bits, dtype):
    if dtype == "bfloat16":  # the storage bits as uint16: bfloat16 is the top half of a float32
        return (bits.astype(np.uint32) << 16).view(np.float32)
    return bits


class KvCache:
    """One attention layer's rotated keys and its values.

    Build it with :meth:`contiguous` (one sequence) or :meth:`paged` (a pool of fixed-size blocks
    shared by sequences through :class:`BlockTable`).
    """

    def __init__(self, cache):
        self._cache = cache

    # Sizes are integers here; their limits (include/rotary/limits.h: 64 GiB of keys and values,
    # 2**24 tokens per block, 2**16 heads and channels) are the core's, which names the bytes.
    @classmethod
    def contiguous(cls, capacity, num_kv_heads, head_dim, dtype="float32"):
        return cls(
            _rotary.KvCache.contiguous(
                integer(capacity, "capacity"),
                integer(num_kv_heads, "num_kv_heads"),
                integer(head_dim, "head_dim"),
                _dtype_name(dtype),
            )
        )

    @classmethod
    def paged(cls, num_blocks, block_size, num_kv_heads, head_dim, dtype="float32"):
        return cls(
            _rotary.KvCache.paged(
                integer(num_blocks, "num_blocks"),
                integer(block_size, "block_size"),
                integer(num_kv_heads, "num_kv_heads"),
                integer(head_dim, "head_dim"),
                _dtype_name(dtype),
            )
        )

    num_blocks = property(lambda self: self._cache.num_blocks)
    block_size = property(lambda self: self._cache.block_size)
    num_kv_heads = property(lambda self: self._cache.num_kv_heads)
    head_dim = property(lambda self: self._cache.head_dim)
    dtype = property(lambda self: self._cache.dtype)

    def capacity(self, sequence):
        """The most tokens ``sequence`` can hold: its blocks times block_size."""
        return self._cache.capacity(sequence)

    def append(self, rope, q, k, v, positions, sequence):
        """Rotates q in place (q may be None) and k into the cache, copies v, in one pass.

        Parameters
        ----------
        rope : rotary.Rope
        q : array or tensor (tokens, q_heads, head_dim), or None
        k, v : array or tensor (tokens, kv_heads, head_dim), the cache's dtype
        positions : array_like of int, (tokens,) (or (num_axes, tokens) for M-RoPE)
        sequence : BlockTable
            Its ``length`` grows by the number of tokens. On error nothing changes.
        """
        if not isinstance(rope, Rope):
            raise invalid("rope", f"expected a rotary.Rope, got {type(rope).__name__}")
        tokens = k.shape[0] if getattr(k, "ndim", 0) == 3 else None
        flat, axes = _as_positions(positions, None if tokens is None else (tokens,), rope.num_axes)
        if q is not None:
            q = _writable(q, "q")
        self._cache.append(rope._rope, q, _readable(k), _readable(v), flat, axes, sequence)
        if q is not None:
            _mark_modified(q)

    def keys(self, sequence):
        """The sequence's rotated keys, (length, kv_heads, head_dim), a copy (bfloat16 as float32)."""
        return self._gather(sequence, self._cache.keys)

    def values(self, sequence):
        """The sequence's values, (length, kv_heads, head_dim), a copy (bfloat16 as float32)."""
        return self._gather(sequence, self._cache.values)

    def _gather(self, sequence, gather):
        # A valid sequence lists each block once, so it holds at most the pool's tokens: the copy
        # is never larger than the cache. A length past that is a mistake, not a copy to attempt.
        length = getattr(sequence, "length", 0)
        pool = self.num_blocks * self.block_size
        if length > pool:
            raise invalid(
                "sequence.length",
                f"{length} tokens exceed the pool's {pool} ({self.num_blocks} blocks of {self.block_size})",
            )
        element = 2 if self.dtype == "float16" else 4  # bfloat16 comes back as float32
        size = length * self.num_kv_heads * self.head_dim * element
        need = f"{length} tokens need {format_bytes(size)} of a copy ({element} bytes each)"
        return allocating("sequence.length", need, lambda: _as_float(gather(sequence), self.dtype))


def attention(q, cache, sequence, first_index, *, scale=None, sliding_window=0):
    """Reference causal grouped-query attention of rotated queries over a :class:`KvCache`.

    Query i sits at cache index ``first_index + i`` and sees the keys at indices up to its own
    (the last ``sliding_window`` of them when given). Float32 arithmetic, O(head_dim) memory per
    query (online softmax). Returns a float32 array (tokens, q_heads, head_dim).
    """
    if not isinstance(cache, KvCache):
        raise invalid("cache", f"expected a rotary.KvCache, got {type(cache).__name__}")
    first_index = integer(first_index, "first_index")
    sliding_window = integer(sliding_window, "sliding_window")

    def call():
        return _rotary.attention(
            _readable(q), cache._cache, sequence, first_index, 0.0 if scale is None else float(scale), sliding_window
        )

    # The output is allocated before the core sees q: bound it here, from q's shape.
    shape = tuple(getattr(q, "shape", ()))
    if len(shape) != 3:
        return call()  # the core names what is wrong with q
    tokens, heads, dim = (int(n) for n in shape)
    need = check_size(
        "q",
        f"{tokens} tokens x {heads} heads x {dim} channels",
        tokens * heads * dim * 4,
        "attention output (float32, 4 bytes each)",
    )
    return allocating("q", need, call)
