// The scalar cos/sin recipes, shared by the CPU and the CUDA kernels (ROTARY_HOST_DEVICE): the
// host build runs in its tests exactly the arithmetic the device runs.
//
// AngleMode::kHf: cos/sin of transformers' float32 angles, correctly rounded to float32. Two paths
// give the same bits. The fast one evaluates in float64 and certifies its own rounding (one lane:
// fast_cos_sin below; vectorised in src/cpu/cos_sin_simd.cc, which must agree with it): a lane it
// cannot certify, or whose angle is too large for its reduction, takes the exact path, integer
// arithmetic only.
//
// AngleMode::kExact: the float64 angle reduced exactly (exact_angle_reduced), then the platform's
// float64 cos and sin, the only step the host and the device do not share.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>

#include "numeric/host_device.h"

namespace rotary::detail {

// --- The float64 fast path's constants ----------------------------------------------------------

// pi/2 as hi + mid + lo: hi and mid are float32 values (24 significant bits), so k * hi and
// k * mid are exact for every quadrant count |k| < 2^29; lo is a double. Each part is pi/2's
// remainder rounded down, so all three are positive and r = angle - k * part keeps the sign of a
// zero angle.
inline constexpr double kPiOver2 = 0x1.921fb54442d18p+0;       // pi/2 rounded to double
inline constexpr double kPiOver2Tail = 6.123233995736766e-17;  // pi/2 - kPiOver2, next 53 bits
inline constexpr double kPiOver2Hi = 0x1.921fb4p+0;
inline constexpr double kPiOver2Mid = 0x1.4442dp-24;
inline constexpr double kPiOver2Lo = (kPiOver2 - kPiOver2Hi - kPiOver2Mid) + kPiOver2Tail;
static_assert(kPiOver2Hi == static_cast<float>(kPiOver2Hi) && kPiOver2Hi < kPiOver2);
static_assert(kPiOver2Mid == static_cast<float>(kPiOver2Mid) &&
              kPiOver2Mid < kPiOver2 - kPiOver2Hi && kPiOver2Lo > 0);
inline constexpr double kTwoOverPi = 0.6366197723675814;
inline constexpr double kRoundShifter = 0x1.8p52;  // x + it - it = x rounded to an integer

// The fast path serves |angle| < 2^29 (|k| < 2^29). Its reduction errs by |k| * 2^-99 <=
// |angle| * 2^-98.6 at most (lo's own error and the rounding of k * lo), negligible (< 2^-58
// relative) unless the reduced angle is tiny, so lanes with |r| < |angle| * 2^-40 take the exact
// path.
inline constexpr double kFastAngleLimit = 0x1p29;
inline constexpr double kTinyReducedRatio = 0x1p-40;

// Taylor coefficients (-1)^i / (2i+1)! and (-1)^i / (2i)!, i = 1..8: sin r = r (1 + z S(z)) and
// cos r = 1 + z C(z) with z = r^2 (truncation below 2^-58 on |r| <= pi/4).
ROTARY_HOST_DEVICE constexpr double inverse_factorial(int n) {
  double f = 1;
  for (int i = 2; i <= n; ++i) f *= i;  // exact up to 18!
  return 1 / f;
}
ROTARY_HOST_DEVICE constexpr double sin_coefficient(int i) {
  return (i % 2 ? -1 : 1) * inverse_factorial(2 * i + 1);
}
ROTARY_HOST_DEVICE constexpr double cos_coefficient(int i) {
  return (i % 2 ? -1 : 1) * inverse_factorial(2 * i);
}
inline constexpr int kSeriesTerms = 8;
struct SeriesCoefficients {
  double sin[kSeriesTerms + 1], cos[kSeriesTerms + 1];
};
ROTARY_HOST_DEVICE constexpr SeriesCoefficients make_series_coefficients() {
  SeriesCoefficients t{};
  for (int i = 1; i <= kSeriesTerms; ++i) {
    t.sin[i] = sin_coefficient(i);
    t.cos[i] = cos_coefficient(i);
  }
  return t;
}

// Certifying the float32 rounding of a float64 result v. The fast path's error is below 4 ulps of
// v (float64 ulps; 3.5 for sin r, 2 for cos r by a term-by-term bound), so rounding v to float32
// is the correct rounding of the exact value unless v lies within that distance of a float32
// midpoint. Within v's binade a midpoint has 2^28 in the low 29 bits of the significand (the
// bits float32 drops); the test flags 64 ulps either side.
inline constexpr uint64_t kLowBitsMask = (uint64_t{1} << 29) - 1;
inline constexpr uint64_t kMidpointLowBits = uint64_t{1} << 28;
inline constexpr uint64_t kMidpointMargin = 64;

ROTARY_HOST_DEVICE inline bool near_float_midpoint(double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  // (low - midpoint + margin) mod 2^29 < 2 * margin  <=>  |low - midpoint| < margin
  return ((bits + (kMidpointMargin - kMidpointLowBits)) & kLowBitsMask) < 2 * kMidpointMargin;
}

// --- The exact path --------------------------------------------------------------------------

namespace exact_cos_sin {

__extension__ typedef unsigned __int128 U128;

// floor(2^320 * 2 / pi) in 32-bit words, most significant first, after one zero word: word i
// holds bits 32i - 31 .. 32i of 2/pi's binary expansion (bits <= 0 are zero). Computed from
// Machin's formula; tests/angles_test.cc recomputes it.
inline constexpr int kTwoOverPiWordCount = 11;
ROTARY_HOST_DEVICE inline uint32_t two_over_pi_word(int i) {
  constexpr uint32_t kWords[kTwoOverPiWordCount] = {0x00000000, 0xA2F9836E, 0x4E441529, 0xFC2757D1,
                                                    0xF534DDC0, 0xDB629599, 0x3C439041, 0xFE5163AB,
                                                    0xDEBBC561, 0xB7246E3A, 0x424DD2E0};
  return kWords[i];
}
// round(pi/2 * 2^127) (tests/angles_test.cc recomputes it).
inline constexpr U128 kPiOver2Q127 = (U128{0xC90FDAA22168C234u} << 64) | U128{0xC4C6628B80DC1CD1u};

// The high 128 bits of a * b (truncated).
ROTARY_HOST_DEVICE inline U128 mul_high(U128 a, U128 b) {
  const U128 mask = ~uint64_t{0};
  const U128 a1 = a >> 64, a0 = a & mask, b1 = b >> 64, b0 = b & mask;
  const U128 low = a0 * b0, mid1 = a1 * b0, mid2 = a0 * b1;
  const U128 middle = (low >> 64) + (mid1 & mask) + (mid2 & mask);
  return a1 * b1 + (mid1 >> 64) + (mid2 >> 64) + (middle >> 64);
}

ROTARY_HOST_DEVICE inline int leading_zeros(U128 x) {
  const auto high = static_cast<uint64_t>(x >> 64), low = static_cast<uint64_t>(x);
#if defined(__CUDA_ARCH__)
  return high ? __clzll(high) : 64 + __clzll(low);
#else
  return high ? __builtin_clzll(high) : low ? 64 + __builtin_clzll(low) : 128;
#endif
}

// The reduced angle: angle = sign * (quadrant + t) * pi/2 with |t| <= 1/2, and
// r = t * pi/2 = (negative ? -1 : 1) * mantissa * 2^exponent, mantissa's top bit set.
struct Reduced {
  int quadrant = 0;
  bool negative = false;
  U128 mantissa = 0;
  int exponent = 0;
};

// |angle| = m * 2^e below 1/2 is its own reduced angle.
ROTARY_HOST_DEVICE inline Reduced reduce_small(uint32_t m, int e) {
  const int shift = leading_zeros(m);
  return {0, false, U128{m} << shift, e - shift};
}

// The 192 bits of 2/pi from bit `first` on (1-based), as six 32-bit words.
ROTARY_HOST_DEVICE inline void two_over_pi_window(int first, uint32_t* window) {
  const int bit = first + 31;  // index in the padded table, from its most significant bit
  const int word = bit / 32, shift = bit % 32;
  for (int i = 0; i < 6; ++i) {
    const uint32_t hi = two_over_pi_word(word + i), lo = two_over_pi_word(word + i + 1);
    window[i] = shift ? (hi << shift) | (lo >> (32 - shift)) : hi;
  }
}

// Payne-Hanek: m * 2^e * 2/pi mod 4 for m < 2^24, -24 <= e <= 104. Bits of 2/pi above 2^(1-e)
// contribute multiples of 4 and are skipped; the 192 kept bits leave an error below 2^-166.
ROTARY_HOST_DEVICE inline Reduced reduce_large(uint32_t m, int e) {
  uint32_t w[6], p[6];
  two_over_pi_window(e - 1, w);
  uint64_t carry = 0;
  for (int i = 5; i >= 0; --i) {  // p = m * w mod 2^192
    const uint64_t product = uint64_t{m} * w[i] + carry;
    p[i] = static_cast<uint32_t>(product);
    carry = product >> 32;
  }
  // p * 2^-190 = quadrant + fraction; fraction >= 1/2 rounds up to the next quadrant.
  Reduced r;
  r.quadrant = static_cast<int>(p[0] >> 30);
  p[0] &= 0x3FFFFFFF;
  if (p[0] >> 29) {
    r.quadrant = (r.quadrant + 1) & 3;
    r.negative = true;
    uint64_t borrow = 0;  // p = 2^190 - p
    for (int i = 5; i >= 0; --i) {
      const uint64_t diff = (i ? uint64_t{0} : uint64_t{1} << 30) - p[i] - borrow;
      p[i] = static_cast<uint32_t>(diff);
      borrow = diff >> 63;
    }
  }
  // The top 128 significant bits of the fraction, then times pi/2 (Q1.127).
  U128 high = 0, low = 0;
  for (int i = 0; i < 4; ++i) high = high << 32 | p[i];
  for (int i = 4; i < 6; ++i) low = low << 32 | p[i];
  const int zeros = leading_zeros(high);
  if (zeros == 128) return r;  // r = 0: a fraction below 2^-126 never occurs for a float32
  const U128 t = zeros ? (high << zeros) | (low << 64 >> (128 - zeros)) : high;
  U128 product = mul_high(t, kPiOver2Q127);
  // |fraction| = t * 2^(-126 - zeros) and pi/2 = kPiOver2Q127 * 2^-127, so r = product * 2^e:
  int exponent = -125 - zeros;
  if (!(product >> 127)) {
    product <<= 1;
    --exponent;
  }
  r.mantissa = product;
  r.exponent = exponent;
  return r;
}

// floor(2^128 / n!) for n = 2..31 (Q0.128), by successive exact floor divisions.
struct InverseFactorials {
  U128 v[32];
};
ROTARY_HOST_DEVICE constexpr InverseFactorials make_inverse_factorials() {
  InverseFactorials t{};
  U128 c = ~U128{0};
  for (unsigned n = 2; n < 32; ++n) t.v[n] = c /= n;
  return t;
}

// 1 - z * (c_first - z * (c_{first+2} - ...)) with c_n = 1/n!, z in Q0.128, result in Q1.127.
// For z <= 0.62, 15 terms leave a truncation below 2^-129 and the arithmetic errs by < 2^-124.
ROTARY_HOST_DEVICE inline U128 alternating_series(U128 z, int first) {
  static constexpr InverseFactorials kC = make_inverse_factorials();
  U128 h = kC.v[first + 28];
  for (int n = first + 26; n >= first; n -= 2) h = kC.v[n] - mul_high(z, h);
  return (U128{1} << 127) - (mul_high(z, h) >> 1);
}

// m * 2^e rounded to float32 (to nearest, ties to even; subnormals included). Values below
// 2^-149 do not occur: the smallest is the sine of the smallest subnormal angle.
ROTARY_HOST_DEVICE inline float round_to_float(U128 m, int e, bool negative) {
  uint32_t bits = negative ? 0x80000000u : 0;
  if (m != 0) {
    const int shift = leading_zeros(m);
    m <<= shift;
    e -= shift;
    const int biased = e + 254;  // the float32 exponent field of m * 2^e, m in [2^127, 2^128)
    const int drop = biased >= 1 ? 104 : 105 - biased;
    if (drop < 128) {
      const U128 kept = m >> drop, rest = m - (kept << drop), half = U128{1} << (drop - 1);
      const bool up = rest > half || (rest == half && (kept & 1));
      // For a normal value the leading bit of `kept` adds the 1 to the exponent field.
      bits += (biased >= 1 ? static_cast<uint32_t>(biased - 1) << 23 : 0) +
              static_cast<uint32_t>(kept) + (up ? 1 : 0);
    }
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace exact_cos_sin

// Correctly rounded cos and sin of any float32 angle (a quiet NaN for infinities and NaN): an
// exact reduction modulo pi/2 and 128-bit fixed-point series, within 2^-120 (relative) of the
// exact values, far closer than any float32 angle's cos or sin comes to a float32 midpoint.
ROTARY_HOST_DEVICE inline void cos_sin_correctly_rounded(float angle, float& cos_out,
                                                         float& sin_out) {
  using namespace exact_cos_sin;
  uint32_t bits;
  memcpy(&bits, &angle, sizeof bits);
  const int field = static_cast<int>(bits >> 23 & 0xFF);
  const uint32_t m = field ? (bits & 0x7FFFFF) | 0x800000 : bits & 0x7FFFFF;
  if (field == 0xFF) {
    const uint32_t nan = 0x7FC00000;
    memcpy(&cos_out, &nan, sizeof nan);
    sin_out = cos_out;
    return;
  }
  if (m == 0) {
    cos_out = 1;
    sin_out = angle;  // +-0
    return;
  }
  const int e = (field ? field : 1) - 150;  // |angle| = m * 2^e
  const Reduced r = field < 126 ? reduce_small(m, e) : reduce_large(m, e);
  // z = r^2 in Q0.128 (r < 1: the shift is to the right).
  const U128 square = mul_high(r.mantissa, r.mantissa);
  const int z_shift = -(2 * r.exponent + 256);
  const U128 z = r.mantissa == 0 || z_shift >= 128 ? 0 : square >> z_shift;
  const float c = round_to_float(alternating_series(z, 2), -127, false);
  const float s =
      round_to_float(mul_high(r.mantissa, alternating_series(z, 3)), r.exponent + 1, r.negative);
  const float cos_q[4] = {c, -s, -c, s}, sin_q[4] = {s, c, -s, -c};
  cos_out = cos_q[r.quadrant];
  sin_out = bits >> 31 ? -sin_q[r.quadrant] : sin_q[r.quadrant];
}

// --- One lane of AngleMode::kHf ------------------------------------------------------------------

// float64 cos and sin of `angle` (a float32 value) by the fast path: the reduction and series that
// src/cpu/cos_sin_simd.cc evaluates per vector, operation for operation. Returns true when their
// float32 rounding cannot be certified (or |angle| is outside the reduction's range, or not
// finite): then only cos_sin_correctly_rounded gives the correct float32 values.
ROTARY_HOST_DEVICE inline bool fast_cos_sin(double angle, double& cos_out, double& sin_out) {
  const double shifted = angle * kTwoOverPi + kRoundShifter;
  const double k = shifted - kRoundShifter;  // round(angle * 2/pi), ties to even; +0 for -0
  double r = angle - k * kPiOver2Hi;
  r = r - k * kPiOver2Mid;
  r = r - k * kPiOver2Lo;
  const double z = r * r;
  // A table, so that no compiler evaluates the factorials at run time.
  static constexpr SeriesCoefficients kC = make_series_coefficients();
  double ps = kC.sin[kSeriesTerms], pc = kC.cos[kSeriesTerms];
  for (int i = kSeriesTerms - 1; i >= 1; --i) {
    ps = kC.sin[i] + z * ps;
    pc = kC.cos[i] + z * pc;
  }
  const double s = r * (1.0 + z * ps);  // r * (...): sin(-0) = -0
  const double c = 1.0 + z * pc;
  const auto quadrant = static_cast<int>(bit_cast<uint64_t>(shifted) & 3);  // k mod 4
  const double cos_q[4] = {c, -s, -c, s}, sin_q[4] = {s, c, -s, -c};
  cos_out = cos_q[quadrant];
  sin_out = sin_q[quadrant];
  const double magnitude = std::fabs(angle);
  return !(magnitude < kFastAngleLimit) || std::fabs(r) < magnitude * kTinyReducedRatio ||
         near_float_midpoint(cos_out) || near_float_midpoint(sin_out);
}

// Correctly rounded cos and sin of a float32 angle: the fast path where it certifies itself, the
// exact path elsewhere.
ROTARY_HOST_DEVICE inline void cos_sin_rounded(float angle, float& cos_out, float& sin_out) {
  double c, s;
  if (fast_cos_sin(angle, c, s)) {
    cos_sin_correctly_rounded(angle, cos_out, sin_out);
  } else {
    cos_out = static_cast<float>(c);
    sin_out = static_cast<float>(s);
  }
}

// transformers' cos/sin of one frequency: the angle float32(position) * inv_freq in float32, its
// cos and sin correctly rounded, each times the attention factor in float32.
ROTARY_HOST_DEVICE inline void hf_mode_cos_sin(int64_t position, float inv_freq, float scale,
                                               float& cos_out, float& sin_out) {
  float c, s;
  cos_sin_rounded(static_cast<float>(position) * inv_freq, c, s);
  cos_out = c * scale;
  sin_out = s * scale;
}

// --- One lane of AngleMode::kExact ---------------------------------------------------------------

// 2 pi split in two doubles (Cody-Waite): kTwoPiHigh is 2 pi rounded to double, kTwoPiLow the
// remainder, so k * 2 pi is subtracted with ~2^-106 relative error instead of 2^-53.
inline constexpr double kTwoPiHigh = 2 * std::numbers::pi;
inline constexpr double kTwoPiLow = 2.4492935982947064e-16;

// position * inv_freq reduced to about [-pi, pi] in float64 (include/rotary/angles.h:
// exact_angle). The product of a float32 (24 bits) and an integer below 2^53 is held exactly as
// hi + lo.
ROTARY_HOST_DEVICE inline double exact_angle_reduced(int64_t position, float inv_freq) {
  const auto p = static_cast<double>(position);
  const double theta = inv_freq;
  const double hi = p * theta;
  const double lo = std::fma(p, theta, -hi);
  const double turns = std::nearbyint(hi / kTwoPiHigh);
  double reduced = std::fma(-turns, kTwoPiHigh, hi);
  reduced = std::fma(-turns, kTwoPiLow, reduced);
  return reduced + lo;
}

// cos and sin of the exact angle in float64, times the attention factor, rounded once to float32.
// The float64 cos and sin are the platform's: the C library's on the host, CUDA's on the device.
ROTARY_HOST_DEVICE inline void exact_mode_cos_sin(int64_t position, float inv_freq, double scale,
                                                  float& cos_out, float& sin_out) {
  const double angle = exact_angle_reduced(position, inv_freq);
  double c, s;
#if defined(__CUDA_ARCH__)
  sincos(angle, &s, &c);
#else
  c = std::cos(angle);
  s = std::sin(angle);
#endif
  cos_out = static_cast<float>(c * scale);
  sin_out = static_cast<float>(s * scale);
}

}  // namespace rotary::detail
