"""Probing a RoPE implementation: the calls :func:`rotary.verify` makes, and what it reads back.

One call rotates, at every requested position, a batch of probe vectors given as heads: the unit
vectors e_0 .. e_{d-1} (their outputs minus f(0) are the columns of the linear map M(p)), the zero
vector (its output is any additive term f(0, p)), and random vectors r0..r3 with r0 + r1 and
2.5 r2 (which check that M(p) predicts f, hence additivity and homogeneity). K gets the same unit
vectors and other random ones. Everything is read back in float64.
"""

import numpy as np

from ._errors import invalid

_LAYOUTS = ("bhsd", "bshd", "shd", "hsd")
# An off-pair entry of M(p) above this (relative to its column's largest entry) at some probed
# position couples two channels: a pair with theta 1e-8 turns 1e-5 rad by position 1000.
COUPLING = 2e-6


class Probe:
    """One call of fn: the linear map M(p) (columns f(e_j) - f(0)), the additive term f(0), and the
    random probes, for q and (when fn returns it) k."""

    def __init__(self, positions):
        self.positions = np.asarray(positions, dtype=np.int64)
        self.q = None
        self.k = None


class Side:
    def __init__(self, x_in, y_out, head_dim):
        d = head_dim
        self.additive = y_out[:, d, :]  # (S, D): f(0, p)
        self.M = np.transpose(y_out[:, :d, :] - self.additive[:, None, :], (0, 2, 1))  # (S, D, D)
        self.random_in = x_in[d + 1 :]  # (R, D)
        self.random_out = y_out[:, d + 1 :, :]  # (S, R, D)
        self.unchanged = bool(np.array_equal(y_out, np.broadcast_to(x_in, y_out.shape)))

    def unpermute(self, source):
        """Reorders the output channels: channel j becomes the output channel source[j]."""
        self.additive = self.additive[:, source]
        self.M = self.M[:, source, :]
        self.random_out = self.random_out[..., source]


class Prober:
    def __init__(self, fn, head_dim, layout, framework, dtype, seed):
        if not callable(fn):
            raise invalid("fn", f"expected a callable fn(q, k, positions), got {type(fn).__name__}")
        if layout not in _LAYOUTS:
            raise invalid("layout", f"expected one of {_LAYOUTS}, got {layout!r}")
        if framework is None:
            try:
                import torch  # noqa: F401

                framework = "torch"
            except ImportError:
                framework = "numpy"
        if framework not in ("torch", "numpy"):
            raise invalid("framework", f"expected 'torch' or 'numpy', got {framework!r}")
        if framework == "numpy" and dtype == "bfloat16":
            raise invalid("dtype", "NumPy has no bfloat16; use framework='torch'")
        self.fn, self.head_dim, self.layout = fn, head_dim, layout
        self.source = None  # an output channel permutation to undo, once detected
        self.framework, self.dtype = framework, dtype
        rng = np.random.default_rng(seed)
        d = head_dim
        # Heads: e_0 .. e_{d-1}, the zero vector, random r0..r3, r0 + r1 and 2.5 r2 (additivity and
        # homogeneity are then checked through the same linear model).
        self.inputs = []
        for _ in range(2):  # q, then k with other random vectors
            r = rng.standard_normal((4, d))
            self.inputs.append(np.concatenate([np.eye(d), np.zeros((1, d)), r, (r[0] + r[1])[None], 2.5 * r[2][None]]))

    def _tensor(self, heads_by_dim, seq):
        """(H, D) probes repeated over seq positions, in the fn's layout and framework."""
        h, d = heads_by_dim.shape
        hsd = np.broadcast_to(heads_by_dim[:, None, :], (h, seq, d))
        order = {"bhsd": (None, 0, 1, 2), "bshd": (None, 1, 0, 2), "hsd": (0, 1, 2), "shd": (1, 0, 2)}[self.layout]
        axes = [a for a in order if a is not None]
        array = np.ascontiguousarray(np.transpose(hsd, axes))
        if order[0] is None:
            array = array[None]
        if self.framework == "torch":
            import torch

            return torch.tensor(array, dtype=getattr(torch, self.dtype))
        return array.astype(self.dtype)

    def _to_hsd(self, x, name, shape):
        if self.framework == "torch" or hasattr(x, "detach"):
            if not hasattr(x, "detach"):
                raise invalid("fn", f"returned {type(x).__name__} for {name}, expected a torch.Tensor")
            x = x.detach().cpu()
            if x.is_complex():
                raise invalid("fn", f"returned a complex tensor for {name}")
            x = x.double().numpy()
        else:
            x = np.asarray(x, dtype=np.float64)
        if tuple(x.shape) != tuple(shape):
            raise invalid("fn", f"returned shape {tuple(x.shape)} for {name}, expected {tuple(shape)}")
        if self.layout in ("bhsd", "bshd"):
            x = x[0]
        return x if self.layout in ("bhsd", "hsd") else np.transpose(x, (1, 0, 2))

    def _read_back(self, tensor):
        # The inputs as fn saw them (rounded to the probe dtype), in float64.
        array = tensor.double().numpy() if hasattr(tensor, "detach") else tensor.astype(np.float64)
        hsd = self._to_hsd_input(array)
        return hsd[:, 0, :]

    def _to_hsd_input(self, array):
        if self.layout in ("bhsd", "bshd"):
            array = array[0]
        return array if self.layout in ("bhsd", "hsd") else np.transpose(array, (1, 0, 2))

    def call(self, positions):
        positions = np.asarray(sorted({int(p) for p in positions}), dtype=np.int64)
        seq = positions.size
        q = self._tensor(self.inputs[0], seq)
        k = self._tensor(self.inputs[1], seq)
        q_in, k_in = self._read_back(q), self._read_back(k)
        shape = tuple(q.shape)
        if self.framework == "torch":
            import torch

            pos = torch.tensor(positions)
        else:
            pos = positions.copy()
        if self.layout in ("bhsd", "bshd"):
            pos = pos[None]
        result = self.fn(q, k, pos)
        if result is None:  # rotated in place
            result = (q, k)
        if isinstance(result, (tuple, list)):
            if len(result) != 2:
                raise invalid("fn", f"returned {len(result)} values, expected (q, k)")
            q_out, k_out = result
        else:
            q_out, k_out = result, None
        probe = Probe(positions)
        y = self._to_hsd(q_out, "q", shape)  # (H, S, D)
        probe.q = Side(q_in, np.transpose(y, (1, 0, 2)), self.head_dim)
        if k_out is not None:
            yk = self._to_hsd(k_out, "k", shape)
            probe.k = Side(k_in, np.transpose(yk, (1, 0, 2)), self.head_dim)
        if self.source is not None:
            for side in (probe.q, probe.k):
                if side is not None:
                    side.unpermute(self.source)
        return probe

    def detect_permutation(self, probe):
        """When fn's output at position 0 is its input with the channels moved (a permutation, up
        to a scale), undo it in this and every later probe and return the permutation."""
        if 0 not in probe.positions:
            return None
        M0 = probe.q.M[int(np.flatnonzero(probe.positions == 0)[0])]
        magnitude = np.abs(M0)
        big = magnitude > 1e-3 * magnitude.max()
        if not (np.all(big.sum(axis=0) == 1) and np.all(big.sum(axis=1) == 1)):
            return None
        source = np.argmax(big, axis=0)  # input channel j comes out at channel source[j]
        if np.array_equal(source, np.arange(self.head_dim)):
            return None
        self.source = source
        for side in (probe.q, probe.k):
            if side is not None:
                side.unpermute(source)
        return source
