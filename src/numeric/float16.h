// Conversions between float32 and the 16-bit storage types, round to nearest even on the way down.
//
// Written with integer bit operations so they behave identically on every compiler and target
// (no dependence on _Float16 / __bf16 support). The portable CPU kernels and the CUDA kernels call
// these very functions (hence ROTARY_HOST_DEVICE); the SIMD kernels use the hardware instructions
// and are tested against them.
#pragma once

#include <cstdint>

#include "numeric/host_device.h"

namespace rotary::detail {

struct Float16 {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

ROTARY_HOST_DEVICE constexpr float to_float(BFloat16 h) {
  return bit_cast<float>(static_cast<uint32_t>(h.bits) << 16);
}

ROTARY_HOST_DEVICE constexpr BFloat16 to_bfloat16(float f) {
  const uint32_t x = bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) {
    return {static_cast<uint16_t>((x >> 16) | 0x0040u)};  // NaN stays NaN (quieted), sign kept
  }
  // Adding 0x7FFF plus the lowest kept bit rounds half-way cases to the even neighbour.
  const uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return {static_cast<uint16_t>((x + rounding) >> 16)};
}

ROTARY_HOST_DEVICE constexpr float to_float(Float16 h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  const uint32_t exponent = (h.bits >> 10) & 0x1Fu;
  const uint32_t mantissa = h.bits & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return bit_cast<float>(bit_cast<uint32_t>(magnitude) | sign);
  }
  if (exponent == 31) return bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  return bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

ROTARY_HOST_DEVICE constexpr Float16 to_float16(float f) {
  const uint32_t x = bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t magnitude = x & 0x7FFFFFFFu;
  uint32_t bits = 0;
  if (magnitude > 0x7F800000u) {
    bits = 0x7E00u | ((magnitude >> 13) & 0x3FFu);  // NaN: quiet, keep the top payload bits
  } else if (magnitude >= 0x47800000u) {
    bits = 0x7C00u;  // >= 2^16 (or infinity): beyond every value that rounds to a finite half
  } else if (magnitude < 0x38800000u) {
    // Below 2^-14 the result is subnormal: its unit is 2^-24. Adding 0.5 (exponent -1) puts that
    // unit at the last mantissa bit, so the float adder's own round-to-nearest-even does the work.
    const float shifted = bit_cast<float>(magnitude) + 0.5f;
    bits = bit_cast<uint32_t>(shifted) - bit_cast<uint32_t>(0.5f);
  } else {
    // Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits, rounding half to even. A
    // carry out of the mantissa correctly bumps the exponent (up to infinity at 65520).
    const uint32_t lowest_kept = (magnitude >> 13) & 1u;
    bits = (magnitude - (112u << 23) + 0x0FFFu + lowest_kept) >> 13;
  }
  return {static_cast<uint16_t>(bits | sign)};
}

// Loads and stores of the portable CPU kernels and the CUDA kernels: every storage type through
// float32.
ROTARY_HOST_DEVICE constexpr float load_as_float(const float* p) { return *p; }
ROTARY_HOST_DEVICE constexpr float load_as_float(const Float16* p) { return to_float(*p); }
ROTARY_HOST_DEVICE constexpr float load_as_float(const BFloat16* p) { return to_float(*p); }
ROTARY_HOST_DEVICE constexpr void store_from_float(float* p, float v) { *p = v; }
ROTARY_HOST_DEVICE constexpr void store_from_float(Float16* p, float v) { *p = to_float16(v); }
ROTARY_HOST_DEVICE constexpr void store_from_float(BFloat16* p, float v) { *p = to_bfloat16(v); }

}  // namespace rotary::detail
