// The two angle modes against a long double oracle of cos(position * theta), theta being the
// model's float32 frequency; hf cos/sin correctly rounded for every float32 angle; the exact
// path's tables of 2/pi and pi/2 recomputed from Machin's formula.
#include "rotary/angles.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "cpu/cos_sin.h"
#include "rotary/frequencies.h"
#include "rotary/rope.h"

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
    std::printf("%-10lld  %-18.3g  %.3g\n", static_cast<long long>(position), e.worst_hf,
                e.worst_exact);
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
  for (int64_t position :
       {int64_t{0}, int64_t{1}, int64_t{123456789}, int64_t{1} << 52, -(int64_t{1} << 50)}) {
    for (float theta : {1.0f, 0.5f, 1e-4f, 3.14159f}) {
      const double a = exact_angle(position, theta);
      EXPECT_LE(std::fabs(a), 3.1415927) << position << " " << theta;
      const long double product = static_cast<long double>(position) * theta;
      EXPECT_NEAR(std::sin(a), static_cast<double>(std::sin(product)), 1e-15)
          << position << " " << theta;
      EXPECT_NEAR(std::cos(a), static_cast<double>(std::cos(product)), 1e-15)
          << position << " " << theta;
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

// --- hf cos/sin: correctly rounded float32 of cos/sin of the float32 angle -------------------
//
// The oracle is glibc's long double cosl/sinl on x86-64: a 64-bit significand, the argument
// reduced exactly however large it is (__kernel_rem_pio2, 2/pi to hundreds of bits), the result
// within about 1 ulp (2^-63 relative). Every float32 angle is exact in long double. Where the
// oracle lies more than 2^-58 (relative) from a float32 midpoint, its float32 rounding is the
// correct rounding of the exact value; nearer (about one case in 10^10), either neighbour passes.

bool oracle_is_precise() { return std::numeric_limits<long double>::digits >= 64; }

std::string hex(float x) {
  char text[32];
  std::snprintf(text, sizeof text, "%a", static_cast<double>(x));
  return text;
}

testing::AssertionResult correctly_rounded(float f, long double oracle) {
  const float r = static_cast<float>(oracle);
  if (f == r && std::signbit(f) == std::signbit(r)) return testing::AssertionSuccess();
  const long double mid = (static_cast<long double>(f) + r) / 2;
  const bool neighbours = std::nextafter(r, f) == f;
  if (neighbours && std::fabs(oracle - mid) <= std::fabs(oracle) * 0x1p-58L) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure()
         << "got " << f << " (" << hex(f) << "), correctly rounded " << r << " (" << hex(r) << ")";
}

// hf cos/sin (attention factor 1) of float32(position) * theta[i], each checked against the oracle.
int count_misrounded_hf(const std::vector<float>& theta, int64_t position) {
  std::vector<float> c(theta.size()), s(theta.size());
  compute_cos_sin(theta, 1.0, position, AngleMode::kHf, c, s);
  int bad = 0;
  for (std::size_t i = 0; i < theta.size(); ++i) {
    const float angle = static_cast<float>(position) * theta[i];  // transformers' float32 angle
    if (!std::isfinite(angle)) {
      bad += !(std::isnan(c[i]) && std::isnan(s[i]));
      continue;
    }
    const auto cos_ok = correctly_rounded(c[i], std::cos(static_cast<long double>(angle)));
    const auto sin_ok = correctly_rounded(s[i], std::sin(static_cast<long double>(angle)));
    if (!cos_ok || !sin_ok) {
      if (++bad <= 5) {
        ADD_FAILURE() << "position " << position << " theta " << theta[i] << " angle " << hex(angle)
                      << ": cos " << cos_ok.message() << "; sin " << sin_ok.message();
      }
    }
  }
  return bad;
}

TEST(angles_test, hf_reproducer_position_2_pow_40_plus_12345) {
  if (!oracle_is_precise()) GTEST_SKIP() << "long double has fewer than 64 significant bits";
  // float32(2^40 + 12345) = 2^40. The old reduction gave cos = -0.9140198; cos(2^40) = -0.9140041.
  const int64_t position = (int64_t{1} << 40) + 12345;
  std::vector<float> c(1), s(1);
  compute_cos_sin(std::vector<float>{1.0f}, 1.0, position, AngleMode::kHf, c, s);
  EXPECT_NEAR(c[0], -0.9140041, 1e-7);
  EXPECT_TRUE(correctly_rounded(c[0], std::cos(0x1p40L)));
  EXPECT_TRUE(correctly_rounded(s[0], std::sin(0x1p40L)));
}

TEST(angles_test, hf_sin_at_the_one_angle_below_2_pow_29_that_float64_alone_misrounds) {
  // Over every float32 angle below 2^29, the float64 series rounded to float32 is wrong at this
  // angle only (sin: -0x1.63f4bcp-2). Its float64 value lies next to a float32 midpoint, so the
  // check sends it to the exact path.
  const float angle = 0x1.33333p+13f;  // 9830.3984375
  std::vector<float> c(1), s(1);
  compute_cos_sin(std::vector<float>{angle}, 1.0, 1, AngleMode::kHf, c, s);
  EXPECT_EQ(s[0], -0x1.63f4bap-2f);
  EXPECT_EQ(c[0], -0x1.e01216p-1f);
  if (oracle_is_precise()) {
    EXPECT_TRUE(correctly_rounded(s[0], std::sin(static_cast<long double>(angle))));
    EXPECT_TRUE(correctly_rounded(c[0], std::cos(static_cast<long double>(angle))));
  }
}

TEST(angles_test, hf_cos_sin_are_correctly_rounded_in_every_binade_up_to_float_max) {
  if (!oracle_is_precise()) GTEST_SKIP() << "long double has fewer than 64 significant bits";
  // Position 1 makes the float32 angle theta itself: 1024 random float32 angles per binade from
  // 2^-30 to 2^127, both signs, the binades' first and last values, and float32's largest value.
  std::mt19937 rng(2024);
  std::vector<float> angles;
  for (uint32_t field = 97; field <= 254; ++field) {
    for (int i = 0; i < 1026; ++i) {
      const uint32_t mantissa = i == 0 ? 0 : i == 1 ? 0x7FFFFF : rng() & 0x7FFFFF;
      const uint32_t bits = (i % 4 == 3 ? 0x80000000u : 0) | field << 23 | mantissa;
      float a;
      std::memcpy(&a, &bits, sizeof a);
      angles.push_back(a);
    }
  }
  angles.push_back(8e8f);
  angles.push_back(3e38f);
  angles.push_back(std::numeric_limits<float>::max());
  angles.push_back(std::numeric_limits<float>::denorm_min());
  angles.push_back(-0.0f);
  EXPECT_EQ(count_misrounded_hf(angles, 1), 0);
}

TEST(angles_test, hf_cos_sin_are_correctly_rounded_at_positions_up_to_2_pow_53) {
  if (!oracle_is_precise()) GTEST_SKIP() << "long double has fewer than 64 significant bits";
  // theta 1 (pair 0 of every model), a Llama 3 table, and large explicit frequencies
  // (Rope(config, frequencies) takes any finite theta): angles from 8e8 to float32's largest, and
  // overflowed angles (cos/sin NaN, as float32 cos/sin of infinity).
  std::vector<float> theta = compute_frequencies(default_config(128, 500000.0)).inv_freq;
  for (float t : {3.0f, 0.75f, 1e3f, 12345.678f, 1e10f, 1e20f, 3e22f, 1e30f}) theta.push_back(t);
  const int64_t p53 = int64_t{1} << 53;
  for (int64_t position :
       {int64_t{800000000}, int64_t{1} << 29, int64_t{1000000007}, (int64_t{1} << 31) - 1,
        (int64_t{1} << 40) + 12345, int64_t{1000000000000} + 7, (int64_t{1} << 50) + 3,
        int64_t{1000000000000000}, p53 - 1, p53, -p53, -int64_t{999999999999}}) {
    EXPECT_EQ(count_misrounded_hf(theta, position), 0) << "position " << position;
  }
  for (int e = 29; e <= 53; ++e) {
    EXPECT_EQ(count_misrounded_hf({1.0f}, (int64_t{1} << e) + e * 1000003), 0) << "2^" << e;
  }
}

// README: hf cos/sin are never further from the true value than glibc's cosf (and sinf), which is
// not correctly rounded in a small share of cases. Checked directly, against the oracle: random
// angles in every binade from 2^-30 to 2^127, the one angle below 2^29 whose float64 series
// misrounds, and a Llama 3 table at positions up to 10^6 and near 2^40.
TEST(angles_test, hf_cos_sin_are_never_further_from_the_truth_than_glibc_cosf_sinf) {
  if (!oracle_is_precise()) GTEST_SKIP() << "long double has fewer than 64 significant bits";
  std::mt19937 rng(77);
  std::vector<float> angles;
  for (uint32_t field = 97; field <= 254; ++field) {
    for (int i = 0; i < 256; ++i) {
      const uint32_t bits = (i % 2 ? 0x80000000u : 0) | field << 23 | (rng() & 0x7FFFFF);
      float a;
      std::memcpy(&a, &bits, sizeof a);
      angles.push_back(a);
    }
  }
  angles.push_back(0x1.33333p+13f);
  std::vector<std::pair<std::vector<float>, int64_t>> calls = {{angles, 1}};
  const std::vector<float> llama = compute_frequencies(default_config(128, 500000.0)).inv_freq;
  for (int64_t position = 1; position <= 1000000; position += 997) {
    calls.push_back({llama, position});
  }
  for (int64_t k = 0; k < 64; ++k) calls.push_back({llama, (int64_t{1} << 40) + 12345 * k});
  int64_t compared = 0, libm_misrounded = 0, further = 0;
  for (const auto& [theta, position] : calls) {
    std::vector<float> c(theta.size()), s(theta.size());
    compute_cos_sin(theta, 1.0, position, AngleMode::kHf, c, s);
    for (std::size_t i = 0; i < theta.size(); ++i) {
      const float angle = static_cast<float>(position) * theta[i];  // transformers' float32 angle
      const long double exact[2] = {std::cos(static_cast<long double>(angle)),
                                    std::sin(static_cast<long double>(angle))};
      const float ours[2] = {c[i], s[i]}, libm[2] = {::cosf(angle), ::sinf(angle)};
      for (int f = 0; f < 2; ++f) {
        const long double our_error = std::fabs(ours[f] - exact[f]);
        const long double libm_error = std::fabs(libm[f] - exact[f]);
        ++compared;
        libm_misrounded += ours[f] != libm[f];
        // 2^-58 relative: the oracle's own uncertainty, as in correctly_rounded.
        if (our_error > libm_error + std::fabs(exact[f]) * 0x1p-58L && ++further <= 5) {
          ADD_FAILURE() << (f ? "sin(" : "cos(") << hex(angle) << "): rotary " << hex(ours[f])
                        << " is further from the truth than glibc's " << hex(libm[f]);
        }
      }
    }
  }
  std::printf("%lld cos/sin values; glibc's cosf/sinf differ from rotary's in %lld\n",
              static_cast<long long>(compared), static_cast<long long>(libm_misrounded));
  EXPECT_EQ(further, 0);
}

TEST(angles_test, hf_cache_and_on_the_fly_agree_at_large_angles) {
  // Large explicit frequencies put the cached positions' angles up to 1e33; positions past the
  // cache go up to 2^53. Both paths, and compute_cos_sin, give the same bits.
  RopeConfig config = default_config(8);
  const Frequencies frequencies{{1.0f, 3.0e7f, 1.5e25f, 1e31f}, 1.25, 8};
  const Rope cached(config, frequencies, {.cache_positions = 64});
  const Rope fly(config, frequencies);
  const std::vector<int64_t> positions = {
      0, 1, 37, 63, 64, (int64_t{1} << 40) + 12345, int64_t{1} << 53};
  std::vector<float> c1(positions.size() * 4), s1(c1.size()), c2(c1.size()), s2(c1.size());
  cached.cos_sin(positions, c1, s1);
  fly.cos_sin(positions, c2, s2);
  EXPECT_EQ(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(s1.data(), s2.data(), s1.size() * sizeof(float)), 0);
  for (std::size_t t = 0; t < positions.size(); ++t) {
    std::vector<float> c(4), s(4);
    compute_cos_sin(frequencies.inv_freq, 1.25, positions[t], AngleMode::kHf, c, s);
    EXPECT_EQ(std::memcmp(c.data(), &c1[t * 4], 4 * sizeof(float)), 0) << positions[t];
    EXPECT_EQ(std::memcmp(s.data(), &s1[t * 4], 4 * sizeof(float)), 0) << positions[t];
  }
}

// --- The exact path's constants, recomputed ---------------------------------------------------
//
// Fixed-point numbers as 32-bit limbs, least significant first. pi comes from Machin's formula
// pi = 16 atan(1/5) - 4 atan(1/239) with 512 fraction bits (each series term truncated: the error
// is a few thousand units of 2^-512).

using Limbs = std::vector<uint32_t>;
constexpr int kFractionLimbs = 16;

void divide(Limbs& a, uint32_t d) {
  uint64_t rest = 0;
  for (std::size_t i = a.size(); i-- > 0;) {
    const uint64_t cur = rest << 32 | a[i];
    a[i] = static_cast<uint32_t>(cur / d);
    rest = cur % d;
  }
}

void add_or_subtract(Limbs& a, const Limbs& b, bool subtract) {
  int64_t carry = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const int64_t cur = int64_t{a[i]} + (subtract ? -int64_t{b[i]} : int64_t{b[i]}) + carry;
    a[i] = static_cast<uint32_t>(cur);
    carry = cur < 0 ? -1 : cur >> 32;
  }
}

bool is_zero(const Limbs& a) {
  return std::all_of(a.begin(), a.end(), [](uint32_t x) { return x == 0; });
}

// atan(1/x) * m in fixed point.
Limbs atan_inverse(uint32_t x, uint32_t m) {
  Limbs sum(kFractionLimbs + 1), power(kFractionLimbs + 1);
  power[kFractionLimbs] = m;
  divide(power, x);  // m / x^(2n+1)
  for (uint32_t n = 0; !is_zero(power); ++n) {
    Limbs term = power;
    divide(term, 2 * n + 1);
    add_or_subtract(sum, term, n % 2 == 1);
    divide(power, x * x);
  }
  return sum;
}

Limbs multiply(const Limbs& a, const Limbs& b) {
  Limbs product(a.size() + b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    uint64_t carry = 0;
    for (std::size_t j = 0; j < b.size(); ++j) {
      const uint64_t cur = uint64_t{a[i]} * b[j] + product[i + j] + carry;
      product[i + j] = static_cast<uint32_t>(cur);
      carry = cur >> 32;
    }
    product[i + b.size()] = static_cast<uint32_t>(carry);
  }
  return product;
}

// a < b, both of one size.
bool less(const Limbs& a, const Limbs& b) {
  return std::lexicographical_compare(a.rbegin(), a.rend(), b.rbegin(), b.rend());
}

TEST(angles_test, exact_path_constants_match_machin_formula) {
  Limbs pi = atan_inverse(5, 16);
  add_or_subtract(pi, atan_inverse(239, 4), true);
  EXPECT_EQ(pi[kFractionLimbs], 3u);
  EXPECT_EQ(pi[kFractionLimbs - 1], 0x243F6A88u);  // the well-known first fraction digits

  // kPiOver2Q127 = round(pi * 2^126): v = pi * 2^128 (160 bits), then (v >> 2) + bit 1 of v.
  Limbs v(pi.end() - 5, pi.end());
  divide(v, 2);
  const uint32_t round_bit = v[0] & 1;
  divide(v, 2);
  ASSERT_EQ(v[4], 0u);
  using detail::exact_cos_sin::U128;
  const U128 rounded =
      ((U128{v[3]} << 96 | U128{v[2]} << 64 | U128{v[1]} << 32 | v[0]) + round_bit);
  EXPECT_TRUE(rounded == detail::exact_cos_sin::kPiOver2Q127);

  // The 2/pi words hold G = floor(2^321 / pi): 0 < 2^321 - G pi < pi. With pi truncated to
  // 2^-512, G pi is underestimated by less than G * 2^-500 < 2^-179, far inside both margins.
  EXPECT_EQ(detail::exact_cos_sin::two_over_pi_word(0), 0u);
  Limbs g(10);
  for (int i = 1; i <= 10; ++i)
    g[static_cast<std::size_t>(10 - i)] = detail::exact_cos_sin::two_over_pi_word(i);
  const Limbs product = multiply(g, pi);  // G pi * 2^512
  Limbs target(product.size());
  target[(321 + 32 * kFractionLimbs) / 32] = 1u << (321 % 32);
  ASSERT_TRUE(less(product, target));
  Limbs rest = target;
  add_or_subtract(rest, product, true);  // (2^321 - G pi) * 2^512
  Limbs margin(product.size()), pi_wide = pi;
  margin[kFractionLimbs - 4] = 1;  // 2^-384
  pi_wide.resize(product.size());
  EXPECT_TRUE(less(margin, rest));
  Limbs rest_plus_margin = rest;
  add_or_subtract(rest_plus_margin, margin, false);
  EXPECT_TRUE(less(rest_plus_margin, pi_wide));
}

}  // namespace
}  // namespace rotary
