// Angles and cos/sin in the two documented modes (see include/rotary/angles.h).
#include "rotary/angles.h"

#include <cmath>
#include <numbers>

#include "cpu/cos_sin.h"

namespace rotary {
namespace {

// 2 pi split in two doubles (Cody-Waite): kTwoPiHigh is 2 pi rounded to double, kTwoPiLow the
// remainder, so k * 2 pi is subtracted with ~2^-106 relative error instead of 2^-53.
constexpr double kTwoPiHigh = 2 * std::numbers::pi;
constexpr double kTwoPiLow = 2.4492935982947064e-16;

}  // namespace

double exact_angle(int64_t position, float inv_freq) {
  // The product of a float32 (24 bits) and an integer below 2^53 is held exactly as hi + lo.
  const double p = static_cast<double>(position);
  const double theta = inv_freq;
  const double hi = p * theta;
  const double lo = std::fma(p, theta, -hi);
  const double turns = std::nearbyint(hi / kTwoPiHigh);
  double reduced = std::fma(-turns, kTwoPiHigh, hi);
  reduced = std::fma(-turns, kTwoPiLow, reduced);
  return reduced + lo;
}

void compute_cos_sin(std::span<const float> inv_freq, double attention_factor, int64_t position,
                     AngleMode mode, std::span<float> cos, std::span<float> sin) {
  const std::size_t n = inv_freq.size();
  if (mode == AngleMode::kHf) {
    // transformers: position_ids.float() * inv_freq, then cos()/sin(), then * attention_scaling,
    // every step a float32 tensor op; cos/sin themselves are correctly rounded (see cos_sin.h).
    detail::cos_sin_hf(inv_freq.data(), static_cast<int64_t>(n), position,
                       static_cast<float>(attention_factor), cos.data(), sin.data());
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double angle = exact_angle(position, inv_freq[i]);
    cos[i] = static_cast<float>(std::cos(angle) * attention_factor);
    sin[i] = static_cast<float>(std::sin(angle) * attention_factor);
  }
}

}  // namespace rotary
