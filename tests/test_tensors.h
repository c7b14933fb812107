// Test helpers: random tensors in any storage type, read back as long double.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "numeric/float16.h"
#include "rotary/tensor.h"

namespace rotary::testing {

// Owns raw storage of `count` elements of `dtype`.
struct Buffer {
  DType dtype;
  std::vector<unsigned char> bytes;

  Buffer(DType t, std::size_t count) : dtype(t), bytes(count * dtype_size(t)) {}
  std::size_t size() const { return bytes.size() / dtype_size(dtype); }
  void* data() { return bytes.data(); }
  const void* data() const { return bytes.data(); }

  float get(std::size_t i) const {
    switch (dtype) {
      case DType::kF32: {
        float f;
        std::memcpy(&f, bytes.data() + 4 * i, 4);
        return f;
      }
      case DType::kF16: {
        detail::Float16 h;
        std::memcpy(&h.bits, bytes.data() + 2 * i, 2);
        return detail::to_float(h);
      }
      case DType::kBF16: {
        detail::BFloat16 h;
        std::memcpy(&h.bits, bytes.data() + 2 * i, 2);
        return detail::to_float(h);
      }
    }
    return 0;
  }
  void set(std::size_t i, float v) {
    switch (dtype) {
      case DType::kF32:
        std::memcpy(bytes.data() + 4 * i, &v, 4);
        break;
      case DType::kF16: {
        const uint16_t b = detail::to_float16(v).bits;
        std::memcpy(bytes.data() + 2 * i, &b, 2);
        break;
      }
      case DType::kBF16: {
        const uint16_t b = detail::to_bfloat16(v).bits;
        std::memcpy(bytes.data() + 2 * i, &b, 2);
        break;
      }
    }
  }
  void fill_normal(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t i = 0; i < size(); ++i) set(i, normal(rng));
  }
};

// The unit in the last place of a storage type at magnitude |v|.
inline double ulp_of(DType dtype, double v) {
  const int mantissa_bits = dtype == DType::kF32 ? 23 : dtype == DType::kF16 ? 10 : 7;
  const int min_exponent = dtype == DType::kF16 ? -14 : -126;
  const int exponent = v == 0 ? min_exponent : std::max(min_exponent, std::ilogb(v));
  return std::ldexp(1.0, exponent - mantissa_bits);
}

}  // namespace rotary::testing
