// The RMSNorm kernel boundary (include/rotary/qk_norm.h): normalises the heads of one token into
// scratch, which the rotation kernels (kernels.h) then rotate into the output. Everything here runs
// on already-validated memory.
#pragma once

#include <cstdint>

#include "rotary/tensor.h"

namespace rotary::detail {

struct NormParams {
  // The factor of each element of a group (weight, or 1 + weight), float32: head_dim entries, or
  // num_heads * head_dim when one group spans the token's heads.
  const float* multiplier;
  float eps;
  bool round_before_weight;  // round x * r to the storage dtype before the multiplier
  bool whole_token;          // one group over all heads of the token (else one per head)
};

// Reads `num_heads` heads of `head_dim` elements, `head_stride` elements apart, and writes them
// normalised, contiguously (head h at out + h * head_dim), in the same storage dtype.
using NormHeadsFn = void (*)(const NormParams& params, const void* in, int64_t num_heads,
                             int64_t head_stride, int64_t head_dim, void* out);

// The kernel for this CPU's best SIMD target (Highway runtime dispatch). Every target gives the
// same bits: the sum of squares runs in one fixed order (rms_norm-inl.h), never the vector width's.
NormHeadsFn simd_norm_kernel(DType dtype);

}  // namespace rotary::detail
