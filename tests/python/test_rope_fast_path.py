"""Rope.rotate's direct path: the common call read in one C++ call, without DLPack or NumPy copies.

NumPy arrays and CPU torch tensors with plain positions (a Python int or list, an int32/int64
array or tensor) take the direct path; anything else takes the general path. Both must give the
same bits, refuse the same inputs with the same messages before writing anything, and leave
PyTorch's autograd able to see the in-place write. The general path is forced here by a Rope
whose direct entry point always declines; a spy records that the direct one really ran.
"""

import numpy as np
import pytest
import torch

import rotary

# Llama-3.1-8B's attention shapes (32 Q heads, 8 KV heads, head_dim 128) and its RoPE scaling.
MODEL = "llama-3.1-8b"
Q_HEADS, K_HEADS, HEAD_DIM = 32, 8, 128


class _Spy:
    """Wraps the compiled Rope: counts the calls the direct path took, or (decline=True) declines
    every call so that Rope.rotate takes the general path."""

    def __init__(self, inner, decline=False):
        self._inner, self._decline, self.direct_calls = inner, decline, 0

    def rotate_direct(self, *args):
        if self._decline:
            return None
        done = self._inner.rotate_direct(*args)
        self.direct_calls += done is not None
        return done

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _rope(decline=False, config=MODEL):
    rope = rotary.Rope(config)
    rope._rope = _Spy(rope._rope, decline)
    return rope


@pytest.fixture(scope="module")
def direct():
    return _rope()


@pytest.fixture(scope="module")
def general():
    return _rope(decline=True)


def _tokens_shape(layout, batch, seq, heads):
    sizes = {"b": batch, "s": seq, "h": heads, "d": HEAD_DIM}
    return tuple(sizes[axis] for axis in layout)


def _qk(layout, batch, seq, dtype, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(_tokens_shape(layout, batch, seq, Q_HEADS)).astype(np.float32)
    k = rng.standard_normal(_tokens_shape(layout, batch, seq, K_HEADS)).astype(np.float32)
    if dtype in (np.float32, np.float16):
        return q.astype(dtype), k.astype(dtype)
    return torch.from_numpy(q).to(dtype), torch.from_numpy(k).to(dtype)


def _copy(x):
    return x.clone() if isinstance(x, torch.Tensor) else x.copy()


def _bits(x):
    if isinstance(x, torch.Tensor):
        return x.view(torch.int16).numpy() if x.element_size() == 2 else x.view(torch.int32).numpy()
    return x.view(np.int16 if x.itemsize == 2 else np.int32)


def _same_call(direct, general, q, k, positions, general_positions=None, **kwargs):
    """The same in-place call through both paths: equal bits, and the direct path was taken."""
    calls = direct._rope.direct_calls
    q1, k1, q2, k2 = _copy(q), _copy(k), _copy(q), _copy(k)
    direct.rotate(q1, positions, k1, **kwargs)
    general.rotate(q2, positions if general_positions is None else general_positions, k2, **kwargs)
    assert direct._rope.direct_calls == calls + 1, "the call did not take the direct path"
    np.testing.assert_array_equal(_bits(q1), _bits(q2))
    np.testing.assert_array_equal(_bits(k1), _bits(k2))
    assert not np.array_equal(_bits(q1), _bits(q)), "nothing was rotated"


DTYPES = [np.float32, np.float16, torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["shd", "hsd", "bshd", "bhsd"])
def test_direct_path_equals_general_path(direct, general, layout, dtype):
    batch, seq = (1, 5) if len(layout) == 3 else (3, 5)
    q, k = _qk(layout, batch, seq, dtype)
    token_shape = (seq,) if len(layout) == 3 else (batch, seq)
    positions = np.arange(np.prod(token_shape), dtype=np.int64).reshape(token_shape) + 123450
    _same_call(direct, general, q, k, positions, layout=layout)
    _same_call(direct, general, q, k, positions, layout=layout, inverse=True)


@pytest.mark.parametrize("layout", ["shd", "bshd"])
def test_decode_call_positions_in_every_form(direct, general, layout):
    # One token: transformers' (1, 1) position_ids, a list, an int, int32, a torch tensor.
    q, k = _qk(layout, 1, 1, np.float32)
    reference = np.array([123457], dtype=np.int64)
    forms = [123457, [123457], reference, reference.astype(np.int32), torch.tensor([123457]), np.array(123457)]
    forms += [reference.reshape(1, 1), torch.tensor([[123457]], dtype=torch.int32)] if layout == "bshd" else []
    for positions in forms:
        _same_call(direct, general, q, k, positions, reference)


def test_broadcast_and_strided_positions(direct, general):
    # (seq,) for every batch entry, an expanded torch tensor (stride 0), a reversed NumPy view.
    q, k = _qk("bhsd", 2, 6, torch.float32)
    full = np.tile(np.arange(6, dtype=np.int64), (2, 1))
    for positions in (np.arange(6), list(range(6)), torch.arange(6).expand(2, 6), np.arange(6)[::-1][::-1]):
        _same_call(direct, general, q, k, positions, full, layout="bhsd")
    reversed_view = np.arange(12, dtype=np.int64)[::-1].reshape(2, 6)
    _same_call(direct, general, q, k, reversed_view, reversed_view.copy(), layout="bhsd")


def test_out_of_place_equals_in_place(direct, general):
    q, k = _qk("bshd", 2, 3, np.float16)
    positions = np.array([[0, 1, 2], [7, 8, 9]])
    q_out, k_out = np.zeros_like(q), np.zeros_like(k)
    before = _copy(q), _copy(k)
    calls = direct._rope.direct_calls
    result = direct.rotate(q, positions, k, q_out=q_out, k_out=k_out)
    assert direct._rope.direct_calls == calls + 1
    assert result[0] is q_out and result[1] is k_out
    np.testing.assert_array_equal(q, before[0])  # the inputs are left as they were
    q_in_place, k_in_place = _copy(q), _copy(k)
    general.rotate(q_in_place, np.array(positions), k_in_place)
    np.testing.assert_array_equal(_bits(q_out), _bits(q_in_place))
    np.testing.assert_array_equal(_bits(k_out), _bits(k_in_place))


def test_torch_and_numpy_give_the_same_bits(direct):
    q, k = _qk("shd", 1, 4, np.float32)
    qt, kt = torch.from_numpy(q.copy()), torch.from_numpy(k.copy())
    direct.rotate(q, [5, 6, 7, 8], k)
    assert direct.rotate(qt, torch.tensor([5, 6, 7, 8]), kt) == (qt, kt)
    np.testing.assert_array_equal(qt.numpy(), q)
    np.testing.assert_array_equal(kt.numpy(), k)


def test_decode_call_matches_the_formula():
    # Plain RoPE (no scaling), half-split, written out: angle = float32(p) * theta_i in float32.
    config = {"rope_theta": 10000.0, "hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 64}
    rope = _rope(config=config)
    x = np.random.default_rng(3).standard_normal((1, 4, 16)).astype(np.float32)
    q = x.copy()
    rope.rotate(q, 41)
    assert rope._rope.direct_calls == 1
    inv_freq = (1.0 / (10000.0 ** (np.arange(0, 16, 2, dtype=np.float32) / 16))).astype(np.float32)
    angle = (np.float32(41) * inv_freq).astype(np.float64)
    x1, x2 = x[..., :8].astype(np.float64), x[..., 8:].astype(np.float64)
    expected = np.concatenate([x1 * np.cos(angle) - x2 * np.sin(angle), x2 * np.cos(angle) + x1 * np.sin(angle)], -1)
    np.testing.assert_allclose(q, expected, rtol=0, atol=2e-6)


# ------------------------------------------------------------------------------------------------
# Refusals: the same exception and message on both paths, before anything is written.


def _readonly(x):
    x.flags.writeable = False
    return x


def _refusals():
    q, k = _qk("shd", 1, 3, np.float32)
    qt, kt = torch.from_numpy(q), torch.from_numpy(k)
    packed = np.zeros((3, Q_HEADS + K_HEADS, HEAD_DIM), np.float32)
    return {
        "read-only q": (lambda: (_readonly(q.copy()), [1, 2, 3], k.copy()), {}, "q"),
        "requires_grad q": (lambda: (qt.clone().requires_grad_(), [1, 2, 3], kt.clone()), {}, "requires grad"),
        "requires_grad k": (lambda: (qt.clone(), [1, 2, 3], kt.clone().requires_grad_()), {}, "requires grad"),
        "float64 q": (lambda: (q.astype(np.float64), [1, 2, 3], k.copy()), {}, "float32, float16 or bfloat16"),
        "int32 tensor k": (lambda: (qt.clone(), [1, 2, 3], kt.to(torch.int32)), {}, "float32, float16 or bfloat16"),
        "head_dim 64": (lambda: (q[..., :64].copy(), [1, 2, 3], k[..., :64].copy()), {}, "head_dim"),
        "strided head_dim": (lambda: (np.repeat(q, 2, -1)[..., ::2], [1, 2, 3], k.copy()), {}, "contiguous"),
        "q overlaps k": (lambda: (packed[:, :Q_HEADS], [1, 2, 3], packed[:, Q_HEADS - 1 : Q_HEADS + 7]), {}, "k"),
        "reversed q (negative token stride)": (lambda: (q.copy()[::-1], [1, 2, 3], k.copy()), {}, "token_stride"),
        "k is q": (lambda: (lambda x: (x, [1, 2, 3], x))(q.copy()), {}, "k"),
        "two positions for three tokens": (lambda: (q.copy(), [1, 2], k.copy()), {}, "positions"),
        "positions (3, 1)": (lambda: (q.copy(), np.array([[1], [2], [3]]), k.copy()), {}, "positions"),
        "float positions": (lambda: (q.copy(), np.array([1.0, 2.0, 3.0]), k.copy()), {}, "positions"),
        "k of two tokens": (lambda: (q.copy(), [1, 2, 3], k[:2].copy()), {}, "k"),
        "read-only q_out": (lambda: (q.copy(), [1, 2, 3], k.copy()), {"q_out": _readonly(q.copy())}, "q_out"),
        "k_out without k": (lambda: (q.copy(), [1, 2, 3]), {"k_out": k.copy()}, "k_out"),
        "layout bhsd for 3-d": (lambda: (q.copy(), [1, 2, 3], k.copy()), {"layout": "bhsd"}, "layout"),
    }


REFUSALS = _refusals()


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_are_the_same_on_both_paths(direct, general, case):
    make, kwargs, fragment = REFUSALS[case]
    messages = []
    for rope in (direct, general):
        args = make()
        before = [_copy(a) for a in args if hasattr(a, "shape")]
        with pytest.raises(rotary.Error) as info:
            rope.rotate(*args, **kwargs)
        after = [a for a in args if hasattr(a, "shape")]
        for old, new in zip(before, after, strict=True):
            np.testing.assert_array_equal(np.asarray(_bits_or_values(old)), np.asarray(_bits_or_values(new)))
        messages.append((info.value.argument, str(info.value)))
    assert messages[0] == messages[1]
    assert fragment in messages[0][1] or fragment == messages[0][0], messages[0]


def _bits_or_values(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x


# ------------------------------------------------------------------------------------------------
# PyTorch's version counter


def test_autograd_notices_an_in_place_rotation_of_a_saved_tensor(direct):
    weight = torch.randn(1, Q_HEADS, HEAD_DIM, requires_grad=True)
    q, k = (torch.randn(1, heads, HEAD_DIM) for heads in (Q_HEADS, K_HEADS))
    loss = (weight * q).sum()  # saves q for the weight's gradient
    versions = q._version, k._version
    calls = direct._rope.direct_calls
    direct.rotate(q, [123457], k)
    assert direct._rope.direct_calls == calls + 1
    assert q._version > versions[0] and k._version > versions[1]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_outputs_versions_move_and_inputs_do_not(direct):
    q, k = (torch.randn(1, heads, HEAD_DIM) for heads in (Q_HEADS, K_HEADS))
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    versions = [t._version for t in (q, k, q_out, k_out)]
    direct.rotate(q, 7, k, q_out=q_out, k_out=k_out)
    assert [t._version for t in (q, k)] == versions[:2]
    assert q_out._version > versions[2] and k_out._version > versions[3]


def test_inference_mode_tensors_are_rotated(direct, general):
    with torch.inference_mode():
        q, k = (torch.randn(1, heads, HEAD_DIM) for heads in (Q_HEADS, K_HEADS))
    _same_call(direct, general, q, k, [99])
