"""The comparison helpers report the model, the field and the worst element."""

import numpy as np
import pytest

from compare import check_abs, check_relative_to_max, check_ulps


def test_failure_names_model_field_and_worst_element():
    expected = np.zeros((2, 3), np.float32)
    got = expected.copy()
    got[1, 2] = 5e-6
    got[0, 1] = 2e-6
    with pytest.raises(AssertionError) as info:
        check_abs("org/Model-7B", "cos (positions 0..8)", expected, got, 1e-6)
    message = str(info.value)
    assert message.startswith("org/Model-7B: cos (positions 0..8): 2 of 6 elements out of tolerance")
    assert "worst at index (1, 2): expected 0.0, got 4.99999" in message


def test_ulps_and_relative_checks():
    a = np.array([1.0, 2.0, -3.0], np.float32)
    b = np.nextafter(a, np.float32(np.inf))
    stats = check_ulps("m", "inv_freq", a, b, max_ulps=1)
    assert stats.worst == 1 and stats.bit_equal == 0
    with pytest.raises(AssertionError, match=r"m: inv_freq: 3 of 3 elements .*float32 ulps <= 0"):
        check_ulps("m", "inv_freq", a, b, max_ulps=0)
    stats = check_relative_to_max("m", "q", np.array([10.0, 0.0]), np.array([10.0, 1e-6]), 1e-6)
    assert stats.worst == pytest.approx(1e-7) and stats.bit_equal == 1
