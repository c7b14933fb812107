"""Which published frequency scheme reproduces a set of measured frequencies theta_i.

The fitting half of :func:`rotary.verify`. Every family is tried the same way: parameters are
estimated from the measured theta in closed form, rounded to the fewest significant digits that
still fit, written as a configuration dict, and handed to rotary itself. A family fits only when
rotary's own float32 frequencies for that configuration reproduce every measured theta_i within its
tolerance, so the fit never rests on a second implementation of a formula.

Families are tried from the simplest: default (base only), linear (base and factor), proportional
(trailing pairs at theta 0, exponent over head_dim), Llama 3.1 (a blend linear in 1/wavelength),
YaRN (a blend linear in the pair index), and LongRoPE (one factor per pair; it fits anything, so it
comes last and says so). Dynamic NTK is default RoPE within the trained context, so it is not a
separate candidate here; the caller compares per-call frequencies against a dynamic config.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ._rope import Rope

_TWO_PI = 2 * math.pi


@dataclass
class FamilyFit:
    """The simplest frequency scheme that reproduces the measured theta.

    Attributes
    ----------
    rope_type : str or None
        ``"default"``, ``"linear"``, ``"proportional"``, ``"llama3"``, ``"yarn"``, ``"longrope"``, or
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

    def describe(self):
        """One line, e.g. ``llama3: base 500000, factor 8, band wavelengths 2048 .. 8192``."""
        p = self.params
        if self.rope_type is None:
            return "no published scheme fits"
        head = f"{self.rope_type}: base {_g(p['base'])}"
        if self.rope_type == "linear":
            return f"{head}, factor {_g(p['factor'])} (every θ divided by it)"
        if self.rope_type == "proportional":
            text = f"{head} over head_dim, {p['rotated_pairs']} pairs rotate, {p['zero_pairs']} at θ 0"
            return text + (f", factor {_g(p['factor'])}" if p.get("factor", 1) != 1 else "")
        if self.rope_type == "llama3":
            return (
                f"{head}, factor {_g(p['factor'])}, kept below wavelength {_g(p['high_wavelength'])}, "
                f"divided above {_g(p['low_wavelength'])} (original context / high_freq_factor, "
                "/ low_freq_factor)"
            )
        if self.rope_type == "yarn":
            return f"{head}, factor {_g(p['factor'])}, ramp over pairs {_g(p['ramp_low'])} .. {_g(p['ramp_high'])}"
        if self.rope_type == "longrope":
            factors = p["factors"]
            return (
                f"{head} with one factor per pair (LongRoPE-style; the base is a choice, the "
                f"factors are relative to it): {_g(min(factors))} .. {_g(max(factors))}"
            )
        return head

    def to_dict(self):
        return {
            "rope_type": self.rope_type,
            "params": _plain(self.params),
            "config": _plain(self.config),
            "worst": None if not math.isfinite(self.worst) else float(self.worst),
            "worst_pair": int(self.worst_pair),
        }


def _g(x):
    return f"{x:.7g}" if isinstance(x, float) else str(x)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _nice(x, digits):
    """x rounded to `digits` significant digits, as a plain float (an int when integral)."""
    value = float(f"{x:.{digits}g}")
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _log_fit(theta, tol, pairs, denominator, fixed_intercept=None):
    """Weighted least squares of ln theta_i = c - (2 i / denominator) ln(base) over `pairs`.

    The weight of a pair is (theta_i / tol_i)^2: the variance of ln theta_i is (tol_i / theta_i)^2.
    Returns (base, factor) with factor = exp(-c), or None when there are too few pairs.
    """
    pairs = np.asarray(pairs)
    if pairs.size < (1 if fixed_intercept is not None else 2):
        return None
    y = np.log(theta[pairs])
    x = -2.0 * pairs / denominator
    w = (theta[pairs] / tol[pairs]) ** 2
    if fixed_intercept is not None:
        # y - c = x L: L = sum w x (y - c) / sum w x^2 (pair 0 has x = 0 and carries no slope).
        if not np.any(x != 0):
            return None
        slope = np.sum(w * x * (y - fixed_intercept)) / np.sum(w * x * x)
        return math.exp(slope), math.exp(-fixed_intercept)
    W, Wx, Wy = w.sum(), (w * x).sum(), (w * y).sum()
    Wxx, Wxy = (w * x * x).sum(), (w * x * y).sum()
    det = W * Wxx - Wx * Wx
    if det <= 0:
        return None
    slope = (W * Wxy - Wx * Wy) / det
    intercept = (Wy - slope * Wx) / W
    return math.exp(slope), math.exp(-intercept)


class _Evaluator:
    """Scores candidate configs: rotary's frequencies for a call of `length` positions."""

    def __init__(self, theta, tol, head_dim, rotary_dim, length):
        self.theta, self.tol = theta, tol
        self.head_dim, self.rotary_dim, self.length = head_dim, rotary_dim, length

    def frequencies(self, config):
        try:
            rope = Rope(config)
        except ValueError:
            return None
        inv_freq, _ = rope.frequencies_for(np.array([max(self.length - 1, 0)]))
        inv_freq = inv_freq.astype(np.float64)
        return inv_freq if inv_freq.shape == self.theta.shape else None

    def score(self, config):
        """(worst |error| / tol, worst pair); inf when rotary refuses the config."""
        inv_freq = self.frequencies(config)
        if inv_freq is None:
            return math.inf, 0
        ratio = np.abs(inv_freq - self.theta) / self.tol
        i = int(np.argmax(ratio))
        return float(ratio[i]), i

    def base_config(self, base, scaling=None, max_positions=None):
        config = {"head_dim": self.head_dim, "rotary_dim": self.rotary_dim, "rope_theta": base}
        if scaling is not None:
            config["rope_scaling"] = scaling
        if max_positions:
            config["max_position_embeddings"] = int(max_positions)
        return config

    def default_theta(self, base):
        # rotary's own float32 default frequencies for this base (what every scheme scales).
        inv = self.frequencies(self.base_config(base))
        return inv


def _first_fit(evaluator, candidates):
    """The first (simplest) candidate whose config fits; else the best one seen."""
    best = None
    for rope_type, params, config in candidates:
        worst, pair = evaluator.score(config)
        fit = FamilyFit(rope_type, params, config, worst, pair)
        if worst <= 1:
            return fit
        if best is None or worst < best.worst:
            best = fit
    return best


def _rounded(values, max_digits=7):
    """(digits, rounded values) from the fewest significant digits up."""
    for digits in range(1, max_digits + 1):
        yield tuple(_nice(v, digits) for v in values)


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
    theta = np.asarray(theta, dtype=np.float64)
    tol = np.asarray(tol, dtype=np.float64)
    n = theta.size
    ev = _Evaluator(theta, tol, head_dim, rotary_dim, length)
    # Pairs of the layout that never rotated were measured as exactly 0; any other pair rotates,
    # however slowly.
    positive = theta > 0
    if positive.sum() < 2:
        return FamilyFit(None)
    index = np.arange(n)
    live = index[positive]

    # Proportional: a zero suffix, the exponent over head_dim (rotary_dim is head_dim there).
    zero = ~positive
    if zero.any() and rotary_dim == head_dim:
        first_zero = int(np.argmax(zero))
        if zero[first_zero:].all() and first_zero >= 2:
            fitted = _log_fit(theta, tol, index[:first_zero], head_dim)
            if fitted:
                base, factor = fitted
                candidates = []
                for b, f in _pairs_rounded(base, factor):
                    scaling = {
                        "rope_type": "proportional",
                        "rope_theta": b,
                        "partial_rotary_factor": (2 * first_zero + 0.5) / head_dim,
                        "factor": f,
                    }
                    candidates.append(
                        (
                            "proportional",
                            {"base": b, "factor": f, "rotated_pairs": first_zero, "zero_pairs": n - first_zero},
                            {"head_dim": head_dim, "rope_parameters": scaling},
                        )
                    )
                fit = _first_fit(ev, candidates)
                if fit.worst <= 1:
                    return fit

    candidates = []
    # Default: theta_0 = 1 exactly, only the base.
    fitted = _log_fit(theta, tol, live, rotary_dim, fixed_intercept=0.0)
    if fitted:
        for (b,) in _rounded([fitted[0]]):
            candidates.append(("default", {"base": b}, ev.base_config(b)))
    # Linear: a uniform factor on top.
    fitted = _log_fit(theta, tol, live, rotary_dim)
    if fitted and abs(fitted[1] - 1) > 1e-6:
        for b, f in _pairs_rounded(*fitted):
            candidates.append(
                ("linear", {"base": b, "factor": f}, ev.base_config(b, {"rope_type": "linear", "factor": f}))
            )
    best = _first_fit(ev, candidates)
    if best is not None and best.worst <= 1:
        return best

    # The blended schemes keep the high-frequency head unscaled (theta_0 = 1): the base comes from
    # the longest head that is log-linear with theta_0 = 1.
    base = _head_base(theta, tol, rotary_dim)
    if base is None:
        return best or FamilyFit(None)
    for fit in (_fit_llama3(ev, theta, tol, base), _fit_yarn(ev, theta, tol, base)):
        if fit is not None and fit.worst <= 1:
            return fit
        if fit is not None and (best is None or fit.worst < best.worst):
            best = fit

    # One factor per pair: LongRoPE's form, which any positive theta satisfies. The base cannot be
    # told apart from the factors; without a hint, take the largest 1-2-5 x 10^k base that keeps
    # every factor >= 1 (LongRoPE's factors stretch wavelengths, they do not shrink them).
    longrope = _fit_longrope(ev, theta, tol, hint_base or _longrope_base(theta, rotary_dim), length)
    if longrope is not None and longrope.worst <= 1:
        return longrope
    return best or FamilyFit(None)


def _pairs_rounded(base, factor):
    for digits in range(1, 8):
        b = _nice(base, digits)
        for f_digits in range(1, 6):
            yield b, _nice(factor, f_digits)


def _head_base(theta, tol, rotary_dim):
    """The base that the unscaled high-frequency pairs follow (theta_0 = 1), or None."""
    if abs(theta[0] - 1) > tol[0]:
        return None
    n = theta.size
    base = None
    for k in range(2, n + 1):
        fitted = _log_fit(theta, tol, np.arange(k), rotary_dim, fixed_intercept=0.0)
        if fitted is None:
            continue
        i = np.arange(k)
        predicted = fitted[0] ** (-2.0 * i / rotary_dim)
        if np.all(np.abs(predicted - theta[:k]) <= 2 * tol[:k]):
            base = fitted[0]
        elif base is not None:
            break
    return base


def _bands(ratio, ratio_tol, factor):
    """Indices kept (ratio 1), divided (1/factor) and blended (in between), or None if unordered."""
    to_one, to_divided = np.abs(ratio - 1), np.abs(ratio - 1 / factor)
    kept = (to_one <= ratio_tol) & (to_one <= to_divided)
    divided = (to_divided <= ratio_tol) & ~kept
    blended = ~kept & ~divided
    return kept, divided, blended


def _scaled_bands(ev, theta, tol, base):
    """theta against the default RoPE of `base`, for the schemes that keep some pairs and divide
    others by a factor (Llama 3.1, YaRN): (theta_default, ratio, factor, kept, divided, blended),
    or None when theta is not scaled down anywhere."""
    theta_default = ev.default_theta(base)
    if theta_default is None:
        return None
    ratio = theta / theta_default
    factor = 1 / ratio.min()
    if factor <= 1 + 1e-6:
        return None
    return (theta_default, ratio, factor) + _bands(ratio, tol / theta_default, factor)


def _fit_llama3(ev, theta, tol, base):
    scaled = _scaled_bands(ev, theta, tol, base)
    if scaled is None:
        return None
    theta_default, ratio, factor, kept, divided, blended = scaled
    wavelength = _TWO_PI / theta_default
    if not kept.any() or not divided.any():
        return None
    # Llama 3.1: s = (original / wavelength - low) / (high - low) is linear in 1 / wavelength; the
    # blend is kept*s + divided*(1-s). Only the band edges (original/high, original/low) can be
    # identified, so original = the low edge and low_freq_factor = 1.
    if blended.sum() >= 2:
        s = (ratio[blended] - 1 / factor) / (1 - 1 / factor)
        x = 1 / wavelength[blended]
        A, B = np.polyfit(x, s, 1, w=1 / ratio[blended])
        if A <= 0:
            return None
        low_edge, high_edge = -A / B if B < 0 else math.inf, A / (1 - B)
    else:
        # Without two blended pairs the edges are only bracketed: take the bracket's ends.
        high_edge = float(wavelength[kept].max()) * 1.0000001
        low_edge = float(wavelength[divided].min()) * 0.9999999
        if blended.any():
            high_edge = min(high_edge, float(wavelength[blended].min()))
    if not (math.isfinite(low_edge) and 0 < high_edge <= low_edge):
        return None
    candidates = []
    for b in _bases(base):
        for digits in range(1, 7):
            f = _nice(factor, min(digits, 5))
            low_w = int(round(_nice(low_edge, digits)))  # original_max_position_embeddings: an integer
            high_w = _nice(high_edge, digits)
            if not (low_w > 0 and 0 < high_w <= low_w):
                continue
            scaling = {
                "rope_type": "llama3",
                "factor": f,
                "original_max_position_embeddings": low_w,
                "low_freq_factor": 1.0,
                "high_freq_factor": low_w / high_w,
            }
            candidates.append(
                (
                    "llama3",
                    {"base": b, "factor": f, "low_wavelength": low_w, "high_wavelength": high_w},
                    ev.base_config(b, scaling),
                )
            )
    return _first_fit(ev, candidates) if candidates else None


def _bases(base):
    """The base rounded to 1 .. 7 significant digits, distinct values, fewest digits first."""
    seen = []
    for digits in range(1, 8):
        b = _nice(base, digits)
        if b not in seen:
            seen.append(b)
    return seen


def _fit_yarn(ev, theta, tol, base):
    scaled = _scaled_bands(ev, theta, tol, base)
    if scaled is None:
        return None
    _, ratio, factor, _, _, blended = scaled
    if blended.sum() < 2:
        return None
    # YaRN: ratio = 1 - ramp (1 - 1/factor), ramp = (i - low) / (high - low): linear in i.
    ramp = (1 - ratio[blended]) / (1 - 1 / factor)
    i = np.flatnonzero(blended)
    # The error of a measured ratio is proportional to the ratio, so pairs far into the ramp pin it
    # down best: weight each by 1 / ratio (np.polyfit weights multiply the residuals).
    slope, intercept = np.polyfit(i, ramp, 1, w=1 / ratio[blended])
    if slope <= 0:
        return None
    low, high = -intercept / slope, (1 - intercept) / slope
    rotary_dim = ev.rotary_dim
    original = 4096  # any context works: the betas below place the ramp where it was measured
    candidates = []
    for b in _bases(base):
        for digits in range(1, 10):
            f, lo, hi = _nice(factor, min(digits, 5)), _nice(low, digits), _nice(high, digits)
            if not (0 <= lo < hi):
                continue
            # YaRN's correction range: pair = d ln(original / (2 pi beta)) / (2 ln base), so the
            # betas that put the ramp's ends at lo and hi are original / (2 pi) * base^(-2 pair / d).
            beta_fast = original / _TWO_PI * b ** (-2 * lo / rotary_dim)
            beta_slow = original / _TWO_PI * b ** (-2 * hi / rotary_dim)
            scaling = {
                "rope_type": "yarn",
                "factor": f,
                "original_max_position_embeddings": original,
                "beta_fast": beta_fast,
                "beta_slow": beta_slow,
                "truncate": False,
            }
            candidates.append(
                (
                    "yarn",
                    {"base": b, "factor": f, "ramp_low": lo, "ramp_high": hi},
                    ev.base_config(b, scaling, max_positions=original * f),
                )
            )
    return _first_fit(ev, candidates) if candidates else None


def _longrope_base(theta, rotary_dim):
    i = np.arange(1, theta.size)
    live = theta[1:] > 0
    if not live.any() or theta[0] <= 0:
        return 10000.0
    # Pair i has factor >= 1 while base <= (theta_0 / theta_i)^(d / 2i).
    limit = float(np.min((theta[0] / theta[1:][live]) ** (rotary_dim / (2.0 * i[live]))))
    exponent = math.floor(math.log10(limit))
    for mantissa in (5, 2, 1):
        if mantissa * 10.0**exponent <= limit:
            return float(mantissa * 10**exponent)
    return 10.0 ** (exponent - 1) * 5


def _fit_longrope(ev, theta, tol, base, length):
    theta_default = ev.default_theta(base)
    if theta_default is None or np.any(theta <= 0):
        return None
    factors = (theta_default / theta).tolist()
    # One list serves both the short and the long set, whichever the call length selects.
    original = max(int(length), 1)
    scaling = {
        "rope_type": "longrope",
        "short_factor": factors,
        "long_factor": factors,
        "original_max_position_embeddings": original,
        "factor": 1.0,
    }
    config = ev.base_config(_nice(base, 7), scaling, max_positions=original)
    worst, pair = ev.score(config)
    return FamilyFit("longrope", {"base": _nice(base, 7), "factors": factors}, config, worst, pair)
