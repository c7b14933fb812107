"""rotary.Rope: a configuration's frequencies, ready to rotate NumPy arrays and DLPack tensors."""

import os
import sys

import numpy as np

from . import _rotary
from ._config import config_from_dict, config_from_file
from ._errors import invalid
from ._limits import MAX_TABLE_POSITIONS, MAX_THREADS, allocating, check_size, integer

_LAYOUTS = {3: ("shd", "hsd"), 4: ("bshd", "bhsd")}


def _torch_tensor(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _as_positions(positions, token_shape=None, num_axes=1, check_tokens=None):
    """Positions as a contiguous 1-d int32/int64 array, broadcast to `token_shape` when given, and
    the number of position axes they carry. ``check_tokens(count)``, when given, runs before
    anything is copied.

    With a multi-axis RoPE (``num_axes`` > 1), an array with one more dimension than the tokens and
    ``num_axes`` rows (transformers' ``(3, batch, seq)`` position_ids) gives each token one
    component per axis; it is flattened axis-major. Anything else is one position per token.
    Positions are small and read-only, so converting or broadcasting them copies nothing that
    matters; q and k are never copied.
    """
    if _torch_tensor(positions):
        positions = positions.detach().cpu().numpy()
    array = np.asarray(positions)
    if array.size == 0 and not isinstance(positions, np.ndarray):
        # An empty list has no element to make it integral: NumPy calls it float64.
        array = array.astype(np.int64)
    dtype = array.dtype
    if dtype not in (np.int32, np.int64):
        if dtype.kind not in "iu":
            raise invalid("positions", f"expected integers (int32 or int64), got {dtype}")
        if array.size and dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
            raise invalid("positions", "values past the int64 range")
        dtype = np.dtype(np.int64)
    axes = 1
    if (
        num_axes > 1
        and array.ndim >= 1
        and array.shape[0] == num_axes
        and (token_shape is None or array.ndim == len(token_shape) + 1)
    ):
        axes = num_axes
    if token_shape is not None:
        token_shape = tuple(int(s) for s in token_shape)
        target = token_shape if axes == 1 else (axes,) + token_shape
        try:
            array = np.broadcast_to(array, target)
        except ValueError:
            expected = f"{token_shape} (one position per token)"
            if num_axes > 1:
                expected += f" or {(num_axes,) + token_shape} (one per token and axis)"
            raise invalid(
                "positions", f"expected shape {expected} or one that broadcasts to it, got {array.shape}"
            ) from None
    if check_tokens is not None:
        check_tokens(array.size // axes)
    return _contiguous(array, dtype).reshape(-1), axes


def _contiguous(array, dtype):
    """`array` as C-contiguous `dtype`: itself when it already is, else a copy. Broadcasting to the
    tokens of a tensor with zero strides can ask for far more positions than any real call has."""
    if array.flags.c_contiguous and array.dtype == dtype:
        return array
    need = check_size("positions", f"{array.size} positions", array.size * dtype.itemsize, f"a contiguous {dtype} copy")
    return allocating("positions", need, lambda: np.ascontiguousarray(array, dtype=dtype))


def _layout_and_tokens(q, layout, name="q"):
    """The layout name for q (defaulted by its dimension count) and the shape of its token dims;
    errors name the tensor `name`."""
    ndim = getattr(q, "ndim", None)
    if ndim not in _LAYOUTS:
        raise invalid(name, f"expected 3 or 4 dimensions (see layout), got {ndim}")
    layout = layout or _LAYOUTS[ndim][0]
    if layout not in _LAYOUTS[ndim]:
        raise invalid("layout", f"expected one of {_LAYOUTS[ndim]} for a {ndim}-d {name}, got {layout!r}")
    return layout, tuple(q.shape[layout.index(axis)] for axis in "bs" if axis in layout)


def _readable(x):
    # A torch tensor that requires grad cannot be exported through DLPack; reading it through a
    # detached alias (same memory) is what an out-of-place rotation wants.
    return x.detach() if _torch_tensor(x) and x.requires_grad else x


def _writable(x, name):
    if _torch_tensor(x) and x.requires_grad:
        raise invalid(
            name,
            "requires grad; rotate() writes outside autograd. Use rotary.torch.apply_rotary for a "
            "differentiable rotation, or pass a tensor that does not require grad",
        )
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        raise invalid(name, "is read-only; rotate() writes into it (in place unless q_out=/k_out= is given)")
    return x


def _targets(q, k, q_out, k_out):
    """The tensors a call writes: q_out (else q) and k_out (else k, None without k), each checked
    writable; errors name the argument."""
    if k is None and k_out is not None:
        raise invalid("k_out", "given without k")
    q_target = _writable(q if q_out is None else q_out, "q" if q_out is None else "q_out")
    if k is None:
        return q_target, None
    return q_target, _writable(k if k_out is None else k_out, "k" if k_out is None else "k_out")


def _mark_modified(x):
    # Memory written through DLPack bypasses PyTorch's version counter; bump it so that autograd
    # still notices when a tensor it saved for a backward pass was overwritten.
    if _torch_tensor(x):
        sys.modules["torch"].autograd.graph.increment_version(x)


class Rope:
    """A RoPE configuration with its frequencies, ready to rotate queries and keys.

    Parameters
    ----------
    config : RopeConfig, Mapping, str or os.PathLike
        A :class:`RopeConfig`, or a model config read with :func:`config_from_dict` /
        :func:`config_from_file`: a dict, a transformers config object, the path of a
        ``config.json``, or a bundled configuration's name such as ``"llama-3.1-8b"``
        (:func:`builtin_names`). An existing path is read as a file even where a built-in has the
        same name.
    angle_mode : {"hf", "exact"}
        ``"hf"``: angle = float32(position) * theta in float32, float32 cos/sin, times the attention
        factor in float32, as transformers computes them. ``"exact"``: the angle from the exact
        product reduced in float64, cos/sin rounded once to float32.
    cache_positions : int
        Precompute cos/sin for positions ``[0, cache_positions)``; values never depend on it. The
        cache takes ``cache_positions * rotary_dim * 4`` bytes; at most 2**25 positions and 64 GiB
        (``include/rotary/limits.h``), else :class:`rotary.Error` names the bytes it would need.
    inv_freq : array_like of float32, shape (rotary_dim // 2,), optional
        Use these inverse frequencies for every call instead of the config's (for example another
        engine's float32 theta, to reproduce it bit for bit). The config still gives head_dim,
        rotary_dim and the layout; dynamic NTK and LongRoPE no longer switch per call.
    attention_factor : float, optional
        With ``inv_freq``: the factor multiplying cos and sin. Defaults to the config's own (YaRN
        and LongRoPE have one; 1 otherwise).
    layer_type : str, optional
        When ``config`` is a dict or path with one RoPE per layer type.
    vision : bool
        When ``config`` is a dict or path: the vision tower's 2D RoPE instead of the text model's.
    max_threads : int
        Threads for one large call: 0 uses every hardware thread, 1 stays on the caller's thread;
        at most 4096. The GIL is released while rotary computes.

    Notes
    -----
    The tensors :meth:`rotate` accepts: float32, float16 or bfloat16; NumPy arrays or any DLPack
    tensor on the CPU (PyTorch); arbitrary strides as long as head_dim is contiguous. Nothing is ever
    copied: a tensor rotary cannot address raises :class:`rotary.Error` (a ValueError). CUDA torch
    tensors run on the CUDA backend when the extension was built with it (nvcc present at build
    time; ``rotary._rotary.has_cuda_backend()``), on the current stream, without synchronising;
    otherwise they raise :class:`rotary.Error`.
    """

    def __init__(
        self,
        config,
        angle_mode="hf",
        cache_positions=0,
        inv_freq=None,
        attention_factor=None,
        *,
        layer_type=None,
        vision=False,
        max_threads=0,
    ):
        if isinstance(config, (str, os.PathLike)):
            config = config_from_file(config, layer_type, vision=vision)
        elif not isinstance(config, _rotary.RopeConfig):
            config = config_from_dict(config, layer_type, vision=vision)
        if inv_freq is not None:
            if _torch_tensor(inv_freq):
                inv_freq = inv_freq.detach().cpu().numpy()
            inv_freq = np.asarray(inv_freq)
            if inv_freq.ndim != 1:
                raise invalid("inv_freq", f"expected a 1-d array, got shape {inv_freq.shape}")
            if inv_freq.dtype != np.float32:
                raise invalid(
                    "inv_freq",
                    f"expected float32 (the frequencies a model uses are float32 values), got {inv_freq.dtype}",
                )
            inv_freq = inv_freq.tolist()  # each float32 exactly, as a Python float
        # Sizes are checked against rotary/limits.h by the core, which names the bytes they need.
        self._rope = _rotary.Rope(
            config,
            angle_mode,
            integer(cache_positions, "cache_positions"),
            inv_freq,
            None if attention_factor is None else float(attention_factor),
            integer(max_threads, "max_threads", 0, MAX_THREADS),
        )

    @classmethod
    def from_gguf(cls, path, context_length=None, **options):
        """The rotation llama.cpp applies to the GGUF file ``path``: its architecture's pairing, its
        ``<arch>.rope.*`` keys and factor tensors (:func:`rotary.gguf.rope_config`). ``options``
        are the constructor's (``angle_mode``, ``cache_positions``, ``max_threads``).

        For architectures whose Q/K rows llama.cpp's converter reordered (Llama and kin:
        ``rotary.gguf.rope_config(path).qk_rows_permuted``), this rotation applies to the file's
        reordered heads, as llama.cpp applies it; it pairs adjacent channels where the original
        checkpoint pairs halves.
        """
        from .gguf import rope_config  # the gguf package is optional: imported when asked for

        return cls(rope_config(path, context_length).config, **options)

    def __repr__(self):
        return f"Rope({self.config!r}, angle_mode='{self.angle_mode}', attention_factor={self.attention_factor!r})"

    @property
    def config(self):
        """RopeConfig: the configuration."""
        return self._rope.config

    @property
    def inv_freq(self):
        """numpy.ndarray of float32, shape (rotary_dim // 2,): the inverse frequencies theta_i
        (at initialisation, as transformers builds them; see :meth:`frequencies_for`)."""
        return np.array(self._rope.inv_freq, dtype=np.float32)

    @property
    def attention_factor(self):
        """float: the factor multiplying cos and sin (YaRN's / LongRoPE's attention scaling)."""
        return self._rope.attention_factor

    @property
    def head_dim(self):
        """int: the size of one query/key head."""
        return self._rope.head_dim

    @property
    def rotary_dim(self):
        """int: the number of rotated channels (even, <= head_dim)."""
        return self._rope.rotary_dim

    @property
    def num_axes(self):
        """int: position components per token (3 for M-RoPE, 2 for 2D vision RoPE, else 1)."""
        return self._rope.num_axes

    @property
    def layout(self):
        """str: ``"half_split"`` (channel j pairs with j + rotary_dim/2) or ``"interleaved"`` (2j with 2j+1)."""
        return self._rope.config.layout

    @property
    def angle_mode(self):
        """str: ``"hf"`` or ``"exact"``."""
        return self._rope.angle_mode

    def frequencies_for(self, positions):
        """The frequencies a call with these positions uses.

        Dynamic NTK and LongRoPE follow transformers' per-call rule with sequence length
        ``max(positions) + 1``; other types return the initial set.

        Parameters
        ----------
        positions : array_like of int, any shape

        Returns
        -------
        inv_freq : numpy.ndarray of float32, shape (rotary_dim // 2,)
        attention_factor : float
        """
        inv_freq, factor = self._rope.frequencies_for(*_as_positions(positions, None, self.num_axes))
        return np.array(inv_freq, dtype=np.float32), factor

    def cos_sin(self, positions):
        """cos and sin of every pair's angle, attention factor included, as the kernels use them.

        Parameters
        ----------
        positions : array_like of int, any shape P

        Returns
        -------
        cos, sin : numpy.ndarray of float32, shape P + (rotary_dim // 2,)
            One column per pair (transformers' tables repeat them: ``cat((cos, cos), -1)``).

        Raises
        ------
        rotary.Error
            For more than 2**25 positions (``rotary::kMaxTablePositions``) or tables past 64 GiB,
            naming the bytes they would need.
        """
        if _torch_tensor(positions):
            positions = positions.detach().cpu().numpy()
        flat, axes = _as_positions(positions, None, self.num_axes, self._table_need)
        shape = np.shape(positions)[1:] if axes > 1 else np.shape(positions)
        half = self.rotary_dim // 2
        rows = flat.size // axes
        cos, sin = allocating(
            "positions",
            self._table_need(rows),
            lambda: (np.empty((rows, half), dtype=np.float32), np.empty((rows, half), dtype=np.float32)),
        )
        self._rope.cos_sin(flat, axes, cos, sin)
        return cos.reshape(*shape, half), sin.reshape(*shape, half)

    def _table_need(self, rows):
        """What cos/sin tables of `rows` positions need, in words; rotary.Error past the limits."""
        half = self.rotary_dim // 2
        return check_size(
            "positions",
            f"{rows} positions",
            rows * half * 8,
            f"cos/sin tables ({half} pairs x 2 x 4 bytes each)",
            rows,
            (MAX_TABLE_POSITIONS, "positions", "kMaxTablePositions"),
        )

    def rotate(self, q, positions, k=None, *, q_out=None, k_out=None, inverse=False, layout=None):
        """Rotates q (and k) by their positions: in place, or into ``q_out`` / ``k_out``.

        Parameters
        ----------
        q : numpy.ndarray or DLPack tensor (torch.Tensor), float32 / float16 / bfloat16
            Shape (seq, heads, head_dim) or (batch, seq, heads, head_dim); see ``layout``. Any
            strides with a contiguous head_dim: slices, transposed views and the Q part of a packed
            QKV buffer are rotated where they lie.
        positions : array_like or torch.Tensor of int
            One position per token: shape (seq,) or (batch, seq), or anything that broadcasts to it
            (e.g. (seq,) for every batch entry). Negative positions rotate backwards. For a
            multi-axis RoPE (:attr:`num_axes` > 1) also (num_axes, seq) or (num_axes, batch, seq),
            transformers' M-RoPE ``position_ids``: one component per axis (see
            :func:`rotary.mrope_positions`); one position per token means the same on every axis.
        k : like q, optional
            Keys, same batch and seq sizes as q; the head count may differ (GQA/MQA).
        q_out, k_out : like q, optional
            Outputs of q's / k's shape and dtype, disjoint from the inputs; channels past
            rotary_dim are copied. Without them the rotation is in place.
        inverse : bool
            Apply the transposed rotation (angle -theta; the inverse when the attention factor is
            1): the backward pass of a forward rotation.
        layout : {"shd", "hsd", "bshd", "bhsd"}, optional
            The order of q's dimensions (b: batch, s: sequence, h: heads, d: head_dim). Defaults to
            "shd" for 3-d and "bshd" for 4-d tensors; transformers' (batch, heads, seq, head_dim)
            is "bhsd".

        Returns
        -------
        q_out, or (q_out, k_out) when k is given
            The rotated tensors: the inputs themselves in place, else q_out / k_out.

        Raises
        ------
        rotary.Error
            (a ValueError) naming the argument, before anything is written: a dtype other than
            f32/f16/bf16, a non-CPU tensor, a head_dim other than the config's, a head_dim that is
            not contiguous, a read-only or grad-requiring output, overlapping outputs, positions
            that do not match the tokens.
        """
        # The common call (NumPy arrays or CPU torch tensors, plain positions) in one C++ call;
        # None when any argument needs the general path below, which checks and reports as always.
        done = self._rope.rotate_direct(q, positions, k, q_out, k_out, inverse, layout)
        if done is not None:
            return done
        layout, token_shape = _layout_and_tokens(q, layout)
        if _torch_tensor(q) and q.is_cuda:
            return self._rotate_cuda(q, positions, k, q_out, k_out, inverse, layout, token_shape)
        flat_positions, axes = _as_positions(positions, token_shape, self.num_axes)
        q_target, k_target = _targets(q, k, q_out, k_out)
        self._rope.rotate(
            _readable(q),
            q_target,
            None if k is None else _readable(k),
            k_target,
            flat_positions,
            axes,
            layout,
            bool(inverse),
        )
        for target in (q_target, k_target):
            _mark_modified(target)
        return q_target if k is None else (q_target, k_target)

    def _rotate_cuda(self, q, positions, k, q_out, k_out, inverse, layout, token_shape):
        """rotate() for CUDA tensors: the CUDA backend, on the current stream, without a sync.

        Positions move to q's device (a host array is copied there; a CUDA tensor is used where it
        lies). Frequencies that follow the sequence length (dynamic NTK, LongRoPE) need
        max(positions) + 1 on the host: taken from host positions, or read back from device ones
        (that one case synchronises).
        """
        torch = sys.modules["torch"]
        if not _rotary.has_cuda_backend():
            raise invalid("q", "is on a CUDA device; this build of rotary has no CUDA backend (no copy is made)")
        axes = 1
        if _torch_tensor(positions) and positions.is_cuda:
            if positions.dtype not in (torch.int32, torch.int64):
                raise invalid("positions", f"expected int32 or int64, got {positions.dtype}")
            device_positions = positions
            if (
                self.num_axes > 1
                and device_positions.dim() == len(token_shape) + 1
                and device_positions.shape[0] == self.num_axes
            ):
                axes = self.num_axes
            target = token_shape if axes == 1 else (axes,) + tuple(token_shape)
            try:
                device_positions = device_positions.expand(target)
            except RuntimeError:
                raise invalid(
                    "positions",
                    f"expected shape {tuple(token_shape)} or one that broadcasts to it, got {tuple(positions.shape)}",
                ) from None
            device_positions = device_positions.contiguous().reshape(-1)
            sequence_length = 0
            if self._rope.length_dependent and device_positions.numel():
                sequence_length = int(device_positions.max().item()) + 1
        else:
            flat, axes = _as_positions(positions, token_shape, self.num_axes)
            sequence_length = int(flat.max()) + 1 if flat.size else 0
            device_positions = torch.from_numpy(flat).to(q.device)
        q_target, k_target = _targets(q, k, q_out, k_out)
        with torch.cuda.device(q.device):
            stream = torch.cuda.current_stream(q.device).cuda_stream
            self._rope.rotate_cuda(
                _readable(q),
                q_target,
                None if k is None else _readable(k),
                k_target,
                device_positions,
                axes,
                layout,
                bool(inverse),
                sequence_length,
                int(stream),
            )
        for target in (q_target, k_target):
            _mark_modified(target)
        return q_target if k is None else (q_target, k_target)
