// Storage <-> float32 vectors, compiled once per SIMD target (Highway's foreach_target re-includes
// this file; hence the toggle guard instead of #pragma once): the one place where the vector
// kernels widen float16 and bfloat16 on load and round them to nearest even on store, exactly as
// numeric/float16.h's one-value conversions do.
#if defined(ROTARY_CPU_STORAGE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROTARY_CPU_STORAGE_INL_H_
#undef ROTARY_CPU_STORAGE_INL_H_
#else
#define ROTARY_CPU_STORAGE_INL_H_
#endif

#include <cstdint>
#include <type_traits>

#include "hwy/highway.h"
#include "numeric/float16.h"

HWY_BEFORE_NAMESPACE();
namespace rotary::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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

}  // namespace rotary::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // ROTARY_CPU_STORAGE_INL_H_
