// cos/sin of transformers' float32 angles (AngleMode::kHf), correctly rounded to float32,
// vectorised for the best SIMD target (src/cpu/cos_sin_simd.cc). The recipes it vectorises, and
// the exact path it hands its uncertified lanes to, are numeric/cos_sin.h's, shared with the CUDA
// kernels.
#pragma once

#include <cstdint>

#include "numeric/cos_sin.h"

namespace rotary::detail {

// cos/sin of transformers' float32 angles float32(position) * inv_freq[i], each times `scale` in
// float32: hf_mode_cos_sin (numeric/cos_sin.h) for every i, bit for bit.
void cos_sin_hf(const float* inv_freq, int64_t count, int64_t position, float scale, float* cos,
                float* sin);

}  // namespace rotary::detail
