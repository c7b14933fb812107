// Vectorised RoPE kernels, compiled once per SIMD target (Highway's foreach_target re-includes this
// file; hence the toggle guard instead of #pragma once).
//
// The arithmetic is exactly the portable kernel's: two float32 products and one sum per output,
// no fused multiply-add, so every target produces the same bits as src/cpu/portable_kernels.cc
// (and as transformers' float32 q*cos + rotate_half(q)*sin). 16-bit storage is widened on load and
// rounded to nearest even once on store. Remainders shorter than a vector take the portable scalar
// path, whose results are identical by construction.
#if defined(ROTARY_CPU_ROTATE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROTARY_CPU_ROTATE_INL_H_
#undef ROTARY_CPU_ROTATE_INL_H_
#else
#define ROTARY_CPU_ROTATE_INL_H_
#endif

#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/kernels.h"
#include "hwy/highway.h"
#include "numeric/float16.h"

HWY_BEFORE_NAMESPACE();
namespace rotary::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One-lane vectors cannot swap pairs: the scalar target uses the portable kernel instead.
#if HWY_TARGET != HWY_SCALAR

// Vector width per storage type, chosen by measurement on an AVX-512 AMD EPYC: float32 in place ran
// at ~40 GB/s with 512-bit vectors and ~70 GB/s (the in-place limit) with 256-bit ones, while the
// 16-bit types, whose conversions cost more instructions per byte, ran ~2x faster at full width.
template <typename Storage>
using TagFor = std::conditional_t<std::is_same_v<Storage, float>, hn::CappedTag<float, 8>,
                                  hn::ScalableTag<float>>;

// Storage <-> float32 vectors. Float16 and BFloat16 share hwy's 16-bit layouts.
template <class D, typename Storage>
HWY_INLINE hn::Vec<D> LoadFloats(D d, const Storage* p) {
  if constexpr (std::is_same_v<Storage, float>) {
    return hn::LoadU(d, p);
  } else if constexpr (std::is_same_v<Storage, Float16>) {
    const hn::Rebind<hwy::float16_t, D> d16;
    return hn::PromoteTo(d, hn::LoadU(d16, reinterpret_cast<const hwy::float16_t*>(p)));
  } else {
    const hn::Rebind<hwy::bfloat16_t, D> d16;
    return hn::PromoteTo(d, hn::LoadU(d16, reinterpret_cast<const hwy::bfloat16_t*>(p)));
  }
}

template <class D, typename Storage>
HWY_INLINE void StoreFloats(D d, hn::Vec<D> v, Storage* p) {
  if constexpr (std::is_same_v<Storage, float>) {
    hn::StoreU(v, d, p);
  } else if constexpr (std::is_same_v<Storage, Float16>) {
    const hn::Rebind<hwy::float16_t, D> d16;
    hn::StoreU(hn::DemoteTo(d16, v), d16, reinterpret_cast<hwy::float16_t*>(p));
  } else {
    // bfloat16 round to nearest even, NaN kept quiet: the same integer recipe as to_bfloat16().
    const hn::Rebind<uint32_t, D> du32;
    const hn::Rebind<int32_t, D> di32;
    const hn::Rebind<uint16_t, D> du16;
    const auto bits = hn::BitCast(du32, v);
    const auto lowest_kept = hn::And(hn::ShiftRight<16>(bits), hn::Set(du32, 1u));
    const auto rounded = hn::Add(bits, hn::Add(hn::Set(du32, 0x7FFFu), lowest_kept));
    const auto quiet_nan = hn::Or(bits, hn::Set(du32, 0x00400000u));
    const auto chosen = hn::IfThenElse(hn::RebindMask(du32, hn::IsNaN(v)), quiet_nan, rounded);
    const auto upper = hn::BitCast(di32, hn::ShiftRight<16>(chosen));  // <= 0xFFFF: no saturation
    hn::StoreU(hn::DemoteTo(du16, upper), du16, reinterpret_cast<uint16_t*>(p));
  }
}

// The pair (a, b) rotated by (c, s), scalar: the remainder path.
template <typename Storage>
HWY_INLINE void RotatePairScalar(const Storage* in, Storage* out, int64_t a, int64_t b, float c,
                                 float s) {
  const float x = load_as_float(in + a), y = load_as_float(in + b);
  const float xc = x * c, ys = y * s, yc = y * c, xs = x * s;
  store_from_float(out + a, xc - ys);
  store_from_float(out + b, yc + xs);
}

template <typename Storage>
HWY_INLINE void CopyPassThrough(const RotateParams& p, const Storage* in, Storage* out) {
  if (in != out && p.head_dim > p.rotary_dim) {
    std::memcpy(out + p.rotary_dim, in + p.rotary_dim,
                static_cast<size_t>(p.head_dim - p.rotary_dim) * sizeof(Storage));
  }
}

// Half-split: channel j pairs with j + half; cos/sin are read as they are.
template <typename Storage>
void RotateHalfSplit(const RotateParams& p, const HeadRange& heads) {
  const TagFor<Storage> d;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d));
  const int64_t half = p.rotary_dim / 2;
  for (int64_t h = 0; h < heads.num_heads; ++h) {
    const Storage* in = static_cast<const Storage*>(heads.in) + h * heads.in_head_stride;
    Storage* out = static_cast<Storage*>(heads.out) + h * heads.out_head_stride;
    int64_t j = 0;
    for (; j + n <= half; j += n) {
      const auto x = LoadFloats(d, in + j);
      const auto y = LoadFloats(d, in + half + j);
      const auto c = hn::LoadU(d, p.cos + j);
      const auto s = hn::LoadU(d, p.sin + j);
      StoreFloats(d, hn::Sub(hn::Mul(x, c), hn::Mul(y, s)), out + j);
      StoreFloats(d, hn::Add(hn::Mul(y, c), hn::Mul(x, s)), out + half + j);
    }
    for (; j < half; ++j) RotatePairScalar(in, out, j, j + half, p.cos[j], p.sin[j]);
    CopyPassThrough(p, in, out);
  }
}

// Interleaved: channel 2j pairs with 2j + 1. With cos duplicated per pair and sin as (-s, s),
// out = x * cos2 + swap_pairs(x) * sin2, which rounds exactly like x*c - y*s and y*c + x*s.
template <typename Storage>
void RotateInterleaved(const RotateParams& p, const HeadRange& heads) {
  const TagFor<Storage> d;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d));
  const int64_t dim = p.rotary_dim;
  thread_local std::vector<float> expanded;  // no allocation after a thread's first call
  if (static_cast<int64_t>(expanded.size()) < 2 * dim)
    expanded.resize(static_cast<size_t>(2 * dim));
  float* cos2 = expanded.data();
  float* sin2 = expanded.data() + dim;
  for (int64_t j = 0; j < dim / 2; ++j) {
    cos2[2 * j] = cos2[2 * j + 1] = p.cos[j];
    sin2[2 * j] = -p.sin[j];
    sin2[2 * j + 1] = p.sin[j];
  }
  for (int64_t h = 0; h < heads.num_heads; ++h) {
    const Storage* in = static_cast<const Storage*>(heads.in) + h * heads.in_head_stride;
    Storage* out = static_cast<Storage*>(heads.out) + h * heads.out_head_stride;
    int64_t i = 0;
    for (; i + n <= dim; i += n) {
      const auto x = LoadFloats(d, in + i);
      const auto swapped = hn::Shuffle2301(x);
      const auto c = hn::LoadU(d, cos2 + i);
      const auto s = hn::LoadU(d, sin2 + i);
      StoreFloats(d, hn::Add(hn::Mul(x, c), hn::Mul(swapped, s)), out + i);
    }
    for (; i < dim; i += 2) RotatePairScalar(in, out, i, i + 1, p.cos[i / 2], p.sin[i / 2]);
    CopyPassThrough(p, in, out);
  }
}

template <typename Storage>
RotateHeadsFn ForLayout(Layout layout) {
  return layout == Layout::kInterleaved ? &RotateInterleaved<Storage> : &RotateHalfSplit<Storage>;
}

#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace rotary::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // ROTARY_CPU_ROTATE_INL_H_
