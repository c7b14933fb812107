// The arithmetic the CUDA kernels share with the CPU (numeric/cos_sin.h, numeric/float16.h), run
// on the host, so that every CI run checks it without a GPU: the vectorised cos/sin of every SIMD
// target against the shared one-lane recipe, the recipe's float64 fast path against the exact
// path's 128-bit values, and the 16-bit conversions, exhaustively, against oracles written here
// from the IEEE 754 definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "cpu/cos_sin.h"
#include "hwy/targets.h"
#include "numeric/cos_sin.h"
#include "numeric/float16.h"
#include "rotary/simd.h"

namespace rotary::detail {
namespace {

// Distance in float32 ulps, counting -0 and +0 one apart (their bits differ, and a sign flip is a
// bug); NaN against NaN is 0, NaN against a number "infinitely" far.
int64_t ulp_distance(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b) ? 0 : std::numeric_limits<int64_t>::max();
  }
  auto ordered = [](float f) {
    const auto u = std::bit_cast<uint32_t>(f);
    return u >> 31 ? -static_cast<int64_t>(u & 0x7FFFFFFFu) - 1 : static_cast<int64_t>(u);
  };
  const int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}

// --- cos/sin: every SIMD target against the shared recipe ---------------------------------------

// SIMD cos_sin_hf against hf_mode_cos_sin, in float32 ulps. Measured: 0 on every target (AVX3,
// AVX2, SSE4, SSSE3 and SCALAR, which runs hf_mode_cos_sin itself, with Highway 1.0 on an x86-64
// with AVX-512). The budget has no margin: both sides round the same float64 values, or fall back
// to the same correctly rounded exact path, so any difference at all means the vector code has
// left the shared recipe.
constexpr int64_t kSimdVsSharedUlps = 0;

// position, inv_freq pairs: real frequency sets at real positions, and random frequencies whose
// angles cover every binade from 2^-27 to 2^40 (past the fast path's 2^29 too), in odd counts so
// that every target also runs a partial last vector.
struct HfCase {
  int64_t position;
  std::vector<float> inv_freq;
};

std::vector<HfCase> hf_cases() {
  std::vector<HfCase> cases;
  for (double base : {10000.0, 500000.0}) {
    std::vector<float> theta;
    for (int i = 0; i < 64; ++i) theta.push_back(static_cast<float>(std::pow(base, -i / 64.0)));
    for (int64_t p : {int64_t{0}, int64_t{1}, int64_t{-7}, int64_t{4095}, int64_t{123457},
                      int64_t{131071}, (int64_t{1} << 29) + 3, (int64_t{1} << 40) + 12345}) {
      cases.push_back({p, theta});
    }
  }
  std::mt19937 rng(2024);
  for (int c = 0; c < 40; ++c) {
    std::vector<float> theta;
    for (int i = 0; i < 4001; ++i) {
      const auto field = static_cast<uint32_t>(100 + rng() % 68);  // 2^-27 .. 2^40
      const uint32_t bits = (static_cast<uint32_t>(rng()) & 0x807FFFFFu) | field << 23;
      theta.push_back(std::bit_cast<float>(bits));
    }
    cases.push_back({1, std::move(theta)});
  }
  std::vector<float> special = {0.0f,
                                -0.0f,
                                0x1.33333p+13f,  // the float64 series alone misrounds its sine
                                std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::max(),
                                std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN()};
  cases.push_back({1, special});
  cases.push_back({-3, special});
  return cases;
}

TEST(shared_numerics_test, every_simd_target_gives_the_shared_recipes_cos_sin) {
  const std::vector<HfCase> cases = hf_cases();
  int tested = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = hwy::TargetName(target);
    ASSERT_EQ(simd_target_name(), name);  // the pin took effect
    int64_t worst = 0, lanes = 0, exact_lanes = 0;
    for (const HfCase& c : cases) {
      const std::size_t n = c.inv_freq.size();
      std::vector<float> cos(n), sin(n);
      const float scale = 1.1f;
      cos_sin_hf(c.inv_freq.data(), static_cast<int64_t>(n), c.position, scale, cos.data(),
                 sin.data());
      for (std::size_t i = 0; i < n; ++i) {
        float ec, es;
        hf_mode_cos_sin(c.position, c.inv_freq[i], scale, ec, es);
        const int64_t d = std::max(ulp_distance(cos[i], ec), ulp_distance(sin[i], es));
        worst = std::max(worst, d);
        ASSERT_LE(d, kSimdVsSharedUlps)
            << name << " position " << c.position << " inv_freq " << c.inv_freq[i] << ": " << cos[i]
            << " " << sin[i] << " vs " << ec << " " << es;
        double fc, fs;
        exact_lanes += fast_cos_sin(static_cast<float>(c.position) * c.inv_freq[i], fc, fs);
        ++lanes;
      }
    }
    std::printf("%s: %lld lanes, %lld through the exact path, largest difference %lld ulps\n",
                name.c_str(), static_cast<long long>(lanes), static_cast<long long>(exact_lanes),
                static_cast<long long>(worst));
    ++tested;
  }
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_GE(tested, 1);
}

// --- cos/sin: the shared fast path against the exact path's 128-bit values -----------------------

// The fast path's float64 error, in float64 ulps of the exact value. The certification it makes
// (numeric/cos_sin.h: near_float_midpoint) assumes below 4 and flags 64 either side of a float32
// midpoint. Measured maximum: 1.84 ulps, cos and sin alike, over this test's angles; 1.95 over
// 2^25 random angles from 2^-27 to 2^29 (against long double cosl/sinl). The budget is the bound
// the certification relies on, twice the measured maximum.
constexpr double kFastPathUlps = 4;

// A value held as hi + lo, to ~106 bits.
struct DoubleDouble {
  double hi, lo;
};

// m * 2^e (times -1 when negative) as a double-double: m's top 53 bits, then the rest (exact).
DoubleDouble to_double_double(exact_cos_sin::U128 m, int e, bool negative) {
  using exact_cos_sin::U128;
  const int shift = exact_cos_sin::leading_zeros(m);
  m <<= shift;
  e -= shift;
  const auto top = static_cast<uint64_t>(m >> 75);                                 // 53 bits
  const auto middle = static_cast<uint64_t>(m >> 22) & ((uint64_t{1} << 53) - 1);  // 53 bits
  const auto bottom = static_cast<uint64_t>(m) & ((uint64_t{1} << 22) - 1);
  const double sign = negative ? -1 : 1;
  return {sign * std::ldexp(static_cast<double>(top), e + 75),
          sign * (std::ldexp(static_cast<double>(middle), e + 22) +
                  std::ldexp(static_cast<double>(bottom), e))};
}

// cos and sin of a float32 angle to ~120 bits by the exact path's reduction and series (the steps
// of cos_sin_correctly_rounded, without its final rounding to float32); false when the reduced
// angle is too small next to the angle for the fast path to serve it.
bool exact_reference(float angle, DoubleDouble& cos_out, DoubleDouble& sin_out) {
  using namespace exact_cos_sin;
  const auto bits = std::bit_cast<uint32_t>(angle);
  if ((bits & 0x7FFFFFFFu) == 0) return false;  // the exact path answers zero before reducing
  const int field = static_cast<int>(bits >> 23 & 0xFF);
  const uint32_t m = field ? (bits & 0x7FFFFF) | 0x800000 : bits & 0x7FFFFF;
  const int e = (field ? field : 1) - 150;
  const Reduced r = field < 126 ? reduce_small(m, e) : reduce_large(m, e);
  const double reduced = std::ldexp(static_cast<double>(r.mantissa), r.exponent);
  if (reduced < std::fabs(angle) * kTinyReducedRatio) return false;
  const U128 square = mul_high(r.mantissa, r.mantissa);
  const int z_shift = -(2 * r.exponent + 256);
  const U128 z = z_shift >= 128 ? 0 : square >> z_shift;
  const DoubleDouble c = to_double_double(alternating_series(z, 2), -127, false);
  const DoubleDouble s =
      to_double_double(mul_high(r.mantissa, alternating_series(z, 3)), r.exponent + 1, r.negative);
  auto neg = [](DoubleDouble v) { return DoubleDouble{-v.hi, -v.lo}; };
  const DoubleDouble cos_q[4] = {c, neg(s), neg(c), s}, sin_q[4] = {s, c, neg(s), neg(c)};
  cos_out = cos_q[r.quadrant];
  sin_out = bits >> 31 ? neg(sin_q[r.quadrant]) : sin_q[r.quadrant];
  return true;
}

double ulps_from(double v, DoubleDouble exact) {
  const double unit = std::ldexp(1.0, std::ilogb(exact.hi) - 52);
  return std::fabs((v - exact.hi) - exact.lo) / unit;  // v - hi is exact (Sterbenz)
}

TEST(shared_numerics_test, fast_path_stays_within_its_float64_error_bound) {
  std::mt19937 rng(7);
  double worst_cos = 0, worst_sin = 0;
  int64_t tested = 0, flagged = 0;
  std::vector<float> angles;
  for (int i = 0; i < (1 << 21); ++i) {
    const auto field = static_cast<uint32_t>(100 + rng() % 56);  // 2^-27 .. 2^29
    angles.push_back(
        std::bit_cast<float>((static_cast<uint32_t>(rng()) & 0x807FFFFFu) | field << 23));
  }
  angles.push_back(0x1.33333p+13f);  // the float64 series misrounds its sine: must be flagged
  // Around multiples of pi/4, where |r| is largest and cos and sin change places.
  for (int k = -64; k <= 64; ++k) {
    float a = static_cast<float>(k * std::numbers::pi / 4);
    for (int step = 0; step < 64; ++step) {
      angles.push_back(a);
      a = std::nextafter(a, std::numeric_limits<float>::infinity());
    }
  }
  for (float angle : angles) {
    DoubleDouble ec, es;
    if (!exact_reference(angle, ec, es)) continue;
    double c, s;
    flagged += fast_cos_sin(angle, c, s);
    worst_cos = std::max(worst_cos, ulps_from(c, ec));
    worst_sin = std::max(worst_sin, ulps_from(s, es));
    ASSERT_LT(std::max(ulps_from(c, ec), ulps_from(s, es)), kFastPathUlps)
        << "angle " << angle << ": " << c << " " << s;
    // Certified or not, the recipe's float32 result is the correctly rounded one.
    float rc, rs, xc, xs;
    cos_sin_rounded(angle, rc, rs);
    cos_sin_correctly_rounded(angle, xc, xs);
    ASSERT_EQ(std::bit_cast<uint32_t>(rc), std::bit_cast<uint32_t>(xc)) << "angle " << angle;
    ASSERT_EQ(std::bit_cast<uint32_t>(rs), std::bit_cast<uint32_t>(xs)) << "angle " << angle;
    ++tested;
  }
  std::printf("%lld angles, %lld flagged for the exact path; worst %.3f ulps (cos), %.3f (sin)\n",
              static_cast<long long>(tested), static_cast<long long>(flagged), worst_cos,
              worst_sin);
  EXPECT_GT(tested, 2000000);
  EXPECT_GE(flagged, 1);
}

// --- 16-bit conversions against the IEEE 754 definitions -----------------------------------------

// A binary interchange format by its parameters (IEEE 754-2019, 3.3): float16 has 10 fraction
// bits and bias 15, bfloat16 7 and 127 (float32's exponent, truncated fraction).
struct Format {
  int fraction_bits;
  int bias;
  int exponent_max() const { return (1 << (15 - fraction_bits)) - 1; }  // all ones: inf, NaN
  uint16_t infinity() const { return static_cast<uint16_t>(exponent_max() << fraction_bits); }
  uint16_t quiet_bit() const { return static_cast<uint16_t>(1u << (fraction_bits - 1)); }
};
constexpr Format kHalf{10, 15};
constexpr Format kBfloat{7, 127};

// The value of a finite encoding, from the definition: (-1)^s * 2^(1 - bias) * 0.f for a
// subnormal, (-1)^s * 2^(e - bias) * 1.f for a normal number (exact in double).
double value_of(Format f, uint16_t bits) {
  const int e = (bits & 0x7FFF) >> f.fraction_bits;
  const int fraction = bits & ((1 << f.fraction_bits) - 1);
  const double magnitude =
      e == 0 ? std::ldexp(fraction, 1 - f.bias - f.fraction_bits)
             : std::ldexp(fraction + (1 << f.fraction_bits), e - f.bias - f.fraction_bits);
  return bits >> 15 ? -magnitude : magnitude;
}

float widen(Format f, uint16_t bits) {
  return f.fraction_bits == 10 ? to_float(Float16{bits}) : to_float(BFloat16{bits});
}
uint16_t narrow(Format f, float x) {
  return f.fraction_bits == 10 ? to_float16(x).bits : to_bfloat16(x).bits;
}

void expect_every_encoding_widens_exactly(Format f) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto bits = static_cast<uint16_t>(b);
    const float x = widen(f, bits);
    const int e = (bits & 0x7FFF) >> f.fraction_bits;
    const uint32_t fraction = bits & ((1u << f.fraction_bits) - 1);
    const auto x_bits = std::bit_cast<uint32_t>(x);
    ASSERT_EQ(x_bits >> 31, static_cast<uint32_t>(bits >> 15)) << std::hex << b;  // sign, also 0
    if (e == f.exponent_max() && fraction == 0) {
      ASSERT_TRUE(std::isinf(x)) << std::hex << b;
    } else if (e == f.exponent_max()) {
      // NaN: the payload moves to the top of float32's fraction, quiet bit and all.
      ASSERT_TRUE(std::isnan(x)) << std::hex << b;
      ASSERT_EQ(x_bits & 0x7FFFFFu, fraction << (23 - f.fraction_bits)) << std::hex << b;
    } else {
      ASSERT_EQ(static_cast<double>(x), value_of(f, bits)) << std::hex << b;
    }
  }
}

TEST(shared_numerics_test, float16_to_float_is_exact_for_all_65536_encodings) {
  expect_every_encoding_widens_exactly(kHalf);
}

TEST(shared_numerics_test, bfloat16_to_float_is_exact_for_all_65536_encodings) {
  expect_every_encoding_widens_exactly(kBfloat);
}

// The correctly rounded encoding of a float32 by the definition (IEEE 754-2019, 4.3.1 and 7.4):
// the nearest of the format's values, a tie to the one with an even last fraction bit, and a
// magnitude at or past max + ulp/2 (where the next value would be with an unbounded exponent,
// 2^(emax + 1)) to infinity; the sign is kept, zero included. `ladder` holds every non-negative
// finite value in encoding order followed by that 2^(emax + 1), so a value's index is its
// encoding.
uint16_t nearest_encoding(const std::vector<double>& ladder, float x) {
  const double magnitude = std::fabs(static_cast<double>(x));
  const auto sign = static_cast<uint16_t>(std::signbit(x) ? 0x8000 : 0);
  if (magnitude >= ladder.back()) return static_cast<uint16_t>(sign | (ladder.size() - 1));
  const auto above = static_cast<std::size_t>(
      std::lower_bound(ladder.begin(), ladder.end(), magnitude) - ladder.begin());
  if (ladder[above] == magnitude) return static_cast<uint16_t>(sign | above);
  const std::size_t below = above - 1;
  const double to_below = magnitude - ladder[below], to_above = ladder[above] - magnitude;
  std::size_t pick = to_below < to_above ? below : above;
  if (to_below == to_above) pick = below % 2 == 0 ? below : above;
  return static_cast<uint16_t>(sign | pick);  // `above` past the last finite value: infinity
}

std::vector<double> ladder_of(Format f) {
  std::vector<double> ladder;
  for (uint16_t b = 0; b < f.infinity(); ++b) ladder.push_back(value_of(f, b));
  ladder.push_back(std::ldexp(1.0, f.exponent_max() - f.bias));
  return ladder;
}

void expect_rounding_to_nearest_even(Format f) {
  const std::vector<double> ladder = ladder_of(f);
  std::vector<float> inputs;
  // Around every boundary where the rounding can change: each value, its float32 neighbours, the
  // midpoint to the next value (exact in float32, which has more fraction bits) and its
  // neighbours, for both signs; this includes the subnormals, zero and the overflow threshold.
  for (std::size_t i = 0; i + 1 < ladder.size(); ++i) {
    const auto value = static_cast<float>(ladder[i]);
    const auto midpoint = static_cast<float>((ladder[i] + ladder[i + 1]) / 2);
    for (float x : {value, midpoint}) {
      inputs.push_back(x);
      inputs.push_back(std::nextafter(x, 0.0f));
      inputs.push_back(std::nextafter(x, std::numeric_limits<float>::infinity()));
    }
  }
  // Random bit patterns, float32's own subnormals, infinities, the largest finite float32.
  std::mt19937 rng(16);
  for (int i = 0; i < 1000000; ++i)
    inputs.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (float x : {std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                  std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max()}) {
    inputs.push_back(x);
  }
  const std::size_t count = inputs.size();
  for (std::size_t i = 0; i < count; ++i) inputs.push_back(-inputs[i]);
  int64_t checked = 0;
  for (float x : inputs) {
    if (std::isnan(x)) continue;
    ASSERT_EQ(narrow(f, x), nearest_encoding(ladder, x))
        << std::hex << "input bits " << std::bit_cast<uint32_t>(x);
    ++checked;
  }
  EXPECT_GT(checked, 2000000);
}

TEST(shared_numerics_test, float_to_float16_rounds_to_nearest_even) {
  expect_rounding_to_nearest_even(kHalf);
}

TEST(shared_numerics_test, float_to_bfloat16_rounds_to_nearest_even) {
  expect_rounding_to_nearest_even(kBfloat);
}

// NaN stays NaN with its sign, quiet, and the top of its payload; signalling NaNs included.
void expect_nan_stays_nan(Format f) {
  std::mt19937 rng(3);
  std::vector<uint32_t> nans = {0x7FC00000u, 0x7F800001u, 0x7FBFFFFFu, 0x7FFFFFFFu, 0x7FA00000u};
  for (int i = 0; i < 100000; ++i)
    nans.push_back(0x7F800000u | static_cast<uint32_t>(1 + rng() % 0x7FFFFF));
  for (uint32_t n : nans) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      const uint32_t x = n | sign;
      const uint16_t h = narrow(f, std::bit_cast<float>(x));
      const uint32_t payload = (x & 0x7FFFFFu) >> (23 - f.fraction_bits);
      const auto expected =
          static_cast<uint16_t>((sign >> 16) | f.infinity() | f.quiet_bit() | payload);
      ASSERT_EQ(h, expected) << std::hex << "input bits " << x;
    }
  }
}

TEST(shared_numerics_test, float_to_float16_keeps_nan_quiet_with_sign_and_payload) {
  expect_nan_stays_nan(kHalf);
}

TEST(shared_numerics_test, float_to_bfloat16_keeps_nan_quiet_with_sign_and_payload) {
  expect_nan_stays_nan(kBfloat);
}

// The named cases, spelled out: the boundaries a reader checks first.
TEST(shared_numerics_test, conversions_at_the_named_boundaries) {
  EXPECT_EQ(to_float16(65504.0f).bits, 0x7BFF);                        // largest finite
  EXPECT_EQ(to_float16(std::nextafter(65520.0f, 0.0f)).bits, 0x7BFF);  // just below the tie
  EXPECT_EQ(to_float16(65520.0f).bits, 0x7C00);                        // the tie: overflow
  EXPECT_EQ(to_float16(-1e30f).bits, 0xFC00);                          // far past: -infinity
  EXPECT_EQ(to_float16(0x1p-24f).bits, 0x0001);                        // smallest subnormal
  EXPECT_EQ(to_float16(0x1p-25f).bits, 0x0000);                        // tie to even: zero
  EXPECT_EQ(to_float16(0x1.000002p-25f).bits, 0x0001);                 // past the tie
  EXPECT_EQ(to_float16(0x3p-25f).bits, 0x0002);                        // tie to even: up
  EXPECT_EQ(to_float16(0x1.ff8p-15f).bits, 0x03FF);                    // largest subnormal
  EXPECT_EQ(to_float16(0x1.ffcp-15f).bits, 0x0400);  // the tie above it: even, the smallest normal
  EXPECT_EQ(to_float16(-0.0f).bits, 0x8000);
  EXPECT_EQ(to_float16(-1e-30f).bits, 0x8000);                             // underflow keeps sign
  EXPECT_EQ(to_bfloat16(std::numeric_limits<float>::max()).bits, 0x7F80);  // overflow
  EXPECT_EQ(to_bfloat16(0x1.fefffep127f).bits, 0x7F7F);                    // below the tie
  EXPECT_EQ(to_bfloat16(1.00390625f).bits, 0x3F80);                        // 1 + 2^-8: tie, even
  EXPECT_EQ(to_bfloat16(1.01171875f).bits, 0x3F82);                        // 1 + 3 * 2^-8: up
  EXPECT_EQ(to_bfloat16(std::numeric_limits<float>::denorm_min()).bits, 0x0000);
  // The conversions are constexpr, as the device compiles them.
  static_assert(to_float16(1.0f).bits == 0x3C00 && to_bfloat16(-2.0f).bits == 0xC000);
  static_assert(to_float(Float16{0x7BFF}) == 65504.0f && to_float(BFloat16{0x3F80}) == 1.0f);
}

}  // namespace
}  // namespace rotary::detail
