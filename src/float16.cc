#include "rotary/float16.h"

#include <string>

#include "numeric/float16.h"
#include "validate.h"

namespace rotary {
namespace {

void check_16bit(DType dtype, std::size_t in, std::size_t out, const char* out_name) {
  if (dtype != DType::kF16 && dtype != DType::kBF16) {
    detail::invalid("dtype", "expected float16 or bfloat16, got " + std::string(to_string(dtype)));
  }
  if (in != out) {
    detail::invalid(out_name, "expected " + std::to_string(in) + " elements, one per input, got " +
                                  std::to_string(out));
  }
}

}  // namespace

void to_16bit(std::span<const float> values, DType dtype, std::span<uint16_t> bits) {
  check_16bit(dtype, values.size(), bits.size(), "bits");
  for (std::size_t i = 0; i < values.size(); ++i) {
    bits[i] = dtype == DType::kF16 ? detail::to_float16(values[i]).bits
                                   : detail::to_bfloat16(values[i]).bits;
  }
}

void from_16bit(std::span<const uint16_t> bits, DType dtype, std::span<float> values) {
  check_16bit(dtype, bits.size(), values.size(), "values");
  for (std::size_t i = 0; i < bits.size(); ++i) {
    values[i] = dtype == DType::kF16 ? detail::to_float(detail::Float16{bits[i]})
                                     : detail::to_float(detail::BFloat16{bits[i]});
  }
}

float round_to_dtype(float value, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return value;
    case DType::kF16:
      return detail::to_float(detail::to_float16(value));
    case DType::kBF16:
      return detail::to_float(detail::to_bfloat16(value));
  }
  detail::invalid("dtype", "expected float32, float16 or bfloat16");
}

}  // namespace rotary
