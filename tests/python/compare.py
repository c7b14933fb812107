"""Comparisons that say what went wrong: the model, the field, and the worst element.

Every check returns its statistics (worst error, count of bit-equal elements) so that the suite can
print a conformance table; a failing check raises AssertionError with

    <model>: <field>: <n> of <size> elements out of tolerance (<rule>); worst at index (i, j, ...):
    expected <value>, got <value> (error <e> > allowed <a>)
"""

from dataclasses import dataclass

import numpy as np
import torch

# model -> {column: text}: the conformance numbers, printed after the run (conftest.py).
CONFORMANCE_TABLE = {}


def record(model, column, text):
    """Puts one number of the conformance table."""
    CONFORMANCE_TABLE.setdefault(model, {})[column] = text


def as_numpy(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:  # exact: every bf16 value is a float32 value
            x = x.float()
        return x.numpy()
    return np.asarray(x)


@dataclass
class Stats:
    size: int
    worst: float  # the largest error, in the check's unit
    bit_equal: int  # elements identical to the expected ones

    def bit_equal_text(self):
        return f"{self.bit_equal}/{self.size}"


def _fail(model, field, rule, expected, got, error, allowed):
    excess = np.where(np.isnan(error), np.inf, error - allowed)
    index = np.unravel_index(int(np.argmax(excess)), excess.shape)
    bad = int(np.count_nonzero(~(error <= allowed)))
    raise AssertionError(
        f"{model}: {field}: {bad} of {error.size} elements out of tolerance ({rule}); worst at index "
        f"{tuple(int(i) for i in index)}: expected {float(expected[index])!r}, got {float(got[index])!r} "
        f"(error {error[index]:.3e} > allowed {np.broadcast_to(allowed, error.shape)[index]:.3e})"
    )


def _check_shapes(model, field, expected, got):
    if expected.shape != got.shape:
        raise AssertionError(f"{model}: {field}: shape {got.shape}, expected {expected.shape}")


def check_abs(model, field, expected, got, allowed, rule=None):
    """|got - expected| <= allowed (a scalar or an array broadcasting to the values)."""
    expected, got = as_numpy(expected).astype(np.float64), as_numpy(got).astype(np.float64)
    _check_shapes(model, field, expected, got)
    error = np.abs(got - expected)
    if not np.all(error <= allowed):
        _fail(model, field, rule or f"absolute error <= {np.max(allowed):.1e}", expected, got, error, allowed)
    return Stats(error.size, float(error.max(initial=0.0)), int(np.count_nonzero(got == expected)))


def check_relative_to_max(model, field, expected, got, tolerance):
    """max |got - expected| / max |expected| <= tolerance: the error relative to the tensor's scale.

    Rotated q/k elements can be tiny where cancellation occurs, so an elementwise relative error is
    meaningless there; the error is measured against the largest magnitude in the tensor.
    """
    expected, got = as_numpy(expected).astype(np.float64), as_numpy(got).astype(np.float64)
    _check_shapes(model, field, expected, got)
    scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0
    error = np.abs(got - expected) / scale
    if not np.all(error <= tolerance):
        _fail(model, field, f"|error| / max|expected| <= {tolerance:.0e}", expected, got, error, tolerance)
    return Stats(error.size, float(error.max(initial=0.0)), int(np.count_nonzero(got == expected)))


def ulp_distance(expected, got):
    """Distance in units in the last place between two float32 arrays (0: identical bits)."""
    a, b = np.asarray(expected, np.float32), np.asarray(got, np.float32)

    def ordered(x):  # float32 bits as integers that order like the floats
        i = x.view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    return np.abs(ordered(a) - ordered(b))


def check_ulps(model, field, expected, got, max_ulps):
    """Float32 arrays within `max_ulps` units in the last place."""
    expected = as_numpy(expected).astype(np.float32)
    got = as_numpy(got).astype(np.float32)
    _check_shapes(model, field, expected, got)
    error = ulp_distance(expected, got).astype(np.float64)
    if not np.all(error <= max_ulps):
        _fail(model, field, f"float32 ulps <= {max_ulps}", expected, got, error, float(max_ulps))
    return Stats(error.size, float(error.max(initial=0.0)), int(np.count_nonzero(error == 0)))


def storage_ulp(values, dtype):
    """The spacing of `dtype` (torch.bfloat16 or torch.float16) at each |value| (float64 array)."""
    info = torch.finfo(dtype)
    mantissa_bits = {torch.bfloat16: 7, torch.float16: 10}[dtype]
    magnitude = np.maximum(np.abs(values), info.smallest_normal)
    return np.exp2(np.floor(np.log2(magnitude)) - mantissa_bits)


def storage_ulp_error(oracle, got, dtype):
    """The worst error of a 16-bit result in storage ulps (no assertion; for reporting)."""
    oracle = as_numpy(oracle).astype(np.float64)
    error = np.abs(as_numpy(got).astype(np.float64) - oracle) / storage_ulp(oracle, dtype)
    return float(error.max(initial=0.0))
