// Angles and cos/sin in the two documented modes (see include/rotary/angles.h).
#include "rotary/angles.h"

#include "cpu/cos_sin.h"

namespace rotary {

double exact_angle(int64_t position, float inv_freq) {
  return detail::exact_angle_reduced(position, inv_freq);
}

void compute_cos_sin(std::span<const float> inv_freq, double attention_factor, int64_t position,
                     AngleMode mode, std::span<float> cos, std::span<float> sin) {
  const std::size_t n = inv_freq.size();
  if (mode == AngleMode::kHf) {
    // transformers: position_ids.float() * inv_freq, then cos()/sin(), then * attention_scaling,
    // every step a float32 tensor op; cos/sin themselves are correctly rounded (see
    // numeric/cos_sin.h).
    detail::cos_sin_hf(inv_freq.data(), static_cast<int64_t>(n), position,
                       static_cast<float>(attention_factor), cos.data(), sin.data());
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    detail::exact_mode_cos_sin(position, inv_freq[i], attention_factor, cos[i], sin[i]);
  }
}

}  // namespace rotary
