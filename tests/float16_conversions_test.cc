// rotary/float16.h: spans of float32 to and from float16/bfloat16 bit patterns, rounded as the
// rotation rounds when it stores a 16-bit tensor.
#include "rotary/float16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "rotary/error.h"
#include "rotary/rope.h"

namespace rotary {
namespace {

TEST(float16_conversions_test, known_values_round_to_nearest_even) {
  const std::vector<float> values = {1.0f, -2.0f, 65504.0f, 65520.0f, 1.0f + 0x1p-11f, 0x1p-24f};
  std::vector<uint16_t> f16(values.size());
  to_16bit(values, DType::kF16, f16);
  // 65520 is half-way to the next binade: rounds to even, infinity. 1 + 2^-11 is half-way between 1
  // and 1 + 2^-10: rounds to even, 1. 2^-24 is the smallest subnormal.
  EXPECT_EQ(f16, (std::vector<uint16_t>{0x3C00, 0xC000, 0x7BFF, 0x7C00, 0x3C00, 0x0001}));
  std::vector<uint16_t> bf16(2);
  to_16bit(std::vector<float>{1.0f, 1.0f + 0x1p-8f}, DType::kBF16, bf16);
  EXPECT_EQ(bf16, (std::vector<uint16_t>{0x3F80, 0x3F80}));
}

TEST(float16_conversions_test, every_16_bit_value_round_trips) {
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    std::vector<uint16_t> bits(65536), back(65536);
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i);
    std::vector<float> values(bits.size());
    from_16bit(bits, dtype, values);
    to_16bit(values, dtype, back);
    for (std::size_t i = 0; i < bits.size(); ++i) {
      if (std::isnan(values[i])) continue;  // NaN stays NaN, quieted
      ASSERT_EQ(back[i], bits[i]) << to_string(dtype) << " " << i;
      ASSERT_EQ(round_to_dtype(values[i], dtype), values[i]);
    }
  }
}

TEST(float16_conversions_test, round_to_dtype_is_what_a_16_bit_tensor_holds) {
  EXPECT_EQ(round_to_dtype(0.1f, DType::kF32), 0.1f);
  EXPECT_EQ(round_to_dtype(0.1f, DType::kF16), 0.0999755859375f);
  EXPECT_EQ(round_to_dtype(0.1f, DType::kBF16), 0.10009765625f);
  EXPECT_TRUE(std::isnan(round_to_dtype(std::numeric_limits<float>::quiet_NaN(), DType::kF16)));
  EXPECT_EQ(round_to_dtype(1e6f, DType::kF16), std::numeric_limits<float>::infinity());
}

// The rotation computes in float32 and rounds once on store: a 16-bit rotation stores exactly
// to_16bit of the float32 rotation of the same (widened) values.
TEST(float16_conversions_test, agrees_with_what_the_rotation_stores) {
  constexpr int64_t kTokens = 64, kHeadDim = 64;
  const Rope rope(default_config(kHeadDim));
  std::vector<int64_t> positions(kTokens);
  for (int64_t t = 0; t < kTokens; ++t) positions[static_cast<std::size_t>(t)] = 1000 * t + 7;
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    std::vector<uint16_t> q16(kTokens * kHeadDim);
    for (std::size_t i = 0; i < q16.size(); ++i) {  // finite values of both signs
      q16[i] = static_cast<uint16_t>(0x3000 + (37 * i) % 0x1000 + (i % 2) * 0x8000);
    }
    std::vector<float> q32(q16.size());
    from_16bit(q16, dtype, q32);
    rope.rotate(TensorView::contiguous(q16.data(), dtype, kTokens, 1, kHeadDim), positions);
    rope.rotate(TensorView::contiguous(q32.data(), DType::kF32, kTokens, 1, kHeadDim), positions);
    std::vector<uint16_t> expected(q32.size());
    to_16bit(q32, dtype, expected);
    EXPECT_EQ(q16, expected) << to_string(dtype);
  }
}

TEST(float16_conversions_test, wrong_dtype_or_sizes_are_refused_before_writing) {
  std::vector<uint16_t> bits(2, 0xABCD);
  std::vector<float> values(3, 1.0f);
  try {
    to_16bit(values, DType::kF16, bits);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(e.argument(), "bits");
  }
  EXPECT_EQ(bits, (std::vector<uint16_t>{0xABCD, 0xABCD}));
  try {
    from_16bit(bits, DType::kF32, std::span(values.data(), 2));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "dtype");
  }
  EXPECT_EQ(values, (std::vector<float>{1.0f, 1.0f, 1.0f}));
  EXPECT_THROW(from_16bit(bits, DType::kBF16, values), Error);
}

}  // namespace
}  // namespace rotary
