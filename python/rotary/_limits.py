"""The largest sizes rotary accepts, as include/rotary/limits.h defines them (a test checks that the
two agree), and the checks the Python side makes with them before it allocates.

Every size error names the argument, the value, the bytes it would need and the limit, in the words
the C++ core uses::

    positions: 40000000 positions need 19.1 GiB of cos/sin tables (64 pairs x 2 x 4 bytes each);
    the limit is 33554432 positions (rotary::kMaxTablePositions)
"""

import operator

from ._errors import invalid

MAX_REQUEST_BYTES = 64 << 30
MAX_TABLE_POSITIONS = 1 << 25
MAX_POSITION_IDS = 1 << 24
MAX_KV_BLOCKS = 1 << 31
MAX_KV_BLOCK_SIZE = 1 << 24
MAX_KV_HEADS = 1 << 16
MAX_KV_HEAD_DIM = 1 << 16
MAX_THREADS = 4096

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def format_bytes(size):
    """'953.7 GiB': the largest binary unit that keeps the number at least 1, one decimal."""
    if size < 1024:
        return f"{int(size)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        size /= 1024
        if size < 1024 or unit == "EiB":
            return f"{size:.1f} {unit}"


def integer(value, name, low=INT64_MIN, high=INT64_MAX):
    """`value` as a Python int in [low, high], else rotary.Error naming `name`. By default only
    the type and the int64 range: the core checks the argument's own range and names its limit.

    Anything with ``__index__`` counts (int, NumPy integers, integer 0-d tensors); floats, strings,
    None and bools do not: ``int(1.5)`` would silently drop the fraction, and True is no size.
    """
    if isinstance(value, bool):
        raise invalid(name, f"expected an integer, got bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise invalid(name, f"expected an integer, got {type(value).__name__} {value!r}") from None
    if not low <= number <= high:
        expected = (
            "an integer in the int64 range"
            if (low, high) == (INT64_MIN, INT64_MAX)
            else f"an integer from {low} to {high}"
        )
        raise invalid(name, f"expected {expected}, got {number}")
    return number


def check_size(name, amount, size, of_what, count=None, limit=None):
    """Raises rotary.Error for a request of `size` bytes past MAX_REQUEST_BYTES, or of `count`
    items past `limit` (a (value, unit, constant) triple)."""
    need = f"{amount} need {format_bytes(size)} of {of_what}"
    if limit is not None and count > limit[0]:
        raise invalid(name, f"{need}; the limit is {limit[0]} {limit[1]} (rotary::{limit[2]})")
    if size > MAX_REQUEST_BYTES:
        raise invalid(
            name, f"{need}; the limit is {format_bytes(MAX_REQUEST_BYTES)} per request (rotary::kMaxRequestBytes)"
        )
    return need


def allocating(name, need, allocate):
    """Calls `allocate`; a MemoryError for a size inside the limits becomes rotary.Error naming the
    argument and the bytes (`need`, from check_size)."""
    try:
        return allocate()
    except MemoryError:
        raise invalid(name, f"{need}, more than this machine could allocate") from None
