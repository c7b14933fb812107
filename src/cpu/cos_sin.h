#pragma once

#include <cstdint>

namespace rotary::detail {

// cos/sin of transformers' float32 angles float32(position) * inv_freq[i], each times `scale` in
// float32, vectorised for the best SIMD target (src/cpu/cos_sin_simd.cc).
void cos_sin_hf(const float* inv_freq, int64_t count, int64_t position, float scale, float* cos,
                float* sin);

}  // namespace rotary::detail
