// RMSNorm of one token's heads, compiled once per SIMD target (Highway's foreach_target re-includes
// this file; hence the toggle guard instead of #pragma once).
//
// Target independence: the sum of squares is kept in 8 float32 partial sums, element j of a head
// going to partial sum j % 8 (in order), combined as ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)). A vector
// of 8 lanes, two of 4, or a scalar loop all perform exactly these additions, so the result is the
// same on every CPU. Squares and products are separate float32 operations (no fused multiply-add),
// as torch's x.pow(2).mean() and x * rsqrt(...) are.
#if defined(ROTARY_CPU_RMS_NORM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROTARY_CPU_RMS_NORM_INL_H_
#undef ROTARY_CPU_RMS_NORM_INL_H_
#else
#define ROTARY_CPU_RMS_NORM_INL_H_
#endif

#include <cmath>
#include <type_traits>

#include "cpu/rms_norm.h"
#include "cpu/storage-inl.h"
#include "hwy/highway.h"
#include "numeric/float16.h"

HWY_BEFORE_NAMESPACE();
namespace rotary::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Float16 in vectors only where the hardware converts (F16C and later): Highway's emulated
// conversion on the older x86 targets does not round to nearest even in every case.
#if HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_EMU128 || \
    HWY_TARGET == HWY_SCALAR
inline constexpr bool kVectorFloat16 = false;
#else
inline constexpr bool kVectorFloat16 = true;
#endif

template <typename Storage>
inline constexpr bool kVectorised = !std::is_same_v<Storage, Float16> || kVectorFloat16;

// Adds the squares of x[0, n) to the 8 partial sums (see the top of the file).
template <typename Storage>
HWY_INLINE void AddSquares(const Storage* x, int64_t n, float* partial) {
  const hn::CappedTag<float, 8> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const int64_t whole = n / 8 * 8;
  int64_t j = 0;
  if constexpr (kVectorised<Storage> && HWY_TARGET != HWY_SCALAR) {
    if (lanes == 8) {
      auto sum = hn::LoadU(d, partial);
      for (; j < whole; j += 8) {
        const auto v = LoadFloats(d, x + j);
        sum = hn::Add(sum, hn::Mul(v, v));
      }
      hn::StoreU(sum, d, partial);
    } else if (lanes == 4) {
      auto low = hn::LoadU(d, partial);
      auto high = hn::LoadU(d, partial + 4);
      for (; j < whole; j += 8) {
        const auto a = LoadFloats(d, x + j);
        const auto b = LoadFloats(d, x + j + 4);
        low = hn::Add(low, hn::Mul(a, a));
        high = hn::Add(high, hn::Mul(b, b));
      }
      hn::StoreU(low, d, partial);
      hn::StoreU(high, d, partial + 4);
    }
  }
  for (; j < n; ++j) {
    const float v = load_as_float(x + j);
    partial[j % 8] += v * v;
  }
}

// out[j] = round(round?(x[j] * r) * multiplier[j]) for j < n.
template <typename Storage>
HWY_INLINE void ScaleHead(const Storage* x, int64_t n, float r, const float* multiplier,
                          bool round_before_weight, Storage* out) {
  int64_t j = 0;
  if constexpr (kVectorised<Storage> && HWY_TARGET != HWY_SCALAR) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto rv = hn::Set(d, r);
    for (; j + lanes <= n; j += lanes) {
      auto y = hn::Mul(LoadFloats(d, x + j), rv);
      if (round_before_weight) {
        // The storage round trip is the rounding: out is this head's scratch, in L1.
        StoreFloats(d, y, out + j);
        y = LoadFloats(d, out + j);
      }
      StoreFloats(d, hn::Mul(y, hn::LoadU(d, multiplier + j)), out + j);
    }
  }
  for (; j < n; ++j) {
    float y = load_as_float(x + j) * r;
    if (round_before_weight) {
      Storage rounded;
      store_from_float(&rounded, y);
      y = load_as_float(&rounded);
    }
    store_from_float(out + j, y * multiplier[j]);
  }
}

template <typename Storage>
void NormHeads(const NormParams& p, const void* in_v, int64_t num_heads, int64_t head_stride,
               int64_t head_dim, void* out_v) {
  const Storage* in = static_cast<const Storage*>(in_v);
  Storage* out = static_cast<Storage*>(out_v);
  const int64_t per_group = p.whole_token ? num_heads : 1;
  for (int64_t first = 0; first < num_heads; first += per_group) {
    float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t h = first; h < first + per_group; ++h) {
      AddSquares(in + h * head_stride, head_dim, partial);
    }
    const float sum = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                      ((partial[4] + partial[5]) + (partial[6] + partial[7]));
    const float mean = sum / static_cast<float>(per_group * head_dim);
    const float r = 1.0f / std::sqrt(mean + p.eps);
    for (int64_t h = first; h < first + per_group; ++h) {
      ScaleHead(in + h * head_stride, head_dim, r, p.multiplier + (h - first) * head_dim,
                p.round_before_weight, out + h * head_dim);
    }
  }
}

}  // namespace rotary::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
