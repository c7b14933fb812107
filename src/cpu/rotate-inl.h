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

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/storage-inl.h"
#include "hwy/cache_control.h"
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

// The pair (a, b) rotated by (c, s), scalar: the remainder path.
template <typename Storage>
HWY_INLINE void RotatePairScalar(const Storage* in, Storage* out, int64_t a, int64_t b, float c,
                                 float s) {
  const float x = load_as_float(in + a), y = load_as_float(in + b);
  const float xc = x * c, ys = y * s, yc = y * c, xs = x * s;
  store_from_float(out + a, xc - ys);
  store_from_float(out + b, yc + xs);
}

// Whether an out-of-place call has channels past rotary_dim to copy.
HWY_INLINE bool NeedsPassThrough(const RotateParams& p, const HeadRange& heads) {
  return heads.in != heads.out && p.head_dim > p.rotary_dim;
}

// Channels [rotary_dim, head_dim) of an out-of-place call, copied with vectors inline: per head
// they are a few hundred bytes, where a memcpy call costs as much as the copy. The last vector
// may overlap the one before (in and out do not overlap).
template <typename Storage>
HWY_INLINE void CopyPassThrough(const RotateParams& p, const Storage* in, Storage* out) {
  if (in == out || p.head_dim <= p.rotary_dim) return;
  const auto* from = reinterpret_cast<const uint8_t*>(in + p.rotary_dim);
  auto* to = reinterpret_cast<uint8_t*>(out + p.rotary_dim);
  const auto bytes = static_cast<size_t>(p.head_dim - p.rotary_dim) * sizeof(Storage);
  const hn::ScalableTag<uint8_t> d8;
  const size_t n = hn::Lanes(d8);
  if (bytes < n) {
    std::memcpy(to, from, bytes);
    return;
  }
  for (size_t i = 0; i + n < bytes; i += n) hn::StoreU(hn::LoadU(d8, from + i), d8, to + i);
  hn::StoreU(hn::LoadU(d8, from + bytes - n), d8, to + bytes - n);
}

// Requests the input lines of the head kPrefetchHeads after h (1-2 KB ahead) so that the loads
// find them in cache: a call is one token's heads, a few KB, which the hardware prefetcher alone
// did not keep ahead of (measured on a 2-core Xeon, 1 thread in place, alternating with and
// without: 16-bit types went from 60-75 % to 90 % and more of the STREAM-scale limit, float32 from
// ~90 % to above it). Only heads of the call are prefetched: prefetching past the last one (the
// next token's heads when contiguous) measured no better, and addresses stay inside the tensor.
// On heads already in L1 the prefetches cost float32 up to ~20 % (its loop is load-bound).
inline constexpr int64_t kPrefetchHeads = 4;

// The channels PrefetchHeadAhead requests: none when the call's heads are already in cache.
HWY_INLINE int64_t PrefetchChannels(const RotateParams& p) { return p.prefetch ? p.rotary_dim : 0; }

template <typename Storage>
HWY_INLINE void PrefetchHeadAhead(const HeadRange& heads, int64_t h, int64_t channels) {
  if (channels <= 0 || h + kPrefetchHeads >= heads.num_heads) return;
  const auto* first =
      static_cast<const uint8_t*>(heads.in) +
      (h + kPrefetchHeads) * heads.in_head_stride * static_cast<int64_t>(sizeof(Storage));
  const int64_t bytes = channels * static_cast<int64_t>(sizeof(Storage));
  for (int64_t line = 0; line < bytes; line += 64) hwy::Prefetch(first + line);
}

// Half-split: channel j pairs with j + half; cos/sin are read as they are. Pairs [j, half) in
// vectors of n, widened on load; returns the first pair left over.
template <typename Storage, class D>
HWY_INLINE int64_t HalfSplitWidened(D d, const RotateParams& p, const Storage* in, Storage* out,
                                    int64_t j) {
  const int64_t n = static_cast<int64_t>(hn::Lanes(d));
  const int64_t half = p.rotary_dim / 2;
  for (; j + n <= half; j += n) {
    const auto x = LoadFloats(d, in + j);
    const auto y = LoadFloats(d, in + half + j);
    const auto c = hn::LoadU(d, p.cos + j);
    const auto s = hn::LoadU(d, p.sin + j);
    StoreFloats(d, hn::Sub(hn::Mul(x, c), hn::Mul(y, s)), out + j);
    StoreFloats(d, hn::Add(hn::Mul(y, c), hn::Mul(x, s)), out + half + j);
  }
  return j;
}

template <typename Storage>
void RotateHalfSplit(const RotateParams& p, const HeadRange& heads) {
  const int64_t half = p.rotary_dim / 2;
  for (int64_t h = 0; h < heads.num_heads; ++h) {
    PrefetchHeadAhead<Storage>(heads, h, PrefetchChannels(p));
    const Storage* in = static_cast<const Storage*>(heads.in) + h * heads.in_head_stride;
    Storage* out = static_cast<Storage*>(heads.out) + h * heads.out_head_stride;
    for (int64_t j = HalfSplitWidened(TagFor<Storage>(), p, in, out, 0); j < half; ++j) {
      RotatePairScalar(in, out, j, j + half, p.cos[j], p.sin[j]);
    }
    CopyPassThrough(p, in, out);
  }
}

// cos duplicated per pair and sin as (-s, s), for the pairs [j, j + half) of n lanes: lanes 2k and
// 2k + 1 of the result take entry j + k. The sign flip is the negation's: the sign bit.
template <class D>
HWY_INLINE void ExpandPairs(D d, const float* cos, const float* sin, float* cos2, float* sin2) {
  const hn::Repartition<uint64_t, D> d64;  // one lane per pair
  const hn::Rebind<float, decltype(d64)> dhalf;
  const hn::Rebind<uint32_t, decltype(d64)> du32;
  const auto duplicate = [&](const float* from) {
    const auto wide = hn::PromoteTo(d64, hn::BitCast(du32, hn::LoadU(dhalf, from)));
    return hn::Or(wide, hn::ShiftLeft<32>(wide));
  };
  hn::StoreU(hn::BitCast(d, duplicate(cos)), d, cos2);
  const auto negate_even = hn::Set(d64, uint64_t{0x80000000u});
  hn::StoreU(hn::BitCast(d, hn::Xor(duplicate(sin), negate_even)), d, sin2);
}

// Interleaved: channel 2j pairs with 2j + 1. With cos duplicated per pair and sin as (-s, s),
// out = x * cos2 + swap_pairs(x) * sin2, which rounds exactly like x*c - y*s and y*c + x*s.
template <typename Storage>
void RotateInterleaved(const RotateParams& p, const HeadRange& heads) {
  const TagFor<Storage> d;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d));
  const int64_t dim = p.rotary_dim;
  const int64_t vector_end = dim / n * n;    // channels the vector loop covers
  thread_local std::vector<float> expanded;  // no allocation after a thread's first call
  if (static_cast<int64_t>(expanded.size()) < 2 * dim)
    expanded.resize(static_cast<size_t>(2 * dim));
  float* cos2 = expanded.data();
  float* sin2 = expanded.data() + dim;
  // Once per call (per token), vectorised: a scalar loop here cost as much as rotating 8 heads.
  for (int64_t i = 0; i < vector_end; i += n) {
    ExpandPairs(d, p.cos + i / 2, p.sin + i / 2, cos2 + i, sin2 + i);
  }
  for (int64_t h = 0; h < heads.num_heads; ++h) {
    PrefetchHeadAhead<Storage>(heads, h, PrefetchChannels(p));
    const Storage* in = static_cast<const Storage*>(heads.in) + h * heads.in_head_stride;
    Storage* out = static_cast<Storage*>(heads.out) + h * heads.out_head_stride;
    for (int64_t i = 0; i < vector_end; i += n) {
      const auto x = LoadFloats(d, in + i);
      const auto swapped = hn::Shuffle2301(x);
      const auto c = hn::LoadU(d, cos2 + i);
      const auto s = hn::LoadU(d, sin2 + i);
      StoreFloats(d, hn::Add(hn::Mul(x, c), hn::Mul(swapped, s)), out + i);
    }
    for (int64_t i = vector_end; i < dim; i += 2) {
      RotatePairScalar(in, out, i, i + 1, p.cos[i / 2], p.sin[i / 2]);
    }
    CopyPassThrough(p, in, out);
  }
}

// ---------------------------------------------------------------------------------------------
// bfloat16 without conversions: bfloat16 is the high half of a float32, so a 32-bit lane holding
// two adjacent bfloat16 values (little endian: the even element low) gives both as float32 with
// one shift and one mask, and the results go back with one shift, one mask and one or. No lane
// crosses a lane boundary, so there is no shuffle and no narrowing (which cost as many
// instructions per element as the arithmetic).

// Float32 bits rounded to bfloat16 in their high half (nearest even, NaN kept quiet: the recipe
// of to_bfloat16() and StoreFloats); the low half is left over.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> RoundToBf16High(DF /*df*/, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const auto bits = hn::BitCast(du, v);
  const auto lowest_kept = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), lowest_kept));
  const auto quiet_nan = hn::Or(bits, hn::Set(du, 0x00400000u));
  return hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), quiet_nan, rounded);
}

// Lanes of bfloat16 pairs -> (even, odd) as float32.
template <class DF, class VU>
HWY_INLINE void SplitBf16Pairs(DF df, VU pairs, hn::Vec<DF>& even, hn::Vec<DF>& odd) {
  const hn::RebindToUnsigned<DF> du;
  even = hn::BitCast(df, hn::ShiftLeft<16>(pairs));
  odd = hn::BitCast(df, hn::And(pairs, hn::Set(du, 0xFFFF0000u)));
}

// (even, odd) float32 -> lanes of bfloat16 pairs, each rounded once.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> JoinBf16Pairs(DF df, hn::Vec<DF> even,
                                                           hn::Vec<DF> odd) {
  const hn::RebindToUnsigned<DF> du;
  return hn::Or(hn::ShiftRight<16>(RoundToBf16High(df, even)),
                hn::And(RoundToBf16High(df, odd), hn::Set(du, 0xFFFF0000u)));
}

template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> LoadBf16Pairs(DF /*df*/, const BFloat16* p) {
  const hn::RebindToUnsigned<DF> du;
  return hn::LoadU(du, reinterpret_cast<const uint32_t*>(p));
}

template <class DF>
HWY_INLINE void StoreBf16Pairs(DF /*df*/, hn::Vec<hn::RebindToUnsigned<DF>> pairs, BFloat16* p) {
  const hn::RebindToUnsigned<DF> du;
  hn::StoreU(pairs, du, reinterpret_cast<uint32_t*>(p));
}

// The heads of a call, one at a time; prefetch_channels > 0: with PrefetchHeadAhead.
template <typename Body>
HWY_INLINE void ForEachHead(const HeadRange& heads, const Body& body,
                            int64_t prefetch_channels = 0) {
  for (int64_t h = 0; h < heads.num_heads; ++h) {
    if (prefetch_channels > 0) PrefetchHeadAhead<BFloat16>(heads, h, prefetch_channels);
    body(static_cast<const BFloat16*>(heads.in) + h * heads.in_head_stride,
         static_cast<BFloat16*>(heads.out) + h * heads.out_head_stride);
  }
}

// Both bfloat16 kernels cover the pairs [0, end) in levels of decreasing vector width: the widest
// vector takes as many whole blocks as fit, then the next width from where it stopped, down to
// 128 bits, so that short or odd rotary dims (partial rotary) stay vectorised; what is left takes
// the scalar path. Each level runs over every head, so that a call (one token) pays a level's
// setup once, not once per head. `Level(d, begin)` returns where it stopped.
template <class Level>
HWY_INLINE int64_t ForEachWidth(const Level& level) {
  const hn::ScalableTag<float> full;
  int64_t j = level(full, int64_t{0});
  if constexpr (hn::MaxLanes(full) > 8) j = level(hn::Half<decltype(full)>(), j);
  if constexpr (hn::MaxLanes(full) > 4) j = level(hn::CappedTag<float, 4>(), j);
  return j;
}

// Interleaved bfloat16: a lane is one pair (x, y) and takes cos/sin as they are, one per pair.
void RotateInterleavedBf16(const RotateParams& p, const HeadRange& heads) {
  const int64_t pairs = p.rotary_dim / 2;
  const int64_t done = ForEachWidth([&](auto df, int64_t begin) {
    using DF = decltype(df);
    const int64_t n = static_cast<int64_t>(hn::Lanes(df));  // pairs per vector
    const int64_t end = begin + (pairs - begin) / n * n;
    if (end == begin) return begin;
    ForEachHead(
        heads,
        [&](const BFloat16* in, BFloat16* out) {
          for (int64_t j = begin; j < end; j += n) {
            hn::Vec<DF> x, y;
            SplitBf16Pairs(df, LoadBf16Pairs(df, in + 2 * j), x, y);
            const auto c = hn::LoadU(df, p.cos + j);
            const auto s = hn::LoadU(df, p.sin + j);
            const auto x_out = hn::Sub(hn::Mul(x, c), hn::Mul(y, s));
            const auto y_out = hn::Add(hn::Mul(y, c), hn::Mul(x, s));
            StoreBf16Pairs(df, JoinBf16Pairs(df, x_out, y_out), out + 2 * j);
          }
        },
        begin == 0 ? PrefetchChannels(p) : 0);
    return end;
  });
  if (done == pairs && !NeedsPassThrough(p, heads)) return;
  ForEachHead(heads, [&](const BFloat16* in, BFloat16* out) {
    for (int64_t j = done; j < pairs; ++j) {
      RotatePairScalar(in, out, 2 * j, 2 * j + 1, p.cos[j], p.sin[j]);
    }
    CopyPassThrough(p, in, out);
  });
}

// Half-split bfloat16: a block of 2n pairs [j, j + 2n) is one vector of x (channels j..) and one of
// y (channels half + j..), each split into its even and odd channels. cos and sin are split the
// same way once per call (ConcatEven/ConcatOdd into thread-local scratch: per block, the even
// entries, then the odd ones), so that every head reads them as they are.
void RotateHalfSplitBf16(const RotateParams& p, const HeadRange& heads) {
  const int64_t half = p.rotary_dim / 2;
  thread_local std::vector<float> scratch;  // no allocation after a thread's first call
  if (static_cast<int64_t>(scratch.size()) < 2 * half)
    scratch.resize(static_cast<size_t>(2 * half));
  float* split_cos = scratch.data();
  float* split_sin = scratch.data() + half;
  const auto split_level = [&](auto df, int64_t begin) {
    using DF = decltype(df);
    const int64_t n = static_cast<int64_t>(hn::Lanes(df));
    const int64_t end = begin + (half - begin) / (2 * n) * (2 * n);
    if (end == begin) return begin;
    for (int64_t j = begin; j < end; j += 2 * n) {
      for (const auto& [from, to] : {std::pair{p.cos, split_cos}, std::pair{p.sin, split_sin}}) {
        const auto lo = hn::LoadU(df, from + j), hi = hn::LoadU(df, from + j + n);
        hn::StoreU(hn::ConcatEven(df, hi, lo), df, to + j);
        hn::StoreU(hn::ConcatOdd(df, hi, lo), df, to + j + n);
      }
    }
    ForEachHead(
        heads,
        [&](const BFloat16* in, BFloat16* out) {
          for (int64_t j = begin; j < end; j += 2 * n) {
            hn::Vec<DF> x_even, x_odd, y_even, y_odd;
            SplitBf16Pairs(df, LoadBf16Pairs(df, in + j), x_even, x_odd);
            SplitBf16Pairs(df, LoadBf16Pairs(df, in + half + j), y_even, y_odd);
            const auto c_even = hn::LoadU(df, split_cos + j),
                       c_odd = hn::LoadU(df, split_cos + j + n);
            const auto s_even = hn::LoadU(df, split_sin + j),
                       s_odd = hn::LoadU(df, split_sin + j + n);
            const auto x_out_even = hn::Sub(hn::Mul(x_even, c_even), hn::Mul(y_even, s_even));
            const auto x_out_odd = hn::Sub(hn::Mul(x_odd, c_odd), hn::Mul(y_odd, s_odd));
            const auto y_out_even = hn::Add(hn::Mul(y_even, c_even), hn::Mul(x_even, s_even));
            const auto y_out_odd = hn::Add(hn::Mul(y_odd, c_odd), hn::Mul(x_odd, s_odd));
            StoreBf16Pairs(df, JoinBf16Pairs(df, x_out_even, x_out_odd), out + j);
            StoreBf16Pairs(df, JoinBf16Pairs(df, y_out_even, y_out_odd), out + half + j);
          }
        },
        PrefetchChannels(p));
    return end;
  };
  const hn::ScalableTag<float> df;
  const int64_t done = split_level(df, 0);
  if (done == half && !NeedsPassThrough(p, heads)) return;
  // Fewer pairs than a block left (partial rotary): one full vector of widened pairs is fewer
  // instructions than a block of narrower vectors, whose 4 results each need the rounding.
  ForEachHead(
      heads,
      [&](const BFloat16* in, BFloat16* out) {
        for (int64_t j = HalfSplitWidened(df, p, in, out, done); j < half; ++j) {
          RotatePairScalar(in, out, j, j + half, p.cos[j], p.sin[j]);
        }
        CopyPassThrough(p, in, out);
      },
      done == 0 ? PrefetchChannels(p) : 0);
}

template <typename Storage>
RotateHeadsFn ForLayout(Layout layout) {
  if constexpr (std::is_same_v<Storage, BFloat16>) {
    return layout == Layout::kInterleaved ? &RotateInterleavedBf16 : &RotateHalfSplitBf16;
  } else {
    return layout == Layout::kInterleaved ? &RotateInterleaved<Storage> : &RotateHalfSplit<Storage>;
  }
}

#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace rotary::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // ROTARY_CPU_ROTATE_INL_H_
