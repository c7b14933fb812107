// Vectorised cos/sin of transformers' float32 angles (AngleMode::kHf), with run-time dispatch.
//
// The angle is formed exactly as transformers forms it: float32(position) * theta_i, one float32
// multiply. Its cos and sin are then correctly rounded to float32, for every float32 angle, and
// the attention factor is applied in float32, as transformers does.
//
// The recipe is numeric/cos_sin.h's, shared with the CUDA kernels; FastCosSin below is its
// fast_cos_sin, one vector at a time, operation for operation. The fast path evaluates in float64:
// a reduction modulo pi/2 with a three-part constant (exact quadrant products below 2^29 rad), then
// Taylor series to degree 17/16. Its error stays below 4 float64 ulps, so its float32 rounding is
// the correct one unless the float64 value lies that close to a float32 midpoint. Such lanes,
// lanes with |angle| >= 2^29 or not finite, and lanes whose reduced angle is tiny next to the
// angle take cos_sin_correctly_rounded (exact integer arithmetic); below 2^29 that is about 6
// lanes in a million. Both paths give the correctly rounded value, so every SIMD target, the
// scalar fallback and the CUDA kernel agree bit for bit (tests/shared_numerics_test.cc).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/cos_sin_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstdint>

#include "cpu/cos_sin.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rotary::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR && HWY_HAVE_FLOAT64

// numeric/cos_sin.h's near_float_midpoint, per lane.
template <class DD, class V = hn::Vec<DD>>
HWY_INLINE hn::Mask<DD> NearFloatMidpoint(DD dd, V v) {
  const hn::RebindToSigned<DD> di;
  const auto offset = hn::Set(di, static_cast<int64_t>(kMidpointMargin - kMidpointLowBits));
  const auto low =
      hn::And(hn::Add(hn::BitCast(di, v), offset), hn::Set(di, static_cast<int64_t>(kLowBitsMask)));
  return hn::RebindMask(dd, hn::Lt(low, hn::Set(di, static_cast<int64_t>(2 * kMidpointMargin))));
}

// numeric/cos_sin.h's fast_cos_sin, per lane: float64 cos and sin of float64 angles that hold
// float32 values; returns the lanes whose float32 rounding this cannot certify.
template <class DD, class V = hn::Vec<DD>>
HWY_INLINE hn::Mask<DD> FastCosSin(DD dd, V angle, V& cos, V& sin) {
  // k = round(angle * 2/pi) by adding and subtracting 1.5 * 2^52 (ties to even, as Round; +0 for
  // a zero angle). The sum's low mantissa bits are k mod 4, the quadrant.
  const V shifter = hn::Set(dd, kRoundShifter);
  const V shifted = hn::Add(hn::Mul(angle, hn::Set(dd, kTwoOverPi)), shifter);
  const V k = hn::Sub(shifted, shifter);
  V r = hn::Sub(angle, hn::Mul(k, hn::Set(dd, kPiOver2Hi)));  // exact: k * hi has <= 53 bits
  r = hn::Sub(r, hn::Mul(k, hn::Set(dd, kPiOver2Mid)));       // exact likewise
  r = hn::Sub(r, hn::Mul(k, hn::Set(dd, kPiOver2Lo)));
  const V z = hn::Mul(r, r);
  V ps = hn::Set(dd, sin_coefficient(kSeriesTerms));
  V pc = hn::Set(dd, cos_coefficient(kSeriesTerms));
  for (int i = kSeriesTerms - 1; i >= 1; --i) {
    ps = hn::Add(hn::Set(dd, sin_coefficient(i)), hn::Mul(z, ps));
    pc = hn::Add(hn::Set(dd, cos_coefficient(i)), hn::Mul(z, pc));
  }
  const V s = hn::Mul(r, hn::Add(hn::Set(dd, 1.0), hn::Mul(z, ps)));  // r * (...): sin(-0) = -0
  const V c = hn::Add(hn::Set(dd, 1.0), hn::Mul(z, pc));
  // Quadrant bit 0 swaps cos and sin; cos changes sign in quadrants 1 and 2, sin in 2 and 3. The
  // swap takes a full mask (TestBit): Highway 1.0's IfNegativeThenElse is wrong on SSSE3 when only
  // the sign bit is set.
  const hn::RebindToSigned<DD> di;
  const auto bits = hn::BitCast(di, shifted);
  const auto odd = hn::RebindMask(dd, hn::TestBit(bits, hn::Set(di, 1)));
  const V bit0 = hn::BitCast(dd, hn::ShiftLeft<63>(bits));  // only the sign bit can be set
  const V bit1 = hn::And(hn::BitCast(dd, hn::ShiftLeft<62>(bits)), hn::SignBit(dd));
  cos = hn::Xor(hn::IfThenElse(odd, s, c), hn::Xor(bit0, bit1));
  sin = hn::Xor(hn::IfThenElse(odd, c, s), bit1);
  const V magnitude = hn::Abs(angle);
  const auto outside = hn::Not(hn::Lt(magnitude, hn::Set(dd, kFastAngleLimit)));  // NaN too
  const auto tiny = hn::Lt(hn::Abs(r), hn::Mul(magnitude, hn::Set(dd, kTinyReducedRatio)));
  const auto near = hn::Or(NearFloatMidpoint(dd, cos), NearFloatMidpoint(dd, sin));
  return hn::Or(hn::Or(outside, tiny), near);
}

// Replaces the `hard` lanes of cos and sin (unscaled) with the exact path's results.
template <class DD, class DF, class VF = hn::Vec<DF>>
HWY_NOINLINE void ExactLanes(DD dd, DF df, hn::Mask<DD> hard, VF angle, VF& cos, VF& sin) {
  constexpr size_t kMax = HWY_MAX_BYTES / sizeof(double);
  const hn::RebindToUnsigned<DD> du;
  uint64_t flags[kMax];
  float angles[kMax], c[kMax], s[kMax];
  hn::StoreU(hn::BitCast(du, hn::VecFromMask(dd, hard)), du, flags);
  hn::StoreU(angle, df, angles);
  hn::StoreU(cos, df, c);
  hn::StoreU(sin, df, s);
  for (size_t l = 0; l < hn::Lanes(dd); ++l) {
    if (flags[l]) cos_sin_correctly_rounded(angles[l], c[l], s[l]);
  }
  cos = hn::LoadU(df, c);
  sin = hn::LoadU(df, s);
}

#endif

void CosSinHf(const float* inv_freq, int64_t count, int64_t position, float scale, float* cos,
              float* sin) {
#if HWY_TARGET == HWY_SCALAR || !HWY_HAVE_FLOAT64
  for (int64_t i = 0; i < count; ++i) hf_mode_cos_sin(position, inv_freq[i], scale, cos[i], sin[i]);
#else
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(dd));
  const auto positions = hn::Set(df, static_cast<float>(position));
  const auto scales = hn::Set(df, scale);
  // Pads the last partial vector (angle 0); the padding lanes' results are not stored.
  float theta_tail[HWY_MAX_BYTES / sizeof(double)] = {};
  for (int64_t i = 0; i < count; i += n) {
    const int64_t lanes = std::min<int64_t>(n, count - i);
    const float* theta_ptr = inv_freq + i;
    if (lanes < n) {
      for (int64_t l = 0; l < lanes; ++l) theta_tail[l] = inv_freq[i + l];
      theta_ptr = theta_tail;
    }
    // transformers' float32 angle, then exact promotion to float64.
    const auto angle = hn::Mul(positions, hn::LoadU(df, theta_ptr));
    hn::Vec<decltype(dd)> cos_v, sin_v;
    const auto hard = FastCosSin(dd, hn::PromoteTo(dd, angle), cos_v, sin_v);
    auto cos_f = hn::DemoteTo(df, cos_v), sin_f = hn::DemoteTo(df, sin_v);
    if (!hn::AllFalse(dd, hard)) ExactLanes(dd, df, hard, angle, cos_f, sin_f);
    cos_f = hn::Mul(cos_f, scales);
    sin_f = hn::Mul(sin_f, scales);
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
