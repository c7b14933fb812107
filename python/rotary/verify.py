"""rotary.verify: probe any RoPE implementation from outside, say what it computes and what is wrong.

RoPE bugs fail silently: a model with the wrong pairing, base or table precision still runs, it
just writes worse text. :func:`verify` treats an implementation as a black box ``fn(q, k,
positions) -> (q', k')`` and recovers, from its outputs alone:

- whether it is a rotation at all: linear in the input, no additive term, identity at position 0,
  orthogonal 2x2 blocks, norm independent of the position, scores <f(q, m), f(k, n)> that depend
  only on n - m, and K rotated like Q;
- which channels pair up (half-split, interleaved, or the explicit list), rotary_dim and the
  channels that pass through;
- the angle of every pair at every probed position, hence theta_i, and which published scheme (with
  which parameters) reproduces them, plus the attention factor;
- precision: the worst angle error against a float64 oracle per decade of positions.

How. Probing with the unit vectors e_j at position p returns the columns of the linear map M(p)
(f(e_j) - f(0), the zero vector separately revealing an additive term); random vectors check that
M(p) really predicts f. Channels whose columns couple form the pairs; each pair's 2x2 block gives an
angle (atan2) and a scale (the attention factor). Angles at positions 0, 1, 2, ... 10 and then
growing by at most 2.5x unwrap without aliasing to theta_i (integer positions cannot tell theta from
theta + 2 pi, so theta is reported in (-pi, pi]); a least-squares line through all positions gives
theta_i and any position offset. Larger positions are probed in separate calls, each with the small
anchor positions too, so frequencies that depend on the sequence length (dynamic NTK, LongRoPE) are
measured per call.

Given an expected configuration, every difference becomes one sentence a user can act on.
"""

import os
from collections.abc import Mapping

import numpy as np

from . import _rotary
from ._builtins import builtin_source
from ._config import config_from_dict, config_from_file
from ._errors import invalid
from ._limits import integer
from ._rope import Rope
from ._verify_compare import compare
from ._verify_fit import fit_family
from ._verify_probe import COUPLING, Prober
from ._verify_report import Check, Finding, PrecisionRow, VerifyReport

__all__ = ["verify"]

# The verifier's core (rotary/verify.h): the line fit, the scheme fit, the diagnoses, the precision
# table and their tolerances, shared with `rotary verify`.
_core = _rotary.verifier
# Positions of the first call: consecutive up to 10 (unwrapping), then steps of at most 2.5x.
_ANCHORS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 20, 32, 50, 64, 100, 128, 200, 256, 500, 1000)
_DTYPES = ("float64", "float32", "float16", "bfloat16")


def verify(
    fn,
    head_dim=None,
    *,
    expected=None,
    layer_type=None,
    layout="bhsd",
    framework=None,
    dtype="float32",
    max_position=None,
    precision=None,
    seed=0,
    name=None,
):
    """Probes a RoPE implementation and reports what it computes, and what is wrong with it.

    Parameters
    ----------
    fn : callable
        ``fn(q, k, positions)`` returning ``(q_rotated, k_rotated)``; it may also return only the
        rotated q (K is then not checked) or None after rotating in place. q and k are torch
        tensors (or NumPy arrays, see ``framework``) in ``layout``, positions an int64 tensor of
        shape (1, seq) (4-d layouts) or (seq,) (3-d). Wrap other calling conventions with
        :func:`rotary.adapt_hf` or :func:`rotary.adapt_meta`.
    head_dim : int, optional
        The size of one head; defaults to the expected config's.
    expected : str, os.PathLike, Mapping, RopeConfig or Rope, optional
        What the implementation should compute: a config.json path, a built-in name
        (:func:`rotary.builtin_names`; an existing path wins, as in
        :func:`rotary.config_from_file`), a config dict or transformers config object, or a
        :class:`rotary.Rope` / :class:`rotary.RopeConfig`. Every difference becomes a mismatch.
    layer_type : str, optional
        For expected configs with one RoPE per layer type.
    layout : {"bhsd", "bshd", "shd", "hsd"}
        The dimension order fn takes (b: batch, h: heads, s: sequence, d: head_dim).
    framework : {"torch", "numpy"}, optional
        The tensor type given to fn; torch when it is installed.
    dtype : {"float32", "float16", "bfloat16", "float64"}
        The dtype of the probe tensors.
    max_position : int, optional
        The largest position probed. Default: max_position_embeddings - 1 of the expected config
        (capped at 999999), else 99999. Positions are probed per decade, one call each; a call that
        raises ends the probing there (reported, e.g. a table with fewer rows).
    precision : {"float32", "float16", "bfloat16"}, optional
        The storage precision the cos/sin may have; errors beyond it are mismatches. Defaults to
        ``dtype`` (float32 for float64 probes).
    seed : int
        Seed of the random probe vectors.
    name : str, optional
        What to call fn in the report (default: its ``__name__``).

    Returns
    -------
    VerifyReport
        ``print(report)`` for the human report, ``report.matches``, ``report.to_dict()``.

    Raises
    ------
    rotary.Error
        (a ValueError) naming the argument: no head_dim, an unknown layout/dtype/framework, fn
        returning tensors of another shape.
    """
    reference, summary = _expected_rope(expected, layer_type)
    if head_dim is None:
        if reference is None:
            raise invalid("head_dim", "required when no expected config is given")
        head_dim = reference.head_dim
    # The probes are tensors of head_dim channels: bounded like a config's head_dim.
    head_dim = integer(head_dim, "head_dim", 2, 1 << 16)
    if reference is not None and reference.head_dim != head_dim:
        raise invalid("head_dim", f"{head_dim} differs from the expected config's head_dim {reference.head_dim}")
    if dtype not in _DTYPES:
        raise invalid("dtype", f"expected one of {sorted(_DTYPES)}, got {dtype!r}")
    precision = precision or ("float32" if dtype == "float64" else dtype)
    if precision not in ("float32", "float16", "bfloat16"):
        raise invalid("precision", f"expected float32, float16 or bfloat16, got {precision!r}")
    if max_position is None:
        context = reference.config.max_position_embeddings if reference is not None else 0
        max_position = min(context - 1, 999_999) if context > 0 else 99_999
    max_position = int(max_position)
    if max_position < 2:
        raise invalid("max_position", f"expected >= 2, got {max_position}")

    prober = Prober(fn, head_dim, layout, framework, dtype, seed)
    structure_positions = [p for p in _ANCHORS if p <= max_position]
    first = prober.call(structure_positions)
    report = VerifyReport(
        name=name or getattr(fn, "__name__", type(fn).__name__),
        head_dim=head_dim,
        dtype=dtype,
        framework=prober.framework,
        positions=list(first.positions),
        expected=summary,
    )
    _Analysis(report, prober, first, reference, max_position, precision).run()
    return report


# ---- the expected configuration ---------------------------------------------------------------


def _expected_rope(expected, layer_type):
    """(Rope or None, summary dict or None) for the `expected` argument."""
    if expected is None:
        return None, None
    label = None
    if isinstance(expected, Rope):
        rope = expected
    elif isinstance(expected, _rotary.RopeConfig):
        rope = Rope(expected)
    elif isinstance(expected, (str, os.PathLike)):
        path = os.fspath(expected)
        try:
            rope = Rope(config_from_file(expected, layer_type))
        except OSError as e:  # neither a file nor a built-in (the message lists them), or unreadable
            raise invalid("expected", str(e)) from None
        label = path if os.path.exists(path) else f"{path} ({builtin_source(path)['model']})"
    elif isinstance(expected, Mapping) or hasattr(expected, "to_dict"):
        rope = Rope(config_from_dict(expected, layer_type))
    else:
        raise invalid(
            "expected",
            f"expected a config path, built-in name, dict, RopeConfig or Rope, got {type(expected).__name__}",
        )
    c = rope.config
    summary = {
        "label": label or f"the expected config ({c.rope_type})",
        "rope_type": c.rope_type,
        "rope_theta": float(c.rope_theta),
        "head_dim": int(rope.head_dim),
        "rotary_dim": int(rope.rotary_dim),
        "layout": c.layout,
        "attention_factor": float(rope.attention_factor),
        "max_position_embeddings": int(c.max_position_embeddings),
    }
    if layer_type:
        summary["layer_type"] = layer_type
    return rope, summary


# ---- analysis ----------------------------------------------------------------------------------


def _flat(values):
    return np.ascontiguousarray(values, dtype=np.float64).ravel()


class _Analysis:
    def __init__(self, report, prober, first, reference, max_position, precision):
        self.report, self.prober, self.first = report, prober, first
        self.reference, self.max_position, self.precision = reference, max_position, precision
        self.d = prober.head_dim

    # The noise level of everything measured: the probe dtype, or the cos/sin storage if coarser.
    def noise(self):
        return _core.measurement_noise(self.prober.dtype, self.table_quantization)

    def run(self):
        r = self.report
        q = self.first.q
        positions = self.first.positions
        self.table_quantization = None
        source = self.prober.detect_permutation(self.first)
        if source is not None:
            moved = [(j, int(c)) for j, c in enumerate(source) if c != j]
            shown = ", ".join(f"{j}->{c}" for j, c in moved[:6])
            self.add(
                "warning",
                "permutation",
                f"the output channels are permuted: at position 0 input channel j comes out at "
                f"another channel ({shown}{', ...' if len(moved) > 6 else ''}; {len(moved)} channels "
                "moved). Harmless when q and k share it and nothing reads the channels in their "
                "original order (transformers' DeepSeek-V3 interleaved apply does this); the "
                "rest of this report describes the map with the permutation undone",
            )
        self.pairs, self.pass_through, mixing = self._pairing(q.M)
        if self.pairs:
            c, s = self._raw_cos_sin(q.M, self.pairs)
            self.table_quantization = _core.quantized_to(_flat(c[positions > 0]), _flat(s[positions > 0]))
        noise = self.noise()
        tol = max(1e-5, 8 * noise)
        self.tol = tol
        checks = r.checks
        # Linear: M(p) r + f(0, p) predicts f(r, p) for random r (this also covers additivity and
        # homogeneity: r0 + r1 and 2.5 r2 are among the probes).
        predicted = np.einsum("sij,rj->sri", q.M, q.random_in) + q.additive[:, None, :]
        scale = np.linalg.norm(q.random_in, axis=1)[None, :]
        resid = np.linalg.norm(q.random_out - predicted, axis=2) / scale
        worst_s, _ = np.unravel_index(np.argmax(resid), resid.shape)
        checks.append(
            Check(
                "linear",
                bool(resid.max() <= tol),
                float(resid.max()),
                tol,
                f"at position {positions[worst_s]}" if resid.max() > tol else "",
            )
        )
        additive = np.linalg.norm(q.additive, axis=1)
        a_worst = int(np.argmax(additive))
        checks.append(
            Check(
                "no additive term",
                bool(additive.max() <= tol),
                float(additive.max()),
                tol,
                f"|f(0, {positions[a_worst]})| = {additive[a_worst]:.3g}" if additive.max() > tol else "",
            )
        )
        self._pairs_and_angles(mixing)
        self._identity_check()
        self._norm_check()
        self._relative_check()
        r.is_rotation = all(c.passed for c in checks)
        self._k_check()
        self._findings_structure(mixing)
        self.theta_ok = False
        if self.reference is not None:
            compare(self)
        self._precision()

    # -- pairs ----------------------------------------------------------------------------------
    def _pairing(self, M):
        """(pairs [(a, b)], pass-through channels, {channel: coupled channels} for mixing ones)."""
        d = self.d
        off = np.abs(M).max(axis=0)  # (D, D): the largest |entry| over positions
        np.fill_diagonal(off, 0)
        col_scale = np.maximum(np.abs(M).max(axis=(0, 1)), 1e-30)
        coupled = off > COUPLING * col_scale[None, :]
        partners = {
            j: set(np.flatnonzero(coupled[:, j]).tolist()) | set(np.flatnonzero(coupled[j, :]).tolist())
            for j in range(d)
        }
        pairs, through, mixing = [], [], {}
        for j in range(d):
            p = partners[j]
            if not p:
                through.append(j)
            elif len(p) == 1:
                (i,) = p
                if partners[i] == {j}:
                    if j < i:
                        pairs.append((j, i))
                else:
                    mixing[j] = sorted(p)
            else:
                mixing[j] = sorted(p)
        return pairs, through, mixing

    @staticmethod
    def _raw_cos_sin(M, pairs):
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        return M[:, a, a], M[:, b, a]

    @staticmethod
    def _blocks(M, pairs):
        """Per pair and position: cos*scale, sin*scale and the deviation from a rotation's form."""
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        aa, ab, ba, bb = M[:, a, a], M[:, a, b], M[:, b, a], M[:, b, b]
        c = (aa + bb) / 2
        s = (ba - ab) / 2
        form = (np.abs(aa - bb) + np.abs(ab + ba)) / 2
        return c, s, form

    def _layout(self):
        """Name the pairing: (layout, rotary_dim, pair index of each pair)."""
        pairs, d = self.pairs, self.d
        if not pairs:
            return None, 0, []
        offsets = {b - a for a, b in pairs}
        if offsets == {1} and all(a % 2 == 0 for a, _ in pairs) and len(pairs) > 1:
            rotary_dim = max(b for _, b in pairs) + 1
            return "interleaved", rotary_dim, [a // 2 for a, _ in pairs]
        if len(offsets) == 1:
            (o,) = offsets
            if all(a < o for a, _ in pairs) and 2 * o <= d:
                return "half_split", 2 * o, [a for a, _ in pairs]
        return "other", 2 * len(pairs), list(range(len(pairs)))

    def _pairs_and_angles(self, mixing):
        r = self.report
        q = self.first.q
        positions = self.first.positions
        layout, rotary_dim, index = self._layout()
        r.layout, r.rotary_dim = layout, rotary_dim or None
        rotating = {c for pair in self.pairs for c in pair}
        r.pass_through = [c for c in range(self.d) if c not in rotating]
        if not self.pairs:
            return
        order = np.argsort(index)
        self.pairs = [self.pairs[i] for i in order]
        self.index = [index[i] for i in order]
        r.pairs = list(self.pairs)
        c, s, form = self._blocks(q.M, self.pairs)
        scale = np.hypot(c, s)
        self.form_error = float((form / np.maximum(scale, 1e-30)).max())
        angle = np.arctan2(s, c)
        n = rotary_dim // 2
        # Pairs of the layout that never rotate (theta 0) get angle 0 and scale of their diagonal.
        full_angle = np.zeros((positions.size, n))
        full_scale = np.ones((positions.size, n))
        idx = np.array(self.index)
        full_angle[:, idx] = angle
        full_scale[:, idx] = scale
        self.rotating_index = idx
        r.angles = full_angle
        self.scale = full_scale
        noise = self.noise()
        fit = _core.fit_angles("probe", positions, full_angle, _flat(scale), noise)
        self.residual = fit["residual"]
        r.attention_factor = fit["attention_factor"]
        # Position offset: the intercepts are delta * theta_i for one integer delta.
        r.position_offset = None if fit["offset"] is None else float(fit["offset"])
        self.constant_phase = fit["constant_phase"]
        r.theta = fit["theta"]
        r.theta_tolerance = fit["tolerance"]
        if layout != "other":
            length = int(positions.max()) + 1
            hint = self.reference.config.rope_theta if self.reference is not None else None
            r.fit = fit_family(np.abs(r.theta), r.theta_tolerance, self.d, rotary_dim, length, hint)

    # -- properties --------------------------------------------------------------------------------
    def _identity_check(self):
        r, q = self.report, self.first.q
        positions = self.first.positions
        if 0 not in positions:
            return
        s0 = int(np.flatnonzero(positions == 0)[0])
        M0 = q.M[s0]
        # Identity up to the attention factor on the rotating channels.
        target = np.eye(self.d)
        rotating = [c for p in self.pairs for c in p]
        if rotating and r.attention_factor:
            target[rotating, rotating] = r.attention_factor
        deviation = float(np.abs(M0 - target).max() + np.linalg.norm(q.additive[s0]))
        detail = ""
        if deviation > self.tol:
            if np.linalg.norm(q.additive[s0]) > self.tol:
                detail = f"an additive term is present: |f(0, 0)| = {np.linalg.norm(q.additive[s0]):.3g}"
            elif r.angles is not None and np.abs(r.angles[s0]).max() > self.tol:
                i = int(np.argmax(np.abs(r.angles[s0])))
                detail = f"pair {i} is rotated by {r.angles[s0, i]:.4g} rad at position 0"
            else:
                j = np.unravel_index(np.argmax(np.abs(M0 - target)), M0.shape)
                detail = f"M(0)[{j[0]}, {j[1]}] = {M0[j]:.4g}, expected {target[j]:.4g}"
        self.report.checks.append(Check("identity at position 0", deviation <= self.tol, deviation, self.tol, detail))

    def _norm_check(self):
        q = self.first.q
        positions = self.first.positions
        norms = np.linalg.norm(q.random_out, axis=2)  # (S, R)
        s0 = int(np.argmin(positions))
        ratio = np.abs(norms / np.maximum(norms[s0][None, :], 1e-30) - 1)
        worst = float(ratio.max())
        s, _ = np.unravel_index(np.argmax(ratio), ratio.shape)
        self.report.checks.append(
            Check(
                "norm independent of position",
                worst <= self.tol,
                worst,
                self.tol,
                f"|f(r, {positions[s]})| / |f(r, {positions[s0]})| = {1 + ratio.max():.6g}" if worst > self.tol else "",
            )
        )
        if self.pairs:
            self.report.checks.append(
                Check(
                    "orthogonal 2x2 blocks",
                    self.form_error <= self.tol,
                    self.form_error,
                    self.tol,
                    "a pair's block is not cos/-sin/sin/cos" if self.form_error > self.tol else "",
                )
            )

    def _relative_check(self):
        """<f(q, m), f(k, n)> for every (m, n) with the same n - m must agree."""
        first = self.first
        positions = first.positions
        qs = first.q.random_out[:, :2, :]
        ks = (first.k if first.k is not None else first.q).random_out[:, 2:4, :]
        scores = np.einsum("mrd,nrd->mnr", qs, ks)  # (S, S, 2)
        norm = np.linalg.norm(qs, axis=2)[:, None, :] * np.linalg.norm(ks, axis=2)[None, :, :]
        rel = scores / np.maximum(norm, 1e-30)
        worst, where = 0.0, ""
        diff = positions[None, :] - positions[:, None]
        for delta in np.unique(diff):
            m_idx, n_idx = np.nonzero(diff == delta)
            if m_idx.size < 2:
                continue
            group = rel[m_idx, n_idx]  # (G, 2)
            spread = float((group.max(axis=0) - group.min(axis=0)).max())
            if spread > worst:
                worst = spread
                where = f"n - m = {int(delta)}"
        tol = max(1e-3, 16 * self.noise())
        self.report.checks.append(
            Check(
                "scores depend only on n - m",
                worst <= tol,
                worst,
                tol,
                f"scores at {where} vary by {worst:.3g} of |q||k|" if worst > tol else "",
            )
        )

    def _k_check(self):
        r, first = self.report, self.first
        if first.k is None:
            r.k_status = "not checked: fn returned only q"
            return
        dq = np.abs(first.k.M - first.q.M).max() + np.abs(first.k.additive - first.q.additive).max()
        if dq <= self.tol:
            r.k_status = "rotated like Q" if self.pairs else "the same map as Q"
            return
        if first.k.unchanged:
            r.k_status = "NOT rotated: k comes back unchanged"
        else:
            s = int(np.argmax(np.abs(first.k.M - first.q.M).max(axis=(1, 2))))
            r.k_status = f"rotated differently from Q (worst difference {dq:.3g} at position {first.positions[s]})"

    # -- findings ------------------------------------------------------------------------------------
    def add(self, severity, topic, message):
        self.report.findings.append(Finding(severity, topic, message))

    def _findings_structure(self, mixing):
        r = self.report
        checks = {c.name: c for c in r.checks}
        if not checks["no additive term"].passed:
            self.add(
                "mismatch",
                "rotation",
                "not a rotation: an additive term is present (f(0, p) != 0, up to "
                f"{checks['no additive term'].worst:.3g} for a zero input): something is added "
                "to q instead of (or besides) rotating it",
            )
        if not checks["linear"].passed:
            self.add(
                "mismatch",
                "rotation",
                f"not linear in the input: f(r, p) differs from the unit-vector model by "
                f"{checks['linear'].worst:.3g} of |r| ({checks['linear'].detail})",
            )
        if mixing:
            j, with_ = next(iter(mixing.items()))
            self.add(
                "mismatch",
                "rotation",
                f"not pairwise: channel {j} mixes with channels {with_}; a rotary embedding "
                "rotates disjoint pairs of channels",
            )
        if r.pairs and not checks["orthogonal 2x2 blocks"].passed:
            self.add(
                "mismatch",
                "rotation",
                f"the 2x2 blocks are not rotations (deviation {self.form_error:.3g}): each pair "
                "must map (x, y) to (x cos - y sin, x sin + y cos)",
            )
        if not checks["norm independent of position"].passed and checks["no additive term"].passed:
            self.add(
                "mismatch",
                "rotation",
                "the norm changes with the position: " + checks["norm independent of position"].detail,
            )
        if not r.pairs and checks["no additive term"].passed and checks["linear"].passed and not mixing:
            self.add(
                "mismatch",
                "rotation",
                "no channel rotates: the output does not depend on the position through any pair of channels",
            )
        identity = checks.get("identity at position 0")
        if identity is not None and not identity.passed:
            offset = None if r.position_offset is None else int(r.position_offset)
            start = _core.start_finding("probe", offset, self.constant_phase) if self.pairs else None
            if start is not None:
                self.add(*start)
            else:
                self.add("mismatch", "positions", f"position 0 is not the identity: {identity.detail}")
        rel = checks["scores depend only on n - m"]
        if not rel.passed:
            self.add("mismatch", "rotation", "<f(q, m), f(k, n)> does not depend only on n - m: " + rel.detail)
        if r.pairs and r.theta is not None:
            straying = _core.linearity_finding(self.first.positions, self.residual, np.abs(r.theta), self.noise())
            if straying is not None:
                self.add(*straying)
            backwards = _core.direction_finding("probe", r.theta, r.theta_tolerance)
            if backwards is not None and r.layout != "other":
                self.add(*backwards)
        if r.k_status.startswith("NOT"):
            self.add(
                "mismatch",
                "k",
                "K is not rotated: k comes back unchanged at every position "
                "while q is rotated (apply the same rotation to k)",
            )
        elif r.k_status.startswith("rotated differently"):
            self.add("mismatch", "k", "K is " + r.k_status)
        elif r.k_status.startswith("not checked"):
            self.add("note", "k", "fn returned only q, so K was not checked")
        if r.attention_factor is not None and self.pairs:
            scale = _flat(self.scale[:, self.rotating_index])
            spread = _core.magnitude_finding("probe", scale, r.attention_factor, self.noise())
            if spread is not None:
                self.add(*spread)

    # -- precision -----------------------------------------------------------------------------------
    def _oracle(self, positions):
        """Float32 frequencies and offset of the reference model for one call, or None."""
        length_positions = np.asarray(positions)
        if self.reference is not None and self.theta_ok:
            theta, _ = self.reference.frequencies_for(length_positions)
            if theta.size == len(self.report.theta):
                return theta.astype(np.float64), "the expected config"
        fit = self.report.fit
        if fit is not None and fit.worst <= 1 and fit.rope_config is not None:
            try:
                theta, _ = Rope(fit.rope_config).frequencies_for(length_positions)
                return theta.astype(np.float64), "the identified scheme"
            except ValueError:
                pass
        return np.abs(self.report.theta), "the measured θ"

    def _precision(self):
        r = self.report
        if r.theta is None or not r.is_rotation and not r.pairs:
            return
        sign = np.sign(r.theta)
        sign[sign == 0] = 1
        theta_oracle, self.oracle_name = self._oracle(self.first.positions)
        self.oracle_theta = theta_oracle
        # A measured or fitted theta is itself uncertain by its tolerance's absolute part (the
        # relative part is inside the float32 bound); that uncertainty grows with the position.
        slack = None
        if self.oracle_name != "the expected config":
            slack = np.maximum(r.theta_tolerance - _core.THETA_RELATIVE * np.abs(r.theta), 0)
        self.measured_rows = []
        stopped = None
        for first, last in _core.decades(self.max_position):
            row = PrecisionRow(first, last)
            r.precision.append(row)
            if stopped:
                row.status = stopped
                continue
            if last < 1000:
                probe = self.first
            else:
                sample = [p for p in (first, 2 * first, 5 * first, last) if p <= last]
                try:
                    probe = self.prober.call([p for p in _ANCHORS if p <= last] + sample)
                except Exception as e:  # noqa: BLE001 - fn's own failure (e.g. a table with fewer rows) ends probing
                    stopped = f"fn failed: {type(e).__name__}"
                    row.status = f"fn failed: {type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"
                    self.add(
                        "warning",
                        "precision",
                        f"positions {first}-{last} could not be probed: fn raised {type(e).__name__}"
                        f"{': ' + str(e).splitlines()[0][:120] if str(e) else ''}",
                    )
                    continue
                if not self._per_call_theta(probe):
                    row.status = "θ differ"
                    continue
            c, s, _ = self._blocks(probe.q.M, self.pairs)
            angle = np.zeros((probe.positions.size, len(r.theta)))
            angle[:, self.rotating_index] = np.arctan2(s, c)
            theta_call, _ = self._oracle(probe.positions) if last >= 1000 else (theta_oracle, None)
            offset = int(r.position_offset or 0)
            measured = _core.measure_decade(
                first, last, probe.positions, angle, _flat(sign * theta_call), offset, self.precision, slack
            )
            self.measured_rows.append(measured)
            row.worst_error, row.position, row.pair = measured.worst_error, measured.position, measured.pair
            row.float32_bound, row.allowed = measured.float32_bound, measured.allowed
            row.status = "exceeds" if measured.exceeds else "ok"
            if measured.exceeds:
                row.exceeding = measured.exceeding
        self._precision_findings()

    def _per_call_theta(self, probe):
        """Frequencies can depend on the call's length (dynamic NTK, LongRoPE): fit this call's
        theta from its anchor positions and compare it with the first call's (no expected config)
        or with the expected config's for this call. Returns False when they differ."""
        r = self.report
        if r.theta is None:
            return True
        anchors = np.isin(probe.positions, self.first.positions)
        c, s, _ = self._blocks(probe.q.M, self.pairs)
        angle = np.zeros((probe.positions.size, len(r.theta)))
        angle[:, self.rotating_index] = np.arctan2(s, c)
        theta = np.abs(_core.fit_theta(probe.positions[anchors], angle[anchors]))
        reach = int(probe.positions.max())
        if self.reference is None:
            diff = np.abs(theta - np.abs(r.theta)) / r.theta_tolerance
            if diff.max() <= 1:
                return True
            if not any(f.topic == "length" for f in r.findings):
                i = int(np.argmax(diff))
                self.add(
                    "note",
                    "length",
                    f"the frequencies depend on the call's length: in a call reaching position "
                    f"{reach}, θ_{i} is {theta[i]:.6g} instead of {abs(r.theta[i]):.6g} "
                    "(dynamic NTK grows the base, LongRoPE switches to long factors past the "
                    "original context)",
                )
            return False
        if not self.theta_ok:
            return True
        expected, _ = self.reference.frequencies_for(probe.positions)
        expected = expected.astype(np.float64)
        if expected.size != theta.size:
            return True
        diff = np.abs(theta - expected) / r.theta_tolerance
        if diff.max() <= 1:
            return True
        if not any(f.topic == "length" for f in r.findings):
            i = int(np.argmax(diff))
            kind = r.expected["rope_type"]
            why = _rotary.explain_length_change(self.reference.config)
            self.add(
                "mismatch",
                "length",
                f"for a call reaching position {reach} (length {reach + 1}) θ differ from the "
                f"config's for that length: θ_{i} is {theta[i]:.7g}, the config's {kind} gives "
                f"{expected[i]:.7g}" + (f" ({why})" if why else ""),
            )
        return False

    def _precision_findings(self):
        exact_oracle = self.oracle_name == "the expected config" or self.noise() <= 2.0**-24
        findings = _core.precision_findings(
            self.measured_rows,
            "probe",
            self.prober.dtype,
            self.precision,
            self.table_quantization,
            self.oracle_name,
            exact_oracle,
        )
        for finding in findings:
            self.add(*finding)
