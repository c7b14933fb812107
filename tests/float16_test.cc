// The 16-bit conversions against the compiler's own _Float16 (where the compiler has one) and
// against the definition of round-to-nearest-even.
#include "numeric/float16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace rotary::detail {
namespace {

TEST(float16_test, bfloat16_round_trip_is_exact_for_every_value) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const BFloat16 h{static_cast<uint16_t>(bits)};
    const float f = to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(to_float(to_bfloat16(f))));
      continue;
    }
    EXPECT_EQ(to_bfloat16(f).bits, bits);
  }
}

// The nearest bfloat16 by the definition: compare distances to the two neighbours in double.
TEST(float16_test, bfloat16_rounds_to_nearest_even) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    const auto x = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &x, sizeof f);
    if (!std::isfinite(f)) continue;
    const uint16_t down = static_cast<uint16_t>(x >> 16);  // truncation toward zero
    const uint16_t up = static_cast<uint16_t>(down + 1);
    const double d_down = std::fabs(static_cast<double>(to_float(BFloat16{down})) - f);
    // Past the largest finite value IEEE rounding behaves as if the exponent were unbounded: the
    // neighbour above is 2^128 (which then overflows to infinity).
    double up_value = to_float(BFloat16{up});
    if (std::isinf(up_value)) up_value = std::copysign(0x1p128, up_value);
    const double d_up = std::fabs(up_value - f);
    uint16_t expected = d_down < d_up ? down : up;
    if (d_down == d_up) expected = (down & 1) ? up : down;
    ASSERT_EQ(to_bfloat16(f).bits, expected) << "input bits " << std::hex << x;
  }
}

#if defined(__FLT16_MANT_DIG__)
// Compilers with _Float16 (GCC 12 on x86-64 and Arm) give an independent implementation.
bool same_bits_or_both_nan(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::memcmp(&a, &b, sizeof a) == 0;
}

TEST(float16_test, float16_widening_matches_the_compiler_for_every_value) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint16_t b = static_cast<uint16_t>(bits);
    _Float16 h;
    std::memcpy(&h, &b, sizeof h);
    ASSERT_TRUE(same_bits_or_both_nan(static_cast<float>(h), to_float(Float16{b}))) << bits;
  }
}

TEST(float16_test, float16_narrowing_matches_the_compiler) {
  std::mt19937 rng(11);
  auto check = [](uint32_t x) {
    float f;
    std::memcpy(&f, &x, sizeof f);
    if (std::isnan(f)) return;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t expected;
    std::memcpy(&expected, &h, sizeof expected);
    ASSERT_EQ(to_float16(f).bits, expected) << "input bits " << std::hex << x;
  };
  for (int i = 0; i < 4000000; ++i) check(static_cast<uint32_t>(rng()));
  // Every float in the half range and around the overflow and subnormal thresholds, densely.
  for (uint32_t x = 0x33000000u; x < 0x47800100u; x += 97) check(x);
  for (uint32_t x = 0x477FE000u; x < 0x47801000u; ++x) check(x);
  for (uint32_t x = 0x387FF000u; x < 0x38801000u; ++x) check(x);
}
#endif

TEST(float16_test, float16_special_values) {
  EXPECT_EQ(to_float16(65504.0f).bits, 0x7BFF);
  EXPECT_EQ(to_float16(65520.0f).bits, 0x7C00);  // half-way to 2^16 rounds to infinity
  EXPECT_EQ(to_float16(-INFINITY).bits, 0xFC00);
  EXPECT_TRUE(std::isnan(to_float(to_float16(NAN))));
  EXPECT_EQ(to_float16(0x1p-24f).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(to_float16(0x1p-25f).bits, 0x0000);  // a tie, to even (zero)
  EXPECT_EQ(to_float16(-0.0f).bits, 0x8000);
}

}  // namespace
}  // namespace rotary::detail
