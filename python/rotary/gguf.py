"""The RoPE-relevant metadata of a llama.cpp GGUF file, read in Python with llama.cpp's own ``gguf``
package (``pip install "rotary[gguf]"``).

Example::

    import rotary.gguf
    metadata = rotary.gguf.read_metadata("model.gguf")
    metadata.architecture                          # "llama"
    metadata.keys["llama.rope.freq_base"]          # 500000.0
    metadata.rope_tensors["rope_freqs"]            # float32 array, one factor per rotated pair

Values follow the rules of the C++ reader (``rotary/gguf.h``), so that both read a file alike:
integers of every width become ``int`` (a uint64 above 2^63 - 1 is refused by name), float32 and
float64 become ``float`` (a float32 exactly as stored: 0.1 reads back as 0.10000000149011612), bools
``bool``, strings ``str``; an array of numbers becomes a tuple (of ints for integer and bool
elements, of floats for float elements). Arrays of strings, arrays of arrays (tokenizer
vocabularies and merges), arrays of more than 2^20 numbers and strings over 16 MiB are read past and
not kept. Of the tensors only the RoPE ones are read. The file is closed and unmapped when
:func:`read_metadata` returns or raises.
"""

import importlib.metadata
import os
import re
import struct
from dataclasses import dataclass

import numpy as np

from . import _rotary
from ._errors import invalid
from ._limits import integer

__all__ = ["GgufMetadata", "GgufRope", "ROPE_TENSORS", "read_metadata", "rope_config"]

#: The RoPE tensors kept, by GGUF tensor name without ".weight" (llama.cpp's LLM_TENSOR_ROPE_*).
ROPE_TENSORS = ("rope_freqs", "rope_factors_long", "rope_factors_short")

_INSTALL_HINT = 'pip install "rotary[gguf]"'
_GGUF_VERSION = "0.19.0"  # as pinned by the extra rotary[gguf] in pyproject.toml
# The entries gguf.GGUFReader adds to the fields for the header (a key of the same name it refuses).
_READER_ENTRIES = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")
_HEADER = struct.Struct("<4sIQQ")  # magic, version, tensor_count, kv_count
_VERSIONS = (2, 3)
# The smallest encodings, which bound the counts the header claims by the bytes the file holds:
# a key/value is a key length, a type and a one-byte value; a tensor info a name length, n_dims
# (llama.cpp's reader accepts 0), a type and a data offset.
_MIN_KEY_VALUE_BYTES = 8 + 4 + 1
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8
# What the C++ reader keeps, and so this one: no RoPE setting is larger.
_MAX_KEPT_ARRAY_ELEMENTS = 1 << 20
_MAX_KEPT_STRING_BYTES = 1 << 24
_INT64_MAX = (1 << 63) - 1
_MAX_ROPE_TENSOR_ELEMENTS = 1 << 20  # one factor per rotated pair
_PER_LAYER_ROPE = re.compile(r"blk\..*\.(" + "|".join(ROPE_TENSORS) + r")\.")


@dataclass(frozen=True, eq=False)
class GgufMetadata:
    """What a GGUF file says about its RoPE.

    Attributes
    ----------
    architecture : str
        ``general.architecture`` ("llama", "qwen2", "phi3", ...).
    keys : dict
        Every key kept, by its full name (``"llama.rope.freq_base"``), with the value rules of the
        module's description. The reader's own header fields (GGUF version, counts) are not keys.
    rope_tensors : dict
        The RoPE tensors present (a subset of :data:`ROPE_TENSORS`), each a read-only 1-D float32
        array copied out of the file.
    """

    architecture: str
    keys: dict
    rope_tensors: dict


def read_metadata(path) -> GgufMetadata:
    """The metadata of the GGUF file `path`: every key and the RoPE tensors.

    Parameters
    ----------
    path : str or os.PathLike
        A GGUF file (version 2 or 3, little-endian).

    Returns
    -------
    GgufMetadata

    Raises
    ------
    rotary.Error
        On argument ``path``: the ``gguf`` package is not installed, or not at the version the
        extra pins (``pip install "rotary[gguf]"``);
        no such file, a directory, or a file that cannot be opened (code ``io_error``); a file
        that is not a readable GGUF file, with the reason (code ``parse_error``): not GGUF, an
        unknown version, counts the file cannot hold, a truncated file, what ``gguf.GGUFReader``
        refuses, a value outside the rules above, no ``general.architecture``, a RoPE tensor that
        is not float32, not finite or per layer.
    """
    gguf = _gguf()
    path = os.fspath(path)
    _check_header(path)
    try:
        return _read(gguf, path)
    except _rotary.Error as e:
        error = e
    # Raised here, without the traceback of the reading frames: they hold views of the file's
    # memory map, which would keep it mapped (and its descriptor open) as long as the error lives.
    error.__traceback__ = error.__context__ = error.__cause__ = None
    raise error


@dataclass(frozen=True)
class GgufRope:
    """The rotation llama.cpp applies to a GGUF model (``rotary/gguf_rope.h``).

    Attributes
    ----------
    config : rotary.RopeConfig
        An equivalent rotary configuration: the pairing llama.cpp uses for the architecture, the
        frequencies (base, rotated channels, scaling, factor tensors) and the cos/sin scale.
    rope_mode : str
        llama.cpp's rope type for the architecture: "norm" (adjacent pairs), "neox" (half-split),
        "mrope" or "imrope" (multi-axis, half-split).
    qk_rows_permuted : bool
        Whether llama.cpp's converter reordered each head's Q/K rows for this architecture (as for
        Llama): the file's adjacent pairs are then the half-split pairs of the original checkpoint,
        and its rotation equals the checkpoint's only through that reordering.
    notes : tuple of str
        Every assumption made, in words.
    """

    config: object
    rope_mode: str
    qk_rows_permuted: bool
    notes: tuple


def rope_config(source, context_length=None) -> GgufRope:
    """The rotation llama.cpp applies to the GGUF file (or :class:`GgufMetadata`) ``source``.

    ``context_length`` is the context llama.cpp runs with; LongRoPE's long or short factors are
    chosen from it as llama.cpp chooses them (default: the file's ``<arch>.context_length``).
    Raises :class:`rotary.Error` naming the key for what rotary cannot express exactly (an
    architecture without RoPE, sliding-window layers with their own base, YaRN with a factor
    tensor, ...), and as :func:`read_metadata` for the file.
    """
    metadata = source if isinstance(source, GgufMetadata) else read_metadata(source)
    if context_length is not None:
        context_length = integer(context_length, "context_length")
    config, mode, permuted, notes = _rotary.gguf_rope(metadata, context_length)
    return GgufRope(config, mode, permuted, tuple(notes))


# ---- the gguf package, imported when needed --------------------------------------------------


def _gguf():
    """llama.cpp's gguf package at the pinned version, or a rotary.Error that says how to install it."""
    try:
        import gguf
    except ImportError:
        raise invalid("path", f"reading GGUF files needs the gguf package: {_INSTALL_HINT}") from None
    try:
        found = importlib.metadata.version("gguf")
    except importlib.metadata.PackageNotFoundError:
        found = "of no installed distribution"
    # The reader's internals that _bounded_reader overrides may change in another version, and
    # with them what the values read mean: refused rather than guessed.
    if found != _GGUF_VERSION:
        raise invalid(
            "path",
            f"rotary.gguf works with gguf {_GGUF_VERSION} (it extends its reader), found gguf {found}: {_INSTALL_HINT}",
        )
    return gguf


_reader_classes = {}


def _reader_class(gguf):
    """gguf.GGUFReader, bounded by the file's size and reading only what rotary keeps.

    gguf.GGUFReader reads past the end of the file as empty arrays, so an array claiming 10^12
    elements at the end of a file loops without end; it reads arrays one element at a time (15 s
    for a 150,000-token vocabulary); and it refuses a whole file whose weights have a type newer
    than it knows. This subclass refuses every read that runs past the end of the file, reads a
    numeric array in one slice, steps over string arrays and nested arrays without building them,
    and builds only the RoPE tensors. It overrides three helpers of gguf 0.19.0 (the version
    pinned by the extra ``rotary[gguf]``).
    """
    if gguf not in _reader_classes:
        _reader_classes[gguf] = _bounded_reader(gguf)
    return _reader_classes[gguf]


def _bounded_reader(gguf):
    array_type = gguf.GGUFValueType.ARRAY
    string_type = gguf.GGUFValueType.STRING

    class BoundedReader(gguf.GGUFReader):
        def _get(self, offset, dtype, count=1, override_order=None):
            end = int(offset) + np.dtype(dtype).itemsize * int(count)
            if end > self.data.shape[0]:
                raise ValueError(
                    f"{int(count)} x {np.dtype(dtype).name} at byte {int(offset)} run past the end of "
                    f"the file ({self.data.shape[0]} bytes): truncated, or a count too large"
                )
            return super()._get(offset, dtype, count, override_order)

        def _get_field_parts(self, orig_offs, raw_type):
            if raw_type != array_type:
                return super()._get_field_parts(orig_offs, raw_type)
            element_type, count = self._get(orig_offs, np.uint32), self._get(orig_offs + 4, np.uint64)
            element, n = gguf.GGUFValueType(int(element_type[0])), int(count[0])
            scalar = self.gguf_scalar_to_np.get(element)
            parts, data = [element_type, count], []
            if scalar is not None:
                values = self._get(orig_offs + 12, scalar, n)
                end = orig_offs + 12 + values.nbytes
                if n <= _MAX_KEPT_ARRAY_ELEMENTS:
                    parts, data = [element_type, count, values], [2]
            else:
                end = self._skip_elements(orig_offs + 12, element, n, nested=False)
            return end - orig_offs, parts, data, [array_type, element]

        def _build_tensors(self, start_offs, fields):
            # Only the RoPE tensors get views of their data: the others' types may be newer than
            # gguf 0.19.0 knows, and their data is not rotary's (as in the C++ reader).
            self.tensor_names = [field.name for field in fields]
            super()._build_tensors(start_offs, [f for f in fields if f.name.removesuffix(".weight") in ROPE_TENSORS])

        def _skip_elements(self, offset, element, n, nested):
            """The offset after `n` string or array elements at `offset`, read no further than the file."""
            scalar = self.gguf_scalar_to_np.get(element)
            if scalar is not None:
                return offset + self._get(offset, scalar, n).nbytes
            if element == array_type and nested:
                raise ValueError(f"an array of arrays of arrays at byte {offset}; expected at most one nesting")
            smallest = 8 if element == string_type else 12  # a string's length; an array's type and count
            if n > (self.data.shape[0] - offset) // smallest:
                raise ValueError(
                    f"{n} {element.name.lower()} elements at byte {offset} cannot fit in the rest of the file "
                    f"({self.data.shape[0]} bytes)"
                )
            return self._skip_strings(offset, n) if element == string_type else self._skip_arrays(offset, n)

        def _skip_strings(self, offset, n):
            size = self.data.shape[0]
            length = struct.Struct(("<" if self.endianess == gguf.GGUFEndian.LITTLE else ">") + "Q")
            with memoryview(self.data) as raw:
                for _ in range(n):
                    if offset + 8 > size:
                        raise ValueError(
                            f"a string length at byte {offset} runs past the end of the file ({size} bytes)"
                        )
                    offset += 8 + length.unpack_from(raw, offset)[0]
                    if offset > size:
                        raise ValueError(
                            f"a string ending at byte {offset} runs past the end of the file ({size} bytes)"
                        )
            return offset

        def _skip_arrays(self, offset, n):
            for _ in range(n):
                element_type, count = self._get(offset, np.uint32), self._get(offset + 4, np.uint64)
                element = gguf.GGUFValueType(int(element_type[0]))
                offset = self._skip_elements(offset + 12, element, int(count[0]), nested=True)
            return offset

    return BoundedReader


# ---- before the reader: the file and its header ----------------------------------------------


def _io_error(path, message):
    error = invalid("path", f"{path}: {message}")
    error.code = "io_error"
    return error


def _unreadable(path, why):
    error = invalid("path", f"{path}: not a readable GGUF file: {why}")
    error.code = "parse_error"
    return error


def _check_header(path):
    """Refuses what is not GGUF 2 or 3 and counts the file cannot hold, before gguf.GGUFReader sees
    the file (it would loop over a claimed count). A bound on the header only, not a parser."""
    try:
        if os.path.isdir(path):
            raise _io_error(path, "a directory; expected a GGUF file")
        if os.path.exists(path) and not os.path.isfile(path):  # a pipe would block, a device not end
            raise _io_error(path, "not a regular file; expected a GGUF file")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            header = f.read(_HEADER.size)
    except FileNotFoundError:
        raise _io_error(path, "no such file") from None
    except OSError as e:
        raise _io_error(path, f"cannot be read: {e.strerror or e}") from None
    if len(header) < _HEADER.size:
        raise _unreadable(path, f"{len(header)} bytes, shorter than the {_HEADER.size}-byte GGUF header")
    magic, version, tensor_count, kv_count = _HEADER.unpack(header)
    if magic != b"GGUF":
        raise _unreadable(path, f"magic {magic!r} at byte 0, expected b'GGUF'")
    if version not in _VERSIONS:
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        hint = " (a big-endian file; only little-endian GGUF is read)" if swapped in _VERSIONS else ""
        raise _unreadable(path, f"version {version}{hint}, expected 2 or 3")
    room = size - _HEADER.size
    if kv_count > room // _MIN_KEY_VALUE_BYTES:
        raise _unreadable(path, f"kv_count {kv_count} cannot fit in the {size}-byte file")
    if tensor_count > room // _MIN_TENSOR_INFO_BYTES:
        raise _unreadable(path, f"tensor_count {tensor_count} cannot fit in the {size}-byte file")


# ---- the reader's fields and tensors, copied out ---------------------------------------------


def _read(gguf, path):
    try:
        reader = _reader_class(gguf)(path)
    except Exception as e:  # noqa: BLE001 - the reader raises ValueError, IndexError, KeyError, ... from numpy
        raise _unreadable(path, f"{e} ({type(e).__name__} from gguf.GGUFReader)") from None
    keys = {}
    for name, field in reader.fields.items():
        if name in _READER_ENTRIES:
            continue
        value = _value(gguf, path, name, field)
        if value is not None:
            keys[name] = value
    architecture = keys.get("general.architecture")
    if not isinstance(architecture, str):
        raise _unreadable(path, "no string key 'general.architecture'; expected the model's architecture")
    for name in reader.tensor_names:
        if _PER_LAYER_ROPE.match(name):
            raise _unreadable(path, f"tensor '{name}' is per layer; expected one tensor for all layers")
    return GgufMetadata(architecture, keys, _rope_tensors(gguf, path, reader))


def _value(gguf, path, name, field):
    """The value of `field` by the module's rules; None for a value not kept."""
    types = gguf.GGUFValueType
    kind = field.types[0]
    if kind == types.ARRAY:
        if not field.data:
            return None  # strings, arrays, or too many elements: read past
        element = field.types[1]
        values = field.parts[field.data[0]]
        return tuple(_scalar(path, name, element, values, types))
    if kind == types.STRING:
        raw = field.parts[-1]
        if raw.nbytes > _MAX_KEPT_STRING_BYTES:
            return None
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise _unreadable(path, f"the string '{name}' is not UTF-8 ({e.reason} at byte {e.start})") from None
    value = _scalar(path, name, kind, field.parts[-1], types)[0]
    return bool(value) if kind == types.BOOL else value


def _scalar(path, name, kind, values, types):
    """Python numbers of the numpy array `values` of GGUF type `kind` (bools as 0 and 1)."""
    if kind in (types.FLOAT32, types.FLOAT64):
        return values.tolist()  # a float32 becomes the double it is exactly
    if kind == types.BOOL:
        values = values.view(np.uint8)
        if values.size and values.max() > 1:
            raise _unreadable(path, f"'{name}' holds a bool stored as {int(values.max())}, expected 0 or 1")
    if kind == types.UINT64 and values.size and values.max() > _INT64_MAX:
        raise _unreadable(path, f"'{name}' holds the uint64 {int(values.max())}, expected at most {_INT64_MAX}")
    return [int(v) for v in values.tolist()]


def _rope_tensors(gguf, path, reader):
    found = {}
    for tensor in reader.tensors:  # only RoPE tensors (BoundedReader._build_tensors)
        what = f"tensor '{tensor.name}'"
        name = tensor.name.removesuffix(".weight")
        if name not in ROPE_TENSORS or tensor.name == name:
            continue
        if tensor.tensor_type != gguf.GGMLQuantizationType.F32:
            raise _unreadable(path, f"{what} has type {tensor.tensor_type.name}, expected F32")
        if tensor.n_elements > _MAX_ROPE_TENSOR_ELEMENTS:
            raise _unreadable(
                path,
                f"{what} has {tensor.n_elements} elements, expected at most {_MAX_ROPE_TENSOR_ELEMENTS} (one per pair)",
            )
        offset = tensor.data_offset - reader.data_offset
        if offset % int(reader.alignment):
            raise _unreadable(path, f"{what} has data offset {offset}, expected a multiple of {int(reader.alignment)}")
        values = np.array(tensor.data, dtype=np.float32).reshape(-1)  # a copy, in native byte order
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise _unreadable(path, f"{what}[{i}] is {values[i]}, expected a finite number")
        values.flags.writeable = False
        found[name] = values
    return found
