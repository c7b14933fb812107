"""The result of :func:`rotary.verify`: what an implementation computes, and what is wrong with it.

``str(report)`` is the human report; ``report.to_dict()`` / ``report.to_json()`` the same facts for
machines. Every number in it was measured from the implementation's outputs, or computed by rotary
for the expected configuration; the tolerances used are part of the report.
"""

import json
import math
from dataclasses import dataclass, field

import numpy as np

from ._verify_fit import FamilyFit


@dataclass
class Check:
    """One property a rotary embedding must have, as measured.

    Attributes
    ----------
    name : str
        e.g. ``"linear"``, ``"identity at position 0"``.
    passed : bool
    worst : float
        The worst measured deviation (relative to the probe's norm unless the detail says otherwise).
    tolerance : float
        The largest deviation that passes.
    detail : str
        Where the worst deviation is, in words.
    """

    name: str
    passed: bool
    worst: float
    tolerance: float
    detail: str = ""

    def to_dict(self):
        return {
            "name": self.name,
            "passed": self.passed,
            "worst": _num(self.worst),
            "tolerance": _num(self.tolerance),
            "detail": self.detail,
        }


@dataclass
class PrecisionRow:
    """The worst angle error over one decade of positions, against the float64 oracle.

    The oracle angle is position * theta_i formed exactly in float64, theta_i being the float32
    frequencies of the reference model (the expected config, else the identified scheme).
    ``float32_bound`` is what an implementation that forms position * theta in float32 and
    evaluates cos/sin in float32 (transformers' own way) may reach there; ``allowed`` adds the
    storage precision the report was asked to accept.
    """

    first: int
    last: int
    worst_error: float | None = None
    position: int | None = None
    pair: int | None = None
    float32_bound: float = 0.0
    allowed: float = 0.0
    status: str = "not probed"  # ok | exceeds | theta differ | not probed | fn failed: ...
    # (position, pair, error, allowed) of the entry furthest past its bound, when status is exceeds
    exceeding: tuple | None = None

    @property
    def label(self):
        return f"{self.first}-{self.last}"

    def to_dict(self):
        return {
            "positions": [self.first, self.last],
            "worst_error": _num(self.worst_error),
            "position": self.position,
            "pair": self.pair,
            "float32_bound": _num(self.float32_bound),
            "allowed": _num(self.allowed),
            "status": self.status,
        }


@dataclass
class Finding:
    """One conclusion: ``severity`` is ``"mismatch"`` (the implementation is wrong, or differs from
    the expected config), ``"warning"`` (worth knowing, not a failure) or ``"note"``."""

    severity: str
    topic: str
    message: str

    def to_dict(self):
        return {"severity": self.severity, "topic": self.topic, "message": self.message}


@dataclass
class VerifyReport:
    """What :func:`rotary.verify` found. ``matches`` is True when no finding is a mismatch."""

    name: str
    head_dim: int
    dtype: str
    framework: str
    positions: list
    checks: list = field(default_factory=list)
    is_rotation: bool = False
    layout: str | None = None
    pairs: list = field(default_factory=list)
    rotary_dim: int | None = None
    pass_through: list = field(default_factory=list)
    theta: np.ndarray | None = None
    theta_tolerance: np.ndarray | None = None
    angles: np.ndarray | None = None
    attention_factor: float | None = None
    position_offset: float | None = None
    fit: FamilyFit | None = None
    k_status: str = "not checked"
    precision: list = field(default_factory=list)
    expected: dict | None = None
    findings: list = field(default_factory=list)

    @property
    def matches(self):
        """True when nothing is wrong (and, with an expected config, everything agrees with it)."""
        return not any(f.severity == "mismatch" for f in self.findings)

    def mismatches(self):
        """The messages of the mismatch findings."""
        return [f.message for f in self.findings if f.severity == "mismatch"]

    def describe_pairs(self):
        return describe_pairs(self.layout, self.rotary_dim, self.pairs)

    # ---- machine form ------------------------------------------------------------------------
    def to_dict(self):
        return {
            "name": self.name,
            "matches": self.matches,
            "head_dim": self.head_dim,
            "dtype": self.dtype,
            "framework": self.framework,
            "positions": [int(p) for p in self.positions],
            "is_rotation": self.is_rotation,
            "checks": [c.to_dict() for c in self.checks],
            "layout": self.layout,
            "pairs": [[int(a), int(b)] for a, b in self.pairs],
            "rotary_dim": self.rotary_dim,
            "pass_through": [int(c) for c in self.pass_through],
            "theta": None if self.theta is None else [float(t) for t in self.theta],
            "theta_tolerance": None if self.theta_tolerance is None else [float(t) for t in self.theta_tolerance],
            "angles": None if self.angles is None else [[float(a) for a in row] for row in self.angles],
            "attention_factor": _num(self.attention_factor),
            "position_offset": _num(self.position_offset),
            "fit": None if self.fit is None else self.fit.to_dict(),
            "k": self.k_status,
            "precision": [r.to_dict() for r in self.precision],
            "expected": self.expected,
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self, **kwargs):
        """``json.dumps(self.to_dict(), **kwargs)``."""
        return json.dumps(self.to_dict(), **kwargs)

    # ---- human form --------------------------------------------------------------------------
    def __str__(self):
        lines = [
            f"rotary verify: {self.name}",
            (
                f"  probed: head_dim {self.head_dim}, {self.dtype} {self.framework} tensors, positions "
                f"{_positions_text(self.positions)}"
            ),
            "",
            "What it computes",
        ]
        failed = [c for c in self.checks if not c.passed]
        if self.is_rotation:
            lines.append("  rotation          yes: " + ", ".join(c.name for c in self.checks))
        else:
            lines.append(
                "  rotation          NO: "
                + "; ".join(f"{c.name} fails ({c.detail})" if c.detail else f"{c.name} fails" for c in failed)
            )
            passed = [c.name for c in self.checks if c.passed]
            if passed:
                lines.append("                    holds: " + ", ".join(passed))
        if self.pairs:
            through = len(self.pass_through)
            lines.append(
                f"  pairs             {self.describe_pairs()}, rotary_dim {self.rotary_dim}, "
                f"{through} channel{'s' if through != 1 else ''} pass through"
            )
        if self.theta is not None and self.fit is not None:
            resid = (
                "" if not math.isfinite(self.fit.worst) else f" (worst pair at {self.fit.worst:.2g} x its tolerance)"
            )
            lines.append(f"  θ                 {self.fit.describe()}{resid}")
            lines.append(
                f"                    θ_0 {self.theta[0]:.8g}, θ_{len(self.theta) - 1} "
                f"{self.theta[-1]:.8g} rad/position"
            )
        if self.attention_factor is not None:
            lines.append(f"  attention factor  {self.attention_factor:.7g}")
        if self.position_offset:
            lines.append(
                f"  position offset   {int(self.position_offset):+d} "
                f"(position p is rotated as p{int(self.position_offset):+d})"
            )
        lines.append(f"  K                 {self.k_status}")
        rows = [r for r in self.precision if r.status != "not probed"]
        if rows:
            lines.append(
                "  precision         positions      worst angle error (rad)   "
                "at (position, pair)   float32 bound   status"
            )
            for r in rows:
                err = "-" if r.worst_error is None else f"{r.worst_error:.2e}"
                where = "-" if r.position is None else f"({r.position}, {r.pair})"
                lines.append(
                    f"                    {r.label:<14} {err:<25} {where:<21} {r.float32_bound:<15.2e} {r.status}"
                )
        lines.append("")
        if self.expected is not None:
            verdict = "MATCH" if self.matches else f"MISMATCH ({len(self.mismatches())})"
            e = self.expected
            lines.append(f"Against {e['label']}: {verdict}")
            lines.append(
                f"  expected          {e['rope_type']}, base {e['rope_theta']:.10g}, "
                f"{describe_pairs(e['layout'], e['rotary_dim'], None)}, rotary_dim {e['rotary_dim']}, "
                f"attention factor {e['attention_factor']:.7g}"
            )
        else:
            lines.append(
                "Verdict: "
                + ("a consistent rotary embedding" if self.matches else f"PROBLEMS ({len(self.mismatches())})")
            )
        marks = {"mismatch": "x", "warning": "!", "note": "-"}
        for f in self.findings:
            lines.append(f"  {marks[f.severity]} {f.message}")
        return "\n".join(lines)


def describe_pairs(layout, rotary_dim, pairs):
    """(i, i+64) / (2i, 2i+1) / an explicit list."""
    if layout == "half_split" and rotary_dim:
        return f"half-split (i, i+{rotary_dim // 2})"
    if layout == "interleaved":
        return "interleaved (2i, 2i+1)"
    if pairs:
        shown = ", ".join(f"({a}, {b})" for a, b in pairs[:6])
        return f"other pairs: {shown}{', ...' if len(pairs) > 6 else ''}"
    return "no pairs"


def _positions_text(positions):
    positions = sorted(int(p) for p in positions)
    if len(positions) <= 8:
        return ", ".join(map(str, positions))
    return f"{', '.join(map(str, positions[:5]))}, ... {positions[-1]} ({len(positions)} positions)"


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
