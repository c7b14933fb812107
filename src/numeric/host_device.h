// What lets one function body serve the CPU and the CUDA kernels: the annotation that compiles it
// for both, and a bit cast that both accept (nvcc refuses std::bit_cast in device code: it is a
// constexpr host function).
//
// Floating-point code marked ROTARY_HOST_DEVICE is written as plain + - * and relies on the build
// never fusing a multiply and an add (-ffp-contract=off on the host, -fmad=false on the device,
// both set in CMakeLists.txt): each operation then rounds once, identically on both sides.
#pragma once

#if defined(__CUDACC__)
#define ROTARY_HOST_DEVICE __host__ __device__
#else
#define ROTARY_HOST_DEVICE
#endif

namespace rotary::detail {

template <class To, class From>
ROTARY_HOST_DEVICE constexpr To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From));
  return __builtin_bit_cast(To, from);
}

}  // namespace rotary::detail
