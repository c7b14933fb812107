// An independent float64 (long double) reference for the rotation, written from the definition and
// sharing no code with the kernels: pair j of a head rotates by position * theta_j.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "rotary/config.h"

namespace rotary::testing {

// Rotates one head (head_dim values) in long double. `theta` has rotary_dim / 2 entries; `scale`
// multiplies cos and sin (the attention factor); `sign` is -1 for the inverse rotation.
inline std::vector<long double> reference_rotate(const std::vector<long double>& x,
                                                 const std::vector<float>& theta, Layout layout,
                                                 int64_t position, long double scale = 1.0L,
                                                 int sign = 1) {
  std::vector<long double> y = x;
  const std::size_t half = theta.size();
  for (std::size_t j = 0; j < half; ++j) {
    const std::size_t a = layout == Layout::kInterleaved ? 2 * j : j;
    const std::size_t b = layout == Layout::kInterleaved ? 2 * j + 1 : j + half;
    const long double angle = sign * static_cast<long double>(position) * theta[j];
    const long double c = std::cos(angle) * scale, s = std::sin(angle) * scale;
    y[a] = x[a] * c - x[b] * s;
    y[b] = x[b] * c + x[a] * s;
  }
  return y;
}

}  // namespace rotary::testing
