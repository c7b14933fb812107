"""RMSNorm of queries and keys fused with the rotation: :class:`RmsNorm` and :func:`rms_norm_rotate`.

Qwen3, Gemma 3, OLMo 2 and many later families normalise each query and key (per head, or over a
token's whole projection) before RoPE. :func:`rms_norm_rotate` does both in one pass over q and k,
with the norm exactly as the family's module defines it (include/rotary/qk_norm.h has the formula).
"""

import ast
import inspect
import sys
import textwrap

import numpy as np

from . import _rotary
from ._errors import invalid
from ._rope import _as_positions, _layout_and_tokens, _mark_modified, _readable, _targets, _torch_tensor, _writable

_SCOPES = ("head", "token", "auto")
_DTYPE_NAMES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}

# The norm classes of transformers whose forward defines each form, and what the form means in
# RmsNorm's terms. A module is recognised when its forward (and _norm, where it has one) is the
# same code as one of these, so every family that copies a form is recognised without a list.
_REFERENCE_FORMS = (
    ("qwen3", "Qwen3RMSNorm", {"unit_offset": False, "round_before_weight": True}),
    ("gemma3", "Gemma3RMSNorm", {"unit_offset": True, "round_before_weight": False}),
    ("olmo2", "Olmo2RMSNorm", {"unit_offset": False, "round_before_weight": False}),
)


class RmsNorm:
    """One RMSNorm as a query or key norm: its weight, epsilon and the details that decide the bits.

    Each group of elements (a head, or all heads of a token) is normalised in float32 as
    ``y = x / sqrt(mean(x**2) + eps)``, optionally rounded to the storage dtype (``round_before_weight``),
    multiplied by ``weight`` (or ``1 + weight``), and rounded to the storage dtype, as the norm
    module's output is, before the rotation.

    Parameters
    ----------
    weight : array_like or torch.Tensor
        One value per normalised element: ``head_dim`` values (scope ``"head"``) or
        ``num_heads * head_dim`` (scope ``"token"``). float32, float16 or bfloat16 values (converted
        exactly); float64 only where every value is exactly a float32.
    eps : float
        Added to the mean square: finite and > 0 (rounded to float32, as torch adds it to a float32
        tensor).
    unit_offset : bool, optional
        Multiply by ``1 + weight`` (Gemma's convention) instead of ``weight``.
    scope : {"head", "token", "auto"}, optional
        Normalise each head (Qwen3, Gemma 3) or all heads of a token together (OLMo 2's norm over the
        whole projection). ``"auto"`` decides per call from the weight's length: ``head_dim`` values
        mean per head, ``num_heads * head_dim`` per token.
    round_before_weight : bool, optional
        Round the normalised value to the storage dtype before the weight, as Qwen3RMSNorm's
        ``weight * x.to(input_dtype)`` does (two roundings in bfloat16/float16; none in float32).

    Raises
    ------
    rotary.Error
        An argument out of range, naming it (``weight``, ``eps``, ``scope``).
    """

    def __init__(self, weight, eps, *, unit_offset=False, scope="head", round_before_weight=False):
        self.weight = _float32_weight(weight)
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)):
            raise invalid("eps", f"expected a number, got {type(eps).__name__}")
        if not np.isfinite(eps) or not eps > 0 or not np.float32(eps) > 0:
            raise invalid("eps", f"expected a finite number > 0 (as a float32), got {eps!r}")
        if scope not in _SCOPES:
            raise invalid("scope", f"expected one of {_SCOPES}, got {scope!r}")
        self.eps = float(eps)
        self.unit_offset = bool(unit_offset)
        self.scope = scope
        self.round_before_weight = bool(round_before_weight)
        # The module's weight dtype (from_module), where it decides the output dtype.
        self.weight_dtype = None

    def __repr__(self):
        return (
            f"RmsNorm(weight=<{self.weight.size} values>, eps={self.eps!r}, unit_offset={self.unit_offset}, "
            f"scope={self.scope!r}, round_before_weight={self.round_before_weight})"
        )

    @classmethod
    def from_module(cls, module):
        """The RmsNorm a transformers norm module computes (a ``q_norm`` or ``k_norm``).

        The module's class is recognised by its code: its forward (and ``_norm``) must be the code of
        transformers' Qwen3RMSNorm, Gemma3RMSNorm or Olmo2RMSNorm, which every family that copies
        one of them shares (Qwen3-MoE, Qwen3-Next, OLMoE, OLMo 3, ...). The scope is ``"auto"``: a
        weight of ``head_dim`` values normalises each head, one of ``num_heads * head_dim`` the
        whole projection.

        Parameters
        ----------
        module : torch.nn.Module
            The norm module, e.g. ``model.model.layers[0].self_attn.q_norm``.

        Returns
        -------
        RmsNorm

        Raises
        ------
        rotary.Error
            ``module``: a class whose code is none of the three forms (LayerNorm-based norms, norms
            with a bias or another order of operations), named.
        """
        form = _form_of(type(module))
        if form is None:
            raise invalid(
                "module",
                f"{type(module).__name__} is not an RMSNorm rotary reproduces: its forward is none of "
                f"{', '.join(name for _, name, _ in _REFERENCE_FORMS)} (transformers), whose forms "
                "rotary computes bit for bit",
            )
        eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
        if eps is None:
            raise invalid("module", f"{type(module).__name__} has neither variance_epsilon nor eps")
        norm = cls(module.weight, eps, scope="auto", **form)
        norm.weight_dtype = str(module.weight.dtype).replace("torch.", "")
        return norm

    def _as_tuple(self, x, layout, name):
        """(weight, eps, unit_offset, scope, round_before_weight) for the call on `x` (argument
        `name`) in `layout`: "auto" resolved, the module's output dtype checked."""
        scope = self.scope
        head_dim = int(x.shape[-1])
        heads = int(x.shape[layout.index("h")]) if len(layout) == x.ndim else 0
        if scope == "auto":
            scope = "head" if self.weight.size == head_dim else "token"
        expected = head_dim if scope == "head" else heads * head_dim
        if self.weight.size != expected:
            what = "head_dim" if scope == "head" else "num_heads x head_dim"
            if self.scope == "auto":
                what = f"head_dim ({head_dim}) or num_heads x head_dim"
            raise invalid(f"{name}_norm.weight", f"expected {what} = {expected} values, got {self.weight.size}")
        x_dtype = str(x.dtype).replace("torch.", "")
        if self.round_before_weight and self.weight_dtype not in (None, x_dtype) and x_dtype != "float32":
            raise invalid(
                f"{name}_norm",
                f"the module's weight is {self.weight_dtype} and {name} is {x_dtype}: its output "
                f"(weight * x.to({x_dtype})) would be {self.weight_dtype}, not {x_dtype}; cast the module to "
                f"{x_dtype} as the model does",
            )
        return (self.weight, self.eps, self.unit_offset, scope, self.round_before_weight)


def _float32_weight(weight):
    torch = sys.modules.get("torch")
    if _torch_tensor(weight):
        weight = weight.detach()
        if weight.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            raise invalid("weight", f"expected a floating-point tensor, got {weight.dtype}")
        array = weight.to("cpu", torch.float64).numpy()
    else:
        array = np.asarray(weight)
        if array.dtype.kind not in "fiu":
            raise invalid("weight", f"expected numbers, got {array.dtype}")
        array = array.astype(np.float64)
    if array.ndim != 1 or array.size == 0:
        raise invalid("weight", f"expected a non-empty 1-d array, got shape {array.shape}")
    as_float32 = array.astype(np.float32)
    if not np.all(np.isfinite(as_float32)):
        raise invalid("weight", "expected finite float32 values")
    if not np.array_equal(as_float32.astype(np.float64), array):
        raise invalid("weight", "has values that are not exactly float32; rounding them would change the norm")
    return np.ascontiguousarray(as_float32)


def _code_of(cls):
    """The AST of cls's forward and _norm, docstrings dropped: what the module computes."""
    parts = []
    for method in ("forward", "_norm"):
        function = getattr(cls, method, None)
        if function is None:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        except (OSError, TypeError, SyntaxError):
            return None
        body = tree.body[0].body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            body = body[1:]
        parts.append(method + ":" + ast.dump(ast.Module(body=body, type_ignores=[])))
    return "\n".join(parts)


def _form_of(cls):
    """The keyword arguments of RmsNorm for cls's form, or None when it is none of the references."""
    code = _code_of(cls)
    if code is None:
        return None
    for _, class_name, form in _REFERENCE_FORMS:
        reference = _reference_class(class_name)
        if reference is not None and _code_of(reference) == code:
            return dict(form)
    return None


def _reference_class(class_name):
    import importlib

    module = {"Qwen3RMSNorm": "qwen3", "Gemma3RMSNorm": "gemma3", "Olmo2RMSNorm": "olmo2"}[class_name]
    try:
        return getattr(importlib.import_module(f"transformers.models.{module}.modeling_{module}"), class_name)
    except (ImportError, AttributeError):
        return None


def _as_norm(norm, name):
    if isinstance(norm, RmsNorm):
        return norm
    if norm is not None and hasattr(norm, "weight") and hasattr(norm, "forward"):
        return RmsNorm.from_module(norm)
    raise invalid(name, f"expected a rotary.RmsNorm or a transformers norm module, got {type(norm).__name__}")


def rms_norm_rotate(rope, q, positions, k=None, *, q_norm, k_norm=None, q_out=None, k_out=None, layout=None):
    """Normalises q (and k) with their RMSNorms and rotates them, in one pass: in place or into
    ``q_out`` / ``k_out``.

    Equal to applying the norm module and then :meth:`rotary.Rope.rotate`, bit for bit where the
    sum of squares adds in the same order (always in float32 storage up to the last bit of the mean
    square; see the package tests for how often torch's reduction order differs).

    Parameters
    ----------
    rope : rotary.Rope
        The rotation (CPU).
    q : numpy.ndarray or torch.Tensor
        As for :meth:`rotary.Rope.rotate`: (seq, heads, head_dim) or (batch, seq, heads, head_dim),
        see ``layout``; float32, float16 or bfloat16.
    positions : array_like or torch.Tensor of int
        One position per token, as for :meth:`rotary.Rope.rotate`.
    k : numpy.ndarray or torch.Tensor, optional
        Keys, with the batch and seq sizes of q; any head count (GQA/MQA).
    q_norm, k_norm : rotary.RmsNorm or torch.nn.Module
        The norms (a transformers module is read with :meth:`RmsNorm.from_module`); ``k_norm`` is
        required with ``k``.
    q_out, k_out : numpy.ndarray or torch.Tensor, optional
        Outputs of the inputs' shape and dtype; default: in place.
    layout : {"shd", "hsd", "bshd", "bhsd"}, optional
        As for :meth:`rotary.Rope.rotate`.

    Returns
    -------
    The written q (and k): ``q_out`` or ``q`` itself.

    Raises
    ------
    rotary.Error
        Before anything is written: everything :meth:`rotary.Rope.rotate` refuses, and a norm whose
        weight length, eps or scope does not fit (``q_norm.weight``, ``k_norm.eps``, ...).
    """
    layout, token_shape = _layout_and_tokens(q, layout)
    if _torch_tensor(q) and q.is_cuda:
        raise invalid("q", "rms_norm_rotate runs on the CPU; this tensor is on CUDA")
    q_norm = _as_norm(q_norm, "q_norm")
    if k is not None and k_norm is None:
        raise invalid("k_norm", "required when k is given")
    flat_positions, axes = _as_positions(positions, token_shape, rope.num_axes)
    q_tuple = q_norm._as_tuple(q, layout, "q")
    k_tuple = None
    if k is not None:
        k_tuple = _as_norm(k_norm, "k_norm")._as_tuple(k, layout, "k")
    q_target, k_target = _targets(q, k, q_out, k_out)
    _rotary.rms_norm_rotate(
        rope._rope,
        _readable(q),
        q_target,
        None if k is None else _readable(k),
        k_target,
        flat_positions,
        axes,
        layout,
        q_tuple,
        k_tuple,
    )
    for target in (q_target, k_target):
        _mark_modified(target)
    return q_target if k is None else (q_target, k_target)


def rms_norm_rotate_append(cache, rope, q, k, v, positions, sequence, *, q_norm=None, k_norm):
    """:meth:`rotary.KvCache.append` with the norms: q normalised and rotated in place (q may be
    None), k normalised and rotated into the cache, v copied.

    Equal bit for bit to normalising and rotating q and k with :func:`rms_norm_rotate` and then
    storing k and v, in one pass per token: k is only read, and each normalised, rotated key is
    written straight into its cache row.

    Parameters
    ----------
    cache : rotary.KvCache
    rope : rotary.Rope
    q : array or tensor (tokens, q_heads, head_dim), or None
    k, v : array or tensor (tokens, kv_heads, head_dim), the cache's dtype
    positions : array_like of int, (tokens,) (or (num_axes, tokens) for M-RoPE)
    sequence : rotary.BlockTable
        Its ``length`` grows by the number of tokens. On error nothing changes.
    q_norm, k_norm : rotary.RmsNorm or torch.nn.Module
        As for :func:`rms_norm_rotate`; ``q_norm`` is required with ``q``.

    Raises
    ------
    rotary.Error
        Before anything is written: everything :meth:`rotary.KvCache.append` refuses, and a norm
        that does not fit its tensor (``q_norm.weight``, ``k_norm``, ...).
    """
    from .kv_cache import KvCache

    if not isinstance(cache, KvCache):
        raise invalid("cache", f"expected a rotary.KvCache, got {type(cache).__name__}")
    tokens = k.shape[0] if getattr(k, "ndim", 0) == 3 else None
    flat, axes = _as_positions(positions, None if tokens is None else (tokens,), rope.num_axes)
    k_tuple = _as_norm(k_norm, "k_norm")._as_tuple(k, "shd", "k") if getattr(k, "ndim", 0) == 3 else None
    q_tuple = None
    if q is not None:
        if q_norm is None:
            raise invalid("q_norm", "required when q is given")
        q = _writable(q, "q")
        if getattr(q, "ndim", 0) == 3:
            q_tuple = _as_norm(q_norm, "q_norm")._as_tuple(q, "shd", "q")
    if k_tuple is None or (q is not None and q_tuple is None):
        name = "k" if k_tuple is None else "q"
        raise invalid(name, "expected 3 dimensions (tokens, heads, head_dim)")
    _rotary.rms_norm_rotate_append(
        cache._cache, rope._rope, q, _readable(k), _readable(v), flat, axes, sequence, q_tuple, k_tuple
    )
    if q is not None:
        _mark_modified(q)
