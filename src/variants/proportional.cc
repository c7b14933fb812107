// rope_type "proportional" (transformers' _compute_proportional_rope_parameters, Gemma 4): only
// the first int(partial_rotary_factor * head_dim // 2) pairs rotate, with the exponent over the
// whole head_dim and theta divided by an optional factor; the other pairs have theta 0. Its
// frequencies always span head_dim / 2 pairs.
#include <algorithm>

#include "variants/common.h"
#include "variants/variant.h"

namespace rotary::detail {
namespace {

Frequencies frequencies(const RopeConfig& c, int64_t, std::optional<int64_t>) {
  const int64_t head_dim = c.head_dim;
  // int(proportion * head_dim // 2): Python floor division of a float.
  const auto rotated =
      static_cast<int64_t>(std::floor(c.partial_rotary_factor * static_cast<double>(head_dim) / 2));
  Frequencies f;
  f.inv_freq.assign(static_cast<std::size_t>(head_dim / 2), 0.0f);
  const auto factor = static_cast<float>(c.factor.value_or(1.0));
  for (int64_t i = 0; i < std::min(rotated, head_dim / 2); ++i) {
    // The exponent divides by the full head_dim, not by the rotated width.
    f.inv_freq[i] = (1.0f / base_power(c.rope_theta, i, head_dim)) / factor;
  }
  return f;
}

}  // namespace

extern const RopeVariant kProportionalVariant{
    .validate =
        [](const RopeConfig& c, int64_t) {
          if (c.factor) require_finite_positive(c.factor, "factor", c.rope_type);
        },
    .frequencies = frequencies,
};

}  // namespace rotary::detail
