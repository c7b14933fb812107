// Runtime dispatch of the vectorised kernels: Highway compiles rotate-inl.h for every target in
// HWY_TARGETS and picks the best one the CPU supports, once per call (never per row).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/simd_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "cpu/rotate-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rotary::detail::HWY_NAMESPACE {

RotateHeadsFn SelectKernel(DType dtype, Layout layout) {
#if HWY_TARGET == HWY_SCALAR
  // One-lane vectors cannot swap pairs; the portable kernel is this target's kernel.
  return portable_kernel(dtype, layout);
#else
  switch (dtype) {
    case DType::kF32:
      return ForLayout<float>(layout);
    case DType::kF16:
#if HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_EMU128
      // Without F16C, Highway emulates the float16 conversions and they do not round to nearest
      // even in every case; the portable conversion is exact, so these targets use it.
      return portable_kernel(dtype, layout);
#else
      return ForLayout<Float16>(layout);
#endif
    case DType::kBF16:
      return ForLayout<BFloat16>(layout);
  }
  return nullptr;
#endif
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace rotary::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "rotary/simd.h"

namespace rotary {
namespace detail {

HWY_EXPORT(SelectKernel);
HWY_EXPORT(TargetName);

RotateHeadsFn simd_kernel(DType dtype, Layout layout) {
  return HWY_DYNAMIC_DISPATCH(SelectKernel)(dtype, layout);
}

std::string chosen_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace detail

std::string simd_target_name() { return detail::chosen_target_name(); }

}  // namespace rotary
#endif  // HWY_ONCE
