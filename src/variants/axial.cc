// rope_type "axial": 2D vision RoPE. Half the pairs rotate by a patch's row, half by its column
// (which half first: RopeConfig::axial_columns_first), with the frequencies the model class
// derives (AxialFrequencies): Qwen2-VL's tower shares the rotary_dim / 4 frequencies of a
// rotary_dim / 2-channel RoPE between the axes; Pixtral deals the rotary_dim / 2 frequencies of a
// rotary_dim-channel RoPE alternately to rows (even i) and columns (odd i).
#include "variants/common.h"
#include "variants/variant.h"

namespace rotary::detail {
namespace {

void validate(const RopeConfig&, int64_t dim) {
  if (dim % 4 != 0) {
    invalid_config("head_dim",
                   "axial RoPE splits the pairs between rows and columns: rotary_dim must be a "
                   "multiple of 4, got " +
                       std::to_string(dim));
  }
}

// Rows' frequencies first, then the columns'.
Frequencies frequencies(const RopeConfig& c, int64_t dim, std::optional<int64_t>) {
  Frequencies f;
  if (c.axial_frequencies == AxialFrequencies::kShared) {
    const std::vector<float> half = default_inv_freq(c.rope_theta, dim / 2);
    f.inv_freq = half;
    f.inv_freq.insert(f.inv_freq.end(), half.begin(), half.end());
    return f;
  }
  const std::vector<float> all = default_inv_freq(c.rope_theta, dim);
  for (std::size_t parity : {0u, 1u}) {
    for (std::size_t i = parity; i < all.size(); i += 2) f.inv_freq.push_back(all[i]);
  }
  return f;
}

}  // namespace

extern const RopeVariant kAxialVariant{
    .validate = validate,
    .frequencies = frequencies,
};

}  // namespace rotary::detail
