"""Comparing what :func:`rotary.verify` measured with an expected configuration: every difference
becomes one sentence that says what is wrong and what the config expects.

The diagnoses are the verifier's core (``rotary/verify.h``, shared with ``rotary verify``); this
module decides what a probed function can show (pairs too slow to see at the probed positions) and
adds the findings to the report.
"""

import numpy as np

from . import _rotary
from ._verify_probe import COUPLING
from ._verify_report import describe_pairs

_core = _rotary.verifier


def compare(a):
    r, ref, e = a.report, a.reference, a.report.expected
    rotary_dim_e, layout_e = e["rotary_dim"], e["layout"]
    if not r.pairs:
        return
    theta_e, af_e = ref.frequencies_for(a.first.positions)
    theta_e = np.ascontiguousarray(theta_e, dtype=np.float64)
    max_p = int(a.first.positions.max())
    # Pairs the expected config rotates too slowly to see at these positions look like
    # pass-through channels; they are not a mismatch.
    smallest_visible = 10 * COUPLING
    invisible = np.abs(theta_e) * max_p < smallest_visible
    if r.layout != layout_e:
        a.add(*_core.pairing_mismatch(pairs_phrase(r.layout, r.rotary_dim, r.pairs), layout_e, rotary_dim_e))
    # Interleaved pairs past the last visible one are indistinguishable from pass-through.
    hidden_tail = (
        r.layout == "interleaved"
        and r.rotary_dim is not None
        and r.rotary_dim < rotary_dim_e
        and bool(np.all(invisible[r.rotary_dim // 2 :]))
    )
    if r.rotary_dim != rotary_dim_e and not hidden_tail:
        measured = f"{r.rotary_dim} channels rotate ({describe_pairs(r.layout, r.rotary_dim, r.pairs)})"
        a.add(*_core.rotary_dim_mismatch(measured, rotary_dim_e, a.d))
    fit = r.fit.core if r.fit is not None else None
    a.theta_ok, finding = _core.diagnose_theta(
        np.abs(r.theta), r.theta_tolerance, theta_e, ref.config, r.rotary_dim, max_p + 1, fit, smallest_visible, max_p
    )
    if finding is not None:
        a.add(*finding)
    if r.attention_factor is not None:
        finding = _core.diagnose_attention_factor("probe", r.attention_factor, af_e, a.noise(), ref.config)
        if finding is not None:
            a.add(*finding)


def pairs_phrase(layout, rotary_dim, pairs):
    if layout in ("half_split", "interleaved"):
        return _core.pairs_phrase(layout, rotary_dim)
    return describe_pairs(layout, rotary_dim, pairs)
