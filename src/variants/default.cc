// rope_type "default": RoFormer's theta_i = base^(-2i/d), d the rotated width
// (transformers' _compute_default_rope_parameters).
#include "variants/common.h"
#include "variants/variant.h"

namespace rotary::detail {
namespace {

Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t>) {
  Frequencies f;
  f.inv_freq = default_inv_freq(c.rope_theta, dim);
  return f;
}

}  // namespace

extern const RopeVariant kDefaultVariant{
    .validate = [](const RopeConfig&, int64_t) {},
    .frequencies = frequencies,
};

}  // namespace rotary::detail
