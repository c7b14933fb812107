// Vectorised cos/sin of transformers' float32 angles (AngleMode::kHf), with run-time dispatch.
//
// The angle is formed exactly as transformers forms it: float32(position) * theta_i, one float32
// multiply. It is then evaluated in float64: reduced modulo pi/2 with a three-part constant whose
// first two parts have 24 significant bits (so k * part is exact for every quadrant count k below
// 2^29, i.e. all angles a float32 can hold up to 8e8), and approximated by the Taylor series of
// sin and cos on [-pi/4, pi/4] to degree 15/16 (truncation error below 1e-13). Rounding that to
// float32 gives the correctly rounded cos/sin except when the exact value lies within ~1e-13 of a
// rounding boundary, the same results as a correctly rounded libm's cosf/sinf; the attention
// factor is then applied in float32, as transformers does.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/cos_sin_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "cpu/cos_sin.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rotary::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// pi/2 as hi + mid + lo: hi and mid are float32 values (24 significant bits), lo a double.
constexpr double kPiOver2 = std::numbers::pi / 2;
constexpr double kPiOver2Tail = 6.123233995736766e-17;  // pi/2 - kPiOver2, the next 53 bits
constexpr double kPiOver2Hi = static_cast<float>(kPiOver2);
constexpr double kPiOver2Mid = static_cast<float>(kPiOver2 - kPiOver2Hi);
constexpr double kPiOver2Lo = (kPiOver2 - kPiOver2Hi - kPiOver2Mid) + kPiOver2Tail;

void CosSinHf(const float* inv_freq, int64_t count, int64_t position, float scale, float* cos,
              float* sin) {
  const float p = static_cast<float>(position);
#if HWY_TARGET == HWY_SCALAR || !HWY_HAVE_FLOAT64
  for (int64_t i = 0; i < count; ++i) {
    const float angle = p * inv_freq[i];
    cos[i] = std::cos(angle) * scale;
    sin[i] = std::sin(angle) * scale;
  }
#else
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(dd));
  const auto two_over_pi = hn::Set(dd, 2 / std::numbers::pi);
  const auto hi = hn::Set(dd, kPiOver2Hi), mid = hn::Set(dd, kPiOver2Mid), lo = hn::Set(dd, kPiOver2Lo);
  const auto one = hn::Set(dd, 1.0), two = hn::Set(dd, 2.0), three = hn::Set(dd, 3.0);
  const auto quarter = hn::Set(dd, 0.25), four = hn::Set(dd, 4.0);
  const auto positions = hn::Set(df, p);
  const auto scales = hn::Set(df, scale);
  // Pads the last partial vector; the padding lanes' results are not stored.
  float theta_tail[HWY_MAX_BYTES / sizeof(double)] = {};
  for (int64_t i = 0; i < count; i += n) {
    const int64_t lanes = std::min<int64_t>(n, count - i);
    const float* theta_ptr = inv_freq + i;
    if (lanes < n) {
      for (int64_t l = 0; l < lanes; ++l) theta_tail[l] = inv_freq[i + l];
      theta_ptr = theta_tail;
    }
    // transformers' float32 angle, then exact promotion to float64.
    const auto angle = hn::PromoteTo(dd, hn::Mul(positions, hn::LoadU(df, theta_ptr)));
    const auto k = hn::Round(hn::Mul(angle, two_over_pi));
    auto r = hn::Sub(angle, hn::Mul(k, hi));  // exact: k * hi has at most 53 bits
    r = hn::Sub(r, hn::Mul(k, mid));          // exact likewise
    r = hn::Sub(r, hn::Mul(k, lo));
    const auto r2 = hn::Mul(r, r);
    // Taylor series (Horner): sin r = r (1 - r2/3! (1 - r2/(4*5) (1 - ...))).
    // Taylor series in Horner form: sin r = r (1 - r2/(2*3) (1 - r2/(4*5) (... (1 - r2/(14*15))))),
    // cos r = 1 - r2/(1*2) (1 - r2/(3*4) (... (1 - r2/(15*16)))).
    auto s = one;
    auto c = hn::Sub(one, hn::Mul(r2, hn::Set(dd, 1.0 / (15.0 * 16.0))));
    for (int term = 7; term >= 1; --term) {
      const double sin_divisor = (2.0 * term) * (2.0 * term + 1);
      const double cos_divisor = (2.0 * term - 1) * (2.0 * term);
      s = hn::Sub(one, hn::Mul(hn::Mul(r2, hn::Set(dd, 1.0 / sin_divisor)), s));
      c = hn::Sub(one, hn::Mul(hn::Mul(r2, hn::Set(dd, 1.0 / cos_divisor)), c));
    }
    s = hn::Mul(r, s);
    // Quadrant q = k mod 4 selects the signs and the swap.
    const auto q = hn::Sub(k, hn::Mul(four, hn::Floor(hn::Mul(k, quarter))));
    const auto neg_s = hn::Neg(s), neg_c = hn::Neg(c);
    const auto is1 = hn::Eq(q, one), is2 = hn::Eq(q, two), is3 = hn::Eq(q, three);
    auto cos_v = hn::IfThenElse(is1, neg_s, hn::IfThenElse(is2, neg_c, hn::IfThenElse(is3, s, c)));
    auto sin_v = hn::IfThenElse(is1, c, hn::IfThenElse(is2, neg_s, hn::IfThenElse(is3, neg_c, s)));
    const auto cos_f = hn::Mul(hn::DemoteTo(df, cos_v), scales);
    const auto sin_f = hn::Mul(hn::DemoteTo(df, sin_v), scales);
    if (lanes == n) {
      hn::StoreU(cos_f, df, cos + i);
      hn::StoreU(sin_f, df, sin + i);
    } else {
      float cos_tail[HWY_MAX_BYTES / sizeof(double)], sin_tail[HWY_MAX_BYTES / sizeof(double)];
      hn::StoreU(cos_f, df, cos_tail);
      hn::StoreU(sin_f, df, sin_tail);
      for (int64_t l = 0; l < lanes; ++l) {
        cos[i + l] = cos_tail[l];
        sin[i + l] = sin_tail[l];
      }
    }
  }
#endif
}

}  // namespace rotary::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rotary::detail {

HWY_EXPORT(CosSinHf);

void cos_sin_hf(const float* inv_freq, int64_t count, int64_t position, float scale, float* cos,
                float* sin) {
  HWY_DYNAMIC_DISPATCH(CosSinHf)(inv_freq, count, position, scale, cos, sin);
}

}  // namespace rotary::detail
#endif  // HWY_ONCE
