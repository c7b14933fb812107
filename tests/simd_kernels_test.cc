// The vectorised kernels against the portable reference, bit for bit, on every SIMD target this
// CPU supports (Highway lets the test pin each target in turn): every dtype x layout, head and
// rotary sizes with remainders shorter than a vector or block, partial rotary, in place and out of
// place, strided heads at odd offsets, special values (NaN payloads, infinities, subnormals) and
// rounding ties. Likewise hf cos/sin against the exact path, lane by lane, large angles
// included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "cpu/cos_sin.h"
#include "cpu/kernels.h"
#include "hwy/targets.h"
#include "rotary/rope.h"
#include "rotary/simd.h"
#include "test_tensors.h"

namespace rotary::detail {
namespace {

using testing::Buffer;

// Raw bit patterns per storage type: signalling NaN with a payload, negative quiet NaN with a
// payload, infinity, the smallest and the largest subnormal, the largest finite value.
std::vector<uint32_t> special_bits(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return {0x7F800001u, 0xFFC00123u, 0x7F800000u, 0x00000001u, 0x807FFFFFu, 0x7F7FFFFFu};
    case DType::kF16:
      return {0x7C01u, 0xFE01u, 0x7C00u, 0x0001u, 0x83FFu, 0x7BFFu};
    case DType::kBF16:
      return {0x7F81u, 0xFFC1u, 0x7F80u, 0x0001u, 0x807Fu, 0x7F7Fu};
  }
  return {};
}

void set_bits(Buffer& buffer, size_t i, uint32_t bits) {
  if (buffer.dtype == DType::kF32) {
    std::memcpy(buffer.bytes.data() + 4 * i, &bits, 4);
  } else {
    const auto half = static_cast<uint16_t>(bits);
    std::memcpy(buffer.bytes.data() + 2 * i, &half, 2);
  }
}

// The portable kernel and the current target's on the same input, in place and out of place;
// compares every channel of every head (pass-through channels included) bit for bit.
void expect_same_bits(const std::string& what, DType dtype, Layout layout, const Buffer& in,
                      const RotateParams& params, int64_t heads, int64_t head_stride) {
  for (bool in_place : {true, false}) {
    Buffer expected = in, actual = in;
    Buffer out_expected(dtype, in.size()), out_actual(dtype, in.size());
    void* e_out = in_place ? expected.data() : out_expected.data();
    void* a_out = in_place ? actual.data() : out_actual.data();
    portable_kernel(dtype, layout)(params,
                                   {expected.data(), e_out, heads, head_stride, head_stride});
    simd_kernel(dtype, layout)(params, {actual.data(), a_out, heads, head_stride, head_stride});
    const Buffer& e = in_place ? expected : out_expected;
    const Buffer& a = in_place ? actual : out_actual;
    for (int64_t h = 0; h < heads; ++h) {
      const size_t begin = static_cast<size_t>(h * head_stride) * dtype_size(dtype);
      const size_t end = begin + static_cast<size_t>(params.head_dim) * dtype_size(dtype);
      ASSERT_TRUE(
          std::equal(e.bytes.begin() + begin, e.bytes.begin() + end, a.bytes.begin() + begin))
          << what << " " << to_string(dtype) << " " << to_string(layout) << " head_dim "
          << params.head_dim << " rotary_dim " << params.rotary_dim
          << (in_place ? " in place" : " out of place") << " head " << h;
    }
  }
}

// Head and rotary sizes around every vector and block width (4 to 32 pairs), with remainders.
const std::pair<int64_t, int64_t> kSizes[] = {
    {128, 128}, {96, 24},  {80, 32}, {64, 62},   {40, 34},   {6, 6},     {2, 2},
    {130, 130}, {256, 64}, {34, 18}, {128, 112}, {126, 126}, {160, 128}, {72, 16}};

void compare_on_current_target(const std::string& target) {
  std::mt19937 rng(99);
  std::normal_distribution<float> normal;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (Layout layout : {Layout::kHalfSplit, Layout::kInterleaved}) {
      for (auto [head_dim, rotary_dim] : kSizes) {
        // Odd strides: 16-bit heads start at every 2-byte offset, not only 4-byte ones.
        for (const int64_t head_stride : {head_dim + 5, head_dim}) {
          const int64_t heads = 3;
          std::vector<float> cos(static_cast<size_t>(rotary_dim / 2)), sin(cos.size());
          for (size_t i = 0; i < cos.size(); ++i) {
            const float angle = normal(rng) * 10;
            cos[i] = std::cos(angle) * 1.1f;
            sin[i] = std::sin(angle) * 1.1f;
          }
          Buffer in(dtype, static_cast<size_t>(heads * head_stride));
          in.fill_normal(static_cast<uint32_t>(head_dim * 7 + rotary_dim));
          // Special values: overflow, subnormals, NaN, infinity.
          in.set(0, 65000.0f);
          in.set(1, std::numeric_limits<float>::quiet_NaN());
          in.set(3, 1e-7f);
          in.set(static_cast<size_t>(head_stride), -std::numeric_limits<float>::infinity());
          // Raw patterns in head 2, on even channels: an interleaved or half-split partner stays
          // finite (two NaN operands may be added in either order).
          const std::vector<uint32_t> special = special_bits(dtype);
          for (size_t k = 0; k < special.size() && static_cast<int64_t>(2 * k) < rotary_dim / 2;
               ++k) {
            set_bits(in, static_cast<size_t>(2 * head_stride) + 2 * k, special[k]);
          }
          // With and without the prefetch of heads ahead (streaming calls and cached ones).
          for (const bool prefetch : {false, true}) {
            const RotateParams params{cos.data(), sin.data(), rotary_dim, head_dim, prefetch};
            expect_same_bits(
                target + " stride " + std::to_string(head_stride) + (prefetch ? " prefetch" : ""),
                dtype, layout, in, params, heads, head_stride);
          }
        }
      }
    }
  }
}

// Rounding ties for the 16-bit types, built so that every rotated x channel lands exactly halfway
// between two representable values: x = 1 + m ulp, y = 1, cos 1, sin = -+ulp/2, so x*c - y*s =
// x +- ulp/2 (exact in float32). Round to nearest even picks the even one of m and m +- 1, written
// out here; the kernels must agree with it and with each other.
void check_ties_on_current_target(const std::string& target) {
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    const int mantissa_bits = dtype == DType::kF16 ? 10 : 7;
    const float ulp = std::ldexp(1.0f, -mantissa_bits);  // in [1, 2)
    for (Layout layout : {Layout::kHalfSplit, Layout::kInterleaved}) {
      for (auto [head_dim, rotary_dim] : kSizes) {
        const int64_t heads = 2, head_stride = head_dim + 1, half = rotary_dim / 2;
        std::vector<float> cos(static_cast<size_t>(half), 1.0f), sin(cos.size());
        Buffer in(dtype, static_cast<size_t>(heads * head_stride));
        in.fill_normal(3);
        std::vector<int64_t> m_of(static_cast<size_t>(half));
        const auto x_at = [&](int64_t j) { return layout == Layout::kInterleaved ? 2 * j : j; };
        const auto y_at = [&](int64_t j) {
          return layout == Layout::kInterleaved ? 2 * j + 1 : j + half;
        };
        for (int64_t j = 0; j < half; ++j) {
          const int64_t m = 1 + (j * 37) % ((int64_t{1} << mantissa_bits) - 2);
          m_of[static_cast<size_t>(j)] = m;
          // Both signs for odd and even m alike (m's parity follows j's).
          sin[static_cast<size_t>(j)] = j / 2 % 2 ? ulp / 2 : -ulp / 2;
          for (int64_t h = 0; h < heads; ++h) {
            in.set(static_cast<size_t>(h * head_stride + x_at(j)),
                   1.0f + static_cast<float>(m) * ulp);
            in.set(static_cast<size_t>(h * head_stride + y_at(j)), 1.0f);
          }
        }
        const RotateParams params{cos.data(), sin.data(), rotary_dim, head_dim, false};
        expect_same_bits(target + " ties", dtype, layout, in, params, heads, head_stride);
        Buffer out = in;
        simd_kernel(dtype, layout)(params,
                                   {out.data(), out.data(), heads, head_stride, head_stride});
        for (int64_t j = 0; j < half; ++j) {
          const int64_t m = m_of[static_cast<size_t>(j)];
          const int64_t other = j / 2 % 2 ? m - 1 : m + 1;  // x - ulp/2 or x + ulp/2
          const int64_t even = m % 2 == 0 ? m : other;
          for (int64_t h = 0; h < heads; ++h) {
            ASSERT_EQ(out.get(static_cast<size_t>(h * head_stride + x_at(j))),
                      1.0f + static_cast<float>(even) * ulp)
                << target << " " << to_string(dtype) << " " << to_string(layout) << " rotary_dim "
                << rotary_dim << " pair " << j << " m " << m;
          }
        }
      }
    }
  }
}

TEST(simd_kernels_test, every_target_matches_the_portable_kernel_bit_for_bit) {
  int tested = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = simd_target_name();
    EXPECT_EQ(name, hwy::TargetName(target));
    compare_on_current_target(name);
    check_ties_on_current_target(name);
    ++tested;
  }
  hwy::SetSupportedTargetsForTest(0);  // back to the real CPU
  std::printf("compared %d SIMD targets; this CPU dispatches to %s\n", tested,
              simd_target_name().c_str());
  EXPECT_GE(tested, 1);
}

// Frequencies whose angles (position 1) are small, past the float64 path's 2^29, and mixed within
// every vector; special values; an odd count, so the last vector is partial.
std::vector<float> cos_sin_test_frequencies() {
  std::mt19937 rng(5);
  std::vector<float> theta;
  for (int i = 0; i < 301; ++i) {
    const auto random = static_cast<uint32_t>(rng());
    const uint32_t field = i % 3 == 0 ? 100 + random % 50 : 150 + random % 105;  // 2^-27 .. 2^127
    const uint32_t bits = (static_cast<uint32_t>(rng()) & 0x807FFFFF) | field << 23;
    float t;
    std::memcpy(&t, &bits, sizeof t);
    theta.push_back(t);
  }
  // 0x1.33333p+13: the float64 series alone misrounds its sine (the midpoint check catches it).
  for (float t : {0.0f, -0.0f, 1.0f, 0x1.33333p+13f, 5e8f, 6e8f, std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN()}) {
    theta.insert(theta.begin() + 40, t);
  }
  return theta;
}

void compare_cos_sin_on_current_target(const std::string& target) {
  const std::vector<float> theta = cos_sin_test_frequencies();
  const int64_t count = static_cast<int64_t>(theta.size());
  std::vector<float> c(theta.size()), s(theta.size());
  for (int64_t position : {int64_t{1}, int64_t{-7}, int64_t{123457}, (int64_t{1} << 40) + 12345}) {
    const float scale = 1.1f;
    cos_sin_hf(theta.data(), count, position, scale, c.data(), s.data());
    for (std::size_t i = 0; i < theta.size(); ++i) {
      float ec, es;
      cos_sin_correctly_rounded(static_cast<float>(position) * theta[i], ec, es);
      ec *= scale;
      es *= scale;
      ASSERT_TRUE(std::memcmp(&c[i], &ec, sizeof ec) == 0 &&
                  std::memcmp(&s[i], &es, sizeof es) == 0)
          << target << " position " << position << " theta " << theta[i] << ": " << c[i] << " "
          << s[i] << " vs " << ec << " " << es;
    }
  }
}

TEST(simd_kernels_test, every_target_gives_the_exact_paths_hf_cos_sin_bit_for_bit) {
  int tested = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    EXPECT_EQ(simd_target_name(), hwy::TargetName(target));  // the pin took effect
    compare_cos_sin_on_current_target(hwy::TargetName(target));
    ++tested;
  }
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_GE(tested, 1);
}

// README: every SIMD target gives the same bits. Through the public API, target against target:
// Rope::cos_sin in both angle modes, cached and on-the-fly positions, YaRN's attention factor.
TEST(simd_kernels_test, every_target_gives_the_same_rope_cos_sin_bits) {
  RopeConfig config = default_config(128, 500000.0);
  config.rope_type = RopeType::kYarn;
  config.factor = 4.0;
  config.original_max_position_embeddings = 8192;
  config.max_position_embeddings = 32768;
  const int64_t p29 = int64_t{1} << 29, p40 = (int64_t{1} << 40) + 12345, p53 = int64_t{1} << 53;
  const std::vector<int64_t> positions = {0, 1, 63, 64, 8191, 32767, 123457, -7, p29, p40, p53};
  std::vector<std::vector<float>> first;  // the first target's cos and sin, per angle mode
  std::string first_target;
  int tested = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = hwy::TargetName(target);
    ASSERT_EQ(simd_target_name(), name);
    std::vector<std::vector<float>> results;
    for (AngleMode mode : {AngleMode::kHf, AngleMode::kExact}) {
      const Rope rope(config, {.angle_mode = mode, .cache_positions = 64});
      std::vector<float> c(positions.size() * 64), s(c.size());
      rope.cos_sin(positions, c, s);
      results.push_back(std::move(c));
      results.push_back(std::move(s));
    }
    if (tested++ == 0) {
      first = std::move(results);
      first_target = name;
      continue;
    }
    for (std::size_t i = 0; i < results.size(); ++i) {
      const char* what = i % 2 ? "sin" : "cos";
      const char* mode = i < 2 ? "hf" : "exact";
      for (std::size_t j = 0; j < results[i].size(); ++j) {
        ASSERT_EQ(std::memcmp(&results[i][j], &first[i][j], sizeof(float)), 0)
            << name << " vs " << first_target << ", " << mode << " " << what << " at position "
            << positions[j / 64] << ", pair " << j % 64 << ": " << results[i][j] << " vs "
            << first[i][j];
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  std::printf("compared Rope::cos_sin on %d SIMD targets\n", tested);
  EXPECT_GE(tested, 1);
}

}  // namespace
}  // namespace rotary::detail
