// Runtime dispatch of the RMSNorm kernels: Highway compiles rms_norm-inl.h for every target in
// HWY_TARGETS and picks the best one the CPU supports, once per call.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/rms_norm_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "cpu/rms_norm-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rotary::detail::HWY_NAMESPACE {

NormHeadsFn SelectNormKernel(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return &NormHeads<float>;
    case DType::kF16:
      return &NormHeads<Float16>;
    case DType::kBF16:
      return &NormHeads<BFloat16>;
  }
  return nullptr;
}

}  // namespace rotary::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rotary::detail {

HWY_EXPORT(SelectNormKernel);

NormHeadsFn simd_norm_kernel(DType dtype) { return HWY_DYNAMIC_DISPATCH(SelectNormKernel)(dtype); }

}  // namespace rotary::detail
#endif  // HWY_ONCE
