// rope_type "linear": position interpolation, every theta_i divided by `factor`
// (transformers' _compute_linear_scaling_rope_parameters).
#include "variants/common.h"
#include "variants/variant.h"

namespace rotary::detail {
namespace {

constexpr std::string_view kRequired[] = {"factor"};

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t>) {
  Frequencies f;
  f.inv_freq = default_inv_freq(c.rope_theta, dim);
  // `inv_freq /= factor`: a float32 tensor divided by the factor rounded to float32.
  const auto factor = static_cast<float>(*c.factor);
  for (float& inv : f.inv_freq) inv /= factor;
  return f;
}

}  // namespace

extern const RopeVariant kLinearVariant{
    .required_keys = kRequired,
    .validate = [](const RopeConfig& c, int64_t) { require_factor(c.factor, c.rope_type); },
    .frequencies = frequencies,
};

}  // namespace rotary::detail
