// float32 values to and from the 16-bit storage types, rounded exactly as the rotation rounds when
// it stores a float16 or bfloat16 tensor: to nearest, ties to even; NaN stays NaN, and a value past
// the type's range becomes infinity. For callers that read or write 16-bit data of their own
// (cos/sin tables in files, say) and must agree bit for bit with what rotary writes.
//
// The 16-bit values are the IEEE 754 binary16 or bfloat16 bit patterns as host integers; a caller
// writing them to a file chooses the byte order.
#pragma once

#include <cstdint>
#include <span>

#include "rotary/tensor.h"

namespace rotary {

// Rounds each of `values` to `dtype` (DType::kF16 or DType::kBF16) and stores its bit pattern in
// the element of `bits` at the same index. Throws Error(kInvalidArgument) naming "dtype" for
// DType::kF32, or "bits" when the spans differ in size; nothing is written then.
void to_16bit(std::span<const float> values, DType dtype, std::span<uint16_t> bits);

// The float32 value of each bit pattern of `bits` stored as `dtype` (DType::kF16 or DType::kBF16),
// into the element of `values` at the same index; exact, since float32 holds every 16-bit value.
// Throws Error(kInvalidArgument) naming "dtype" for DType::kF32, or "values" when the spans differ
// in size; nothing is written then.
void from_16bit(std::span<const uint16_t> bits, DType dtype, std::span<float> values);

// `value` as a tensor of `dtype` holds it, read back as float32: `value` itself for DType::kF32.
// Whether a value survives storage in a dtype is round_to_dtype(value, dtype) == value. Throws
// Error(kInvalidArgument) naming "dtype" for a value that is no DType.
float round_to_dtype(float value, DType dtype);

}  // namespace rotary
