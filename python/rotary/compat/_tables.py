"""Remembering the cos/sin tables rotary produced, so that an apply function given one of them can
rotate through rotary's kernels instead of multiplying tables.

A table is recognised by identity, never by value: the exact tensor object (HF style, where the
model passes the producer's output to every layer) or a row slice of the exact storage (Meta style,
where the model slices ``freqs_cis[start:start + seqlen]``). Its version counter must not have moved
since rotary wrote it: a table modified in place takes the general path.
"""

import weakref

import numpy as np

_BY_OBJECT = {}  # id(tensor) -> (weakref, version, payload)
_BY_STORAGE = {}  # storage data_ptr -> (weakref to the table, version, payload)


def _forget(registry, key):
    def callback(_):
        registry.pop(key, None)

    return callback


def remember_object(tensor, payload):
    key = id(tensor)
    _BY_OBJECT[key] = (weakref.ref(tensor, _forget(_BY_OBJECT, key)), tensor._version, payload)


def lookup_object(tensor):
    entry = _BY_OBJECT.get(id(tensor))
    if entry is None or entry[0]() is not tensor or tensor._version != entry[1]:
        return None
    return entry[2]


def remember_storage(table, payload):
    key = table.untyped_storage().data_ptr()
    _BY_STORAGE[key] = (weakref.ref(table, _forget(_BY_STORAGE, key)), table._version, payload)


def lookup_rows(view):
    """(payload, positions) when `view` is a slice of consecutive rows of a remembered 2-d table
    (any start, step 1, all columns), else None."""
    entry = _BY_STORAGE.get(view.untyped_storage().data_ptr())
    if entry is None:
        return None
    table = entry[0]()
    if table is None or view._version != entry[1] or view.dtype != table.dtype:
        return None
    if view.ndim != 2 or view.shape[1] != table.shape[1] or view.stride() != table.stride():
        return None
    row_stride = table.stride(0)
    start, rest = divmod(view.storage_offset() - table.storage_offset(), row_stride)
    if rest or start < 0 or start + view.shape[0] > table.shape[0]:
        return None
    return entry[2], np.arange(start, start + view.shape[0], dtype=np.int64)
