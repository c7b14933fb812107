// The two angle modes against a long double oracle of cos(position * theta), theta being the
// model's float32 frequency.
#include "rotary/angles.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <cstdio>
#include <vector>

#include "rotary/frequencies.h"

namespace rotary {
namespace {

struct Errors {
  double worst_hf = 0, worst_exact = 0;
};

// Worst |cos/sin error| over all pairs of a Llama-style table at one position.
Errors errors_at(const std::vector<float>& theta, int64_t position) {
  std::vector<float> c(theta.size()), s(theta.size());
  Errors e;
  for (AngleMode mode : {AngleMode::kHf, AngleMode::kExact}) {
    compute_cos_sin(theta, 1.0, position, mode, c, s);
    double worst = 0;
    for (std::size_t i = 0; i < theta.size(); ++i) {
      const long double angle = static_cast<long double>(position) * theta[i];
      worst = std::max({worst, static_cast<double>(std::fabs(c[i] - std::cos(angle))),
                        static_cast<double>(std::fabs(s[i] - std::sin(angle)))});
    }
    (mode == AngleMode::kHf ? e.worst_hf : e.worst_exact) = worst;
  }
  return e;
}

TEST(angles_test, exact_mode_is_float32_rounding_at_every_decade) {
  const std::vector<float> theta = compute_frequencies(default_config(128, 500000.0)).inv_freq;
  std::printf("position    worst |error| hf    worst |error| exact\n");
  for (int64_t position = 1000; position <= 10000000; position *= 10) {
    const Errors e = errors_at(theta, position);
    std::printf("%-10lld  %-18.3g  %.3g\n", static_cast<long long>(position), e.worst_hf, e.worst_exact);
    EXPECT_LE(e.worst_exact, 6e-8) << position;  // half an ulp of 1 is 5.96e-8
    // hf's float32 angle is off by up to ulp(angle) / 2 ~ position * 2^-24 radians (theta_0 = 1).
    EXPECT_LE(e.worst_hf, static_cast<double>(position) * 0x1p-24 + 1.2e-7) << position;
  }
}

TEST(angles_test, hf_mode_error_really_grows_with_position) {
  // The float32 product loses the angle's low bits: at 10^7 the error is macroscopic.
  const std::vector<float> theta = compute_frequencies(default_config(128, 10000.0)).inv_freq;
  EXPECT_GT(errors_at(theta, 10000000).worst_hf, 1e-3);
  EXPECT_LT(errors_at(theta, 10).worst_hf, 1e-6);
}

TEST(angles_test, exact_angle_reduces_into_minus_pi_pi) {
  // Every product below is exact in long double (powers of two, or few significant bits), and
  // glibc's sinl/cosl reduce huge arguments exactly, so they are the oracle here.
  for (int64_t position : {int64_t{0}, int64_t{1}, int64_t{123456789}, int64_t{1} << 52, -(int64_t{1} << 50)}) {
    for (float theta : {1.0f, 0.5f, 1e-4f, 3.14159f}) {
      const double a = exact_angle(position, theta);
      EXPECT_LE(std::fabs(a), 3.1415927) << position << " " << theta;
      const long double product = static_cast<long double>(position) * theta;
      EXPECT_NEAR(std::sin(a), static_cast<double>(std::sin(product)), 1e-15) << position << " " << theta;
      EXPECT_NEAR(std::cos(a), static_cast<double>(std::cos(product)), 1e-15) << position << " " << theta;
    }
  }
}

TEST(angles_test, modes_agree_at_small_positions_and_scale_by_attention_factor) {
  const std::vector<float> theta = compute_frequencies(default_config(64)).inv_freq;
  std::vector<float> c1(32), s1(32), c2(32), s2(32);
  compute_cos_sin(theta, 1.0, 5, AngleMode::kHf, c1, s1);
  compute_cos_sin(theta, 1.25, 5, AngleMode::kExact, c2, s2);
  for (int i = 0; i < 32; ++i) {
    EXPECT_NEAR(c2[i], 1.25 * c1[i], 3e-7);
    EXPECT_NEAR(s2[i], 1.25 * s1[i], 3e-7);
  }
}

}  // namespace
}  // namespace rotary
