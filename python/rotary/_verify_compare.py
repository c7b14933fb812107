"""Comparing what :func:`rotary.verify` measured with an expected configuration: every difference
becomes one sentence that says what is wrong and what the config expects.

The functions take the verifier's analysis state (pairs, measured theta with its tolerance, the
identified scheme) and add findings to its report.
"""

import math

import numpy as np

from ._rope import Rope
from ._verify_probe import COUPLING
from ._verify_report import describe_pairs


def compare(a):
    r, ref, e = a.report, a.reference, a.report.expected
    rotary_dim_e, layout_e = e["rotary_dim"], e["layout"]
    if not r.pairs:
        return
    theta_e, af_e = ref.frequencies_for(a.first.positions)
    theta_e = theta_e.astype(np.float64)
    max_p = int(a.first.positions.max())
    # Pairs the expected config rotates too slowly to see at these positions look like
    # pass-through channels; they are not a mismatch.
    invisible = np.abs(theta_e) * max_p < 10 * COUPLING
    measured_layout = describe_pairs(r.layout, r.rotary_dim, r.pairs)
    if r.layout != layout_e:
        a.add(
            "mismatch",
            "pairing",
            f"pairs are {pairs_phrase(r.layout, r.rotary_dim, r.pairs)} but the config's model "
            f"family uses {pairs_phrase(layout_e, rotary_dim_e, None)}",
        )
    # Interleaved pairs past the last visible one are indistinguishable from pass-through.
    hidden_tail = (
        r.layout == "interleaved"
        and r.rotary_dim is not None
        and r.rotary_dim < rotary_dim_e
        and bool(np.all(invisible[r.rotary_dim // 2 :]))
    )
    if r.rotary_dim != rotary_dim_e and not hidden_tail:
        through = a.d - rotary_dim_e
        a.add(
            "mismatch",
            "rotary_dim",
            f"{r.rotary_dim} channels rotate ({measured_layout}), the config rotates "
            f"{rotary_dim_e} of {a.d}"
            + (f": channels {rotary_dim_e}..{a.d - 1} should pass through unchanged" if through > 0 else ""),
        )
    # Theta, pair by pair (pair i of each layout), when the counts agree.
    theta_m = np.abs(r.theta)
    if theta_m.size == theta_e.size:
        tol = r.theta_tolerance
        bad = (np.abs(theta_m - theta_e) > tol) & ~(invisible & (theta_m == 0))
        if bad.any():
            a.add("mismatch", "theta", _theta_message(a, theta_m, theta_e, bad, ref))
        else:
            a.theta_ok = True
    elif r.fit is not None and r.fit.rope_type is not None:
        base_m = r.fit.params.get("base")
        if base_m is not None and not math.isclose(base_m, e["rope_theta"], rel_tol=1e-4):
            a.add("mismatch", "theta", f"θ matches base {base_m:.10g}, config says {e['rope_theta']:.10g}")
    # Attention factor.
    af_m = r.attention_factor
    af_tol = max(1e-5, 8 * a.noise()) * max(af_e, 1)
    if af_m is not None and abs(af_m - af_e) > af_tol:
        kind = e["rope_type"]
        if abs(af_m - 1) <= af_tol:
            a.add(
                "mismatch",
                "attention_factor",
                f"attention factor missing: cos/sin are not scaled (measured {af_m:.7g}); the "
                f"config's {kind} gives {af_e:.7g}, which multiplies cos and sin",
            )
        elif abs(af_m - af_e * af_e) <= af_tol * af_e:
            a.add(
                "mismatch",
                "attention_factor",
                f"attention factor applied twice: cos/sin are scaled by {af_m:.7g} = "
                f"{af_e:.7g}^2; the config's {kind} gives {af_e:.7g}",
            )
        else:
            a.add("mismatch", "attention_factor", f"attention factor {af_m:.7g}, the config's {kind} gives {af_e:.7g}")


def _theta_message(a, theta_m, theta_e, bad, ref):
    r, e = a.report, a.report.expected
    i = int(np.argmax(np.where(bad, np.abs(theta_m - theta_e) / np.maximum(theta_e, 1e-30), -1)))
    worst = (
        f"worst pair {i}: θ {theta_m[i]:.7g}, config {theta_e[i]:.7g} "
        f"(relative error {abs(theta_m[i] - theta_e[i]) / max(theta_e[i], 1e-30):.2g}; "
        f"{int(bad.sum())} of {bad.size} pairs differ)"
    )
    fit = r.fit
    kind = e["rope_type"]
    base_e = e["rope_theta"]
    if fit is None or fit.rope_type is None or fit.worst > 1:
        return f"θ differ from the config's: {worst}"
    base_m = fit.params.get("base")
    same_base = base_m is not None and math.isclose(base_m, base_e, rel_tol=1e-4)
    plain_e = kind in ("default", "dynamic")
    if fit.rope_type == "default" and plain_e and not same_base:
        hint = ""
        ntk = (base_m / base_e) ** ((r.rotary_dim - 2) / r.rotary_dim) if base_m > base_e else None
        if ntk is not None and abs(ntk - round(ntk)) < 0.01 and round(ntk) > 1:
            hint = f" (that is NTK-aware scaling of base {base_e:.10g} by factor {round(ntk)}: base x factor^(d/(d-2)))"
        return f"θ matches base {base_m:.10g}, config says {base_e:.10g}{hint}; {worst}"
    if fit.rope_type == "default" and same_base and not plain_e:
        return f"θ are plain RoPE with base {base_m:.10g}: the config's {kind} scaling is not applied; {worst}"
    if fit.rope_type != "default" and plain_e and same_base:
        return f"θ carry {fit.describe()} that the config does not have; {worst}"
    if not same_base and base_m is not None:
        # The config's own scheme with the measured base?
        rebased = config_dict(ref.config)
        rebased["rope_theta"] = base_m
        try:
            theta_r, _ = Rope(rebased).frequencies_for(a.first.positions)
            if np.all(np.abs(theta_r - theta_m) <= r.theta_tolerance):
                return (
                    f"θ matches base {base_m:.10g} (with the config's {kind} scaling), "
                    f"config says {base_e:.10g}; {worst}"
                )
        except ValueError:
            pass
    if kind == "longrope" and fit.rope_type is not None:
        return _longrope_message(a, theta_m, theta_e, bad, ref, worst)
    return f"θ follow {fit.describe()}; the config gives {kind} with base {base_e:.10g}; {worst}"


def _longrope_message(a, theta_m, theta_e, bad, ref, worst):
    c = ref.config
    base_theta = Rope(dict(config_dict(c), rope_scaling=None, rope_parameters=None)).inv_freq.astype(np.float64)
    factors = base_theta / np.maximum(theta_m, 1e-30)
    for name in ("short_factor", "long_factor"):
        listed = np.asarray(getattr(c, name), dtype=np.float64)
        if listed.size == factors.size and np.all(np.abs(factors - listed) <= 1e-5 * listed + 1e-6):
            return (
                f"θ use the config's {name} where the call (length "
                f"{int(a.first.positions.max()) + 1}) selects the other list; {worst}"
            )
    return f"per-pair factors differ from the config's LongRoPE factors; {worst}"


def pairs_phrase(layout, rotary_dim, pairs):
    if layout == "half_split":
        return f"(i, i+{rotary_dim // 2})"
    if layout == "interleaved":
        return "(2i, 2i+1)"
    return describe_pairs(layout, rotary_dim, pairs)


def config_dict(config):
    """A RopeConfig as a config dict rotary reads back to the same configuration."""
    scaling = {"rope_type": config.rope_type}
    for key in (
        "factor",
        "attention_factor",
        "beta_fast",
        "beta_slow",
        "mscale",
        "mscale_all_dim",
        "truncate",
        "low_freq_factor",
        "high_freq_factor",
    ):
        value = getattr(config, key)
        if value is not None:
            scaling[key] = value
    if config.short_factor:
        scaling["short_factor"] = list(config.short_factor)
        scaling["long_factor"] = list(config.long_factor)
    if config.rope_type in ("yarn", "longrope", "llama3"):
        scaling["original_max_position_embeddings"] = config.original_max_position_embeddings
    if config.rope_type == "proportional":
        scaling["partial_rotary_factor"] = config.partial_rotary_factor
    out = {
        "head_dim": config.head_dim,
        "rope_theta": config.rope_theta,
        "max_position_embeddings": config.max_position_embeddings,
        "rope_interleave": config.layout == "interleaved",
        "rope_scaling": scaling,
    }
    if config.rope_type != "proportional":
        out["rotary_dim"] = config.rotary_dim
    return out
