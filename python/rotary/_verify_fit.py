"""Which published frequency scheme reproduces a set of measured frequencies theta_i.

The fit itself is the verifier's core (``rotary/verify.h``, shared with ``rotary verify``): every
scheme's parameters are estimated from theta in closed form, rounded to the fewest significant
digits that still fit, and checked by computing rotary's own float32 frequencies for that config.
Schemes are tried from the simplest: default, linear, proportional, Llama 3.1, YaRN, and LongRoPE
(one factor per pair; it fits anything, so it comes last). This module holds the result as the
report shows it.
"""

import json
import math
from dataclasses import dataclass, field

import numpy as np

from . import _rotary

_core = _rotary.verifier


@dataclass
class FamilyFit:
    """The simplest frequency scheme that reproduces the measured theta.

    Attributes
    ----------
    rope_type : str or None
        ``"default"``, ``"linear"``, ``"ntk"``, ``"proportional"``, ``"llama3"``, ``"yarn"``, ``"longrope"``, or
        None when nothing fits (no positive frequencies to fit).
    params : dict
        The identified parameters (base, factor, band or ramp, per-pair factors).
    config : dict or None
        A config dict that rotary turns into these frequencies.
    worst : float
        max_i |theta_measured - theta_config| / tolerance_i (a fit needs <= 1).
    worst_pair : int
        The pair where that happens.
    """

    rope_type: str | None
    params: dict = field(default_factory=dict)
    config: dict | None = None
    worst: float = math.inf
    worst_pair: int = 0
    # The core's result, for the diagnoses that read it and for the config as a RopeConfig.
    core: object = field(default=None, repr=False, compare=False)

    @property
    def rope_config(self):
        """The identified config as a :class:`rotary.RopeConfig`, or None."""
        return None if self.core is None else self.core.config

    def describe(self):
        """One line, e.g. ``llama3: base 500000, factor 8, band wavelengths 2048 .. 8192``."""
        if self.core is None:
            return "no published scheme fits"
        return self.core.describe()

    def to_dict(self):
        return {
            "rope_type": self.rope_type,
            "params": _plain(self.params),
            "config": _plain(self.config),
            "worst": None if not math.isfinite(self.worst) else float(self.worst),
            "worst_pair": int(self.worst_pair),
        }


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def fit_family(theta, tol, head_dim, rotary_dim, length, hint_base=None):
    """The simplest scheme that reproduces `theta` (float64, one per pair, 0 for pairs that do not rotate).

    Parameters
    ----------
    theta, tol : numpy.ndarray of float64, shape (rotary_dim // 2,)
        Measured frequencies (rad/position) and the tolerance of each.
    head_dim, rotary_dim : int
        As measured: the rotated width spanned by the pairs (head_dim for proportional).
    length : int
        The call's sequence length (max position + 1) the frequencies were measured at.
    hint_base : float, optional
        A base to try first for the per-pair (LongRoPE) factors, typically the expected config's.

    Returns
    -------
    FamilyFit
    """
    core = _core.fit_family(
        np.ascontiguousarray(theta, dtype=np.float64),
        np.ascontiguousarray(tol, dtype=np.float64),
        int(head_dim),
        int(rotary_dim),
        int(length),
        None if hint_base is None else float(hint_base),
    )
    return FamilyFit(
        core.rope_type,
        core.params,
        None if core.config is None else _config_dict(core.config),
        float(core.worst),
        int(core.worst_pair),
        core,
    )


def _config_dict(config):
    """The identified RopeConfig as the config dict rotary reads back to it (config_to_json)."""
    return json.loads(_rotary.config_to_json(config))
